"""The ECR stand-in's authorization tokens: who asked, signed, for 12 hours -- as ECR's tokens carry the caller.

ECR's registry API authorizes each push and pull as the IAM principal that called ``GetAuthorizationToken``, so the
token must say who that was. The AWS stand-in issues ``AWS:<password>`` tokens whose password is the caller's ARN and
expiry, signed with a key that only the stand-in and the registry gate (:mod:`pipeline.local.registry_gate`) hold
(``SLIPWAY_REGISTRY_TOKEN_KEY``, made by ``slipway local up``). A token that does not verify is no credential at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

KEY_ENV = "SLIPWAY_REGISTRY_TOKEN_KEY"
LIFETIME = 12 * 3600  # ECR: "The authorization token is valid for 12 hours."


def _sign(payload: bytes, key: str) -> str:
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def issue(caller_arn: str, key: str, *, now: float | None = None) -> tuple[str, float]:
    """The password for ``caller_arn`` and when it expires (epoch seconds)."""
    expires = (time.time() if now is None else now) + LIFETIME
    payload = base64.urlsafe_b64encode(json.dumps({"arn": caller_arn, "exp": int(expires)}).encode())
    return f"{payload.decode()}.{_sign(payload, key)}", float(int(expires))


def caller(password: str, key: str, *, now: float | None = None) -> str | None:
    """The ARN a password was issued to; ``None`` when it was not issued with ``key`` or has expired."""
    payload, _, signature = password.rpartition(".")
    if not payload or not hmac.compare_digest(_sign(payload.encode(), key), signature):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if claims.get("exp", 0) <= (time.time() if now is None else now):
        return None
    return str(claims.get("arn", "")) or None
