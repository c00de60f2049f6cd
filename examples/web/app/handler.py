"""The Lambda face of payments/api: the same code the HTTP server runs, answering one invocation."""

from __future__ import annotations

import platform
from typing import Any

from app.service import health


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A smoke event ``{"path": "/health"}`` answers what ``GET /health`` answers over HTTP."""
    status, body = health()
    return {"statusCode": status, "body": body, "machine": platform.machine(), "echo": event}
