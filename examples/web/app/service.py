"""What payments/api does, whichever way it is called (HTTP on ECS/EKS, an invocation on Lambda)."""

from __future__ import annotations

import platform
from typing import Any


def health() -> tuple[int, dict[str, Any]]:
    return 200, {"service": "payments-api", "status": "ok", "machine": platform.machine()}
