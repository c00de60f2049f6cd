"""DSSE envelopes (https://github.com/secure-systems-lab/dsse): a payload and signatures over its PAE encoding.

The format in-toto attestations travel in (``cosign attest``, ``cosign verify-attestation``, BuildKit's provenance).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pipeline.attest.signer import Signer
from pipeline.errors import InputError

IN_TOTO = "application/vnd.in-toto+json"


class AttestationError(InputError):
    """An attestation is missing, malformed, unsigned, signed by another key, or says something else: the release is
    refused as bad input (exit 2), before anything changes."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed, so a payload cannot be read as another type."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]
    """``(keyid, signature)`` pairs."""
    payload_type: str = IN_TOTO

    def to_bytes(self) -> bytes:
        return json.dumps({
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [{"keyid": k, "sig": base64.b64encode(s).decode()} for k, s in self.signatures],
        }, sort_keys=True, separators=(",", ":")).encode()  # fmt: skip

    @classmethod
    def parse(cls, data: bytes, what: str) -> Envelope:
        try:
            document = json.loads(data)
            signatures = tuple(
                (str(s.get("keyid", "")), base64.b64decode(s["sig"], validate=True)) for s in document["signatures"]
            )
            return cls(base64.b64decode(document["payload"], validate=True), signatures, str(document["payloadType"]))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise AttestationError(f"{what}: not a DSSE envelope ({type(exc).__name__}: {exc})") from exc


def seal(statement: dict[str, Any], signer: Signer) -> Envelope:
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return Envelope(payload, ((signer.key_id, signer.sign(pae(IN_TOTO, payload))),))


def opened(envelope: Envelope, verifier: Signer, what: str) -> dict[str, Any]:
    """The statement, once one of its signatures verifies with the release key; otherwise AttestationError."""
    if envelope.payload_type != IN_TOTO:
        raise AttestationError(f"{what}: payload type {envelope.payload_type!r}, expected {IN_TOTO!r}")
    message = pae(envelope.payload_type, envelope.payload)
    if not any(verifier.verify(message, signature) for _, signature in envelope.signatures):
        raise AttestationError(f"{what}: no signature verifies with the platform's release key {verifier.key_id}")
    try:
        statement = json.loads(envelope.payload)
    except ValueError as exc:
        raise AttestationError(f"{what}: the signed payload is not JSON") from exc
    if not isinstance(statement, dict):
        raise AttestationError(f"{what}: the signed payload is not an in-toto statement")
    return statement
