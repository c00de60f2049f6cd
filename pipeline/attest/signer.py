"""The release key: one interface, one backend (an asymmetric KMS key, ECC_NIST_P256 / ECDSA_SHA_256).

KMS signs a message of at most 4,096 bytes, so what is signed is the SHA-256 of the message (``MessageType=DIGEST``):
the signature is then the ECDSA-SHA256 signature of the message itself, which any verifier holding the public key
checks (``cosign verify --key awskms:///…``, ``openssl dgst -sha256 -verify``). Verification asks KMS too, with the same
digest, so the job needs ``kms:Verify`` and no key material.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import SlipwayError

ALGORITHM = "ECDSA_SHA_256"


class SigningError(SlipwayError):
    """The release key could not sign or be asked to verify (denied, missing, unreachable)."""


class Signer(Protocol):
    key_id: str

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


class KmsSigner:
    """``key_id``: the key's ARN or its alias ARN (its region is the client's)."""

    def __init__(self, key_id: str, client: Any = None) -> None:
        self.key_id = key_id
        region = key_id.split(":")[3] if key_id.startswith("arn:") else None
        self._kms = client or boto3.client("kms", region_name=region)

    def sign(self, message: bytes) -> bytes:
        try:
            answer = self._kms.sign(KeyId=self.key_id, Message=hashlib.sha256(message).digest(),
                                    MessageType="DIGEST", SigningAlgorithm=ALGORITHM)  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            raise SigningError(f"release key {self.key_id}: cannot sign ({_why(exc)})") from exc
        return bytes(answer["Signature"])

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            answer = self._kms.verify(KeyId=self.key_id, Message=hashlib.sha256(message).digest(),
                                      MessageType="DIGEST", Signature=signature, SigningAlgorithm=ALGORITHM)  # fmt: skip
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "KMSInvalidSignatureException":
                return False
            raise SigningError(f"release key {self.key_id}: cannot verify ({_why(exc)})") from exc
        except BotoCoreError as exc:
            raise SigningError(f"release key {self.key_id}: cannot verify ({exc})") from exc
        return bool(answer.get("SignatureValid"))


def _why(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
    return str(exc)
