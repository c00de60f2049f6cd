"""Default handler: proves the image serves invocations; teams replace it with their own."""

from __future__ import annotations

import platform
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"echo": event, "machine": platform.machine(), "request_id": context.aws_request_id}
