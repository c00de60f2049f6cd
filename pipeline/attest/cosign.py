"""The release's signature in cosign's format, which cluster admission controllers read (Kyverno ``verifyImages``).

Kyverno and ``cosign verify`` do not read Slipway's DSSE statements, so Stitch also signs each release the way cosign
does (https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md): a *simple signing* payload naming the
index digest, one layer of an OCI image manifest tagged ``sha256-<hex>.sig`` in the release's repository, its ECDSA
P-256 signature over the payload's SHA-256 in the layer's ``dev.cosignproject.cosign/signature`` annotation. The same
release key signs it (KMS, ``MessageType=DIGEST``: :mod:`pipeline.attest.signer`), so ``cosign verify --key
awskms:///<alias ARN>`` and a Kyverno policy holding the key's public half check it
(:mod:`pipeline.attest.admission`); every deploy job checks it too (:func:`pipeline.attest.release.verify`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pipeline.attest import referrers
from pipeline.attest.dsse import AttestationError
from pipeline.attest.signer import Signer
from pipeline.oci import OCI_MANIFEST, Manifest, canonical_json, digest_of
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.registry.base import ManifestNotFoundError, RegistryError

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def signature_tag(digest: str) -> str:
    """cosign's tag-based discovery: ``sha256:<hex>`` is signed at ``sha256-<hex>.sig``."""
    return digest.replace(":", "-") + ".sig"


def payload(repository: str, digest: str, release: str) -> bytes:
    """The simple signing payload: the index digest, the repository (cosign ignores it) and the release tag."""
    return canonical_json({
        "critical": {"identity": {"docker-reference": repository}, "image": {"docker-manifest-digest": digest},
                     "type": COSIGN_TYPE},
        "optional": {"dev.slipway.release": release},
    })  # fmt: skip


def sign(client: RegistryClient, record: ImageRecord, signer: Signer) -> tuple[str, str]:
    """The release's cosign signature, pushed once (a retry of Stitch keeps the one there once it verifies):
    ``(manifest digest, what happened)``."""
    repo = RepositoryRef.parse(record.repository)
    tag = signature_tag(record.index_digest)
    try:
        present = client.get_manifest(repo, tag, (OCI_MANIFEST,))
    except ManifestNotFoundError:
        pass
    else:
        return present.digest, f"already there ({verify(client, record, signer)[1]})"
    data = payload(repo.name, record.index_digest, record.tag)
    signature = base64.b64encode(signer.sign(data)).decode()
    config = canonical_json({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [digest_of(data)]}})  # fmt: skip
    manifest = Manifest(canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": SIMPLE_SIGNING, "digest": digest_of(data), "size": len(data),
                    "annotations": {SIGNATURE: signature}}],
    }), OCI_MANIFEST)  # fmt: skip
    referrers.put_blobs(client, repo, config, data)
    client.put_manifest(repo, tag, manifest)
    return manifest.digest, "signed and pushed"


def verify(client: RegistryClient, record: ImageRecord, verifier: Signer) -> tuple[str, str]:
    """Every simple signing layer at the release's ``.sig`` tag verifies with the release key and names exactly the
    index digest (one that does not is tampering: refused, not skipped); at least one is there. Otherwise
    AttestationError naming what failed. ``(manifest digest, what it says)``."""
    repo = RepositoryRef.parse(record.repository)
    what = f"cosign signature {repo}:{signature_tag(record.index_digest)}"
    try:
        manifest = client.get_manifest(repo, signature_tag(record.index_digest), (OCI_MANIFEST,))
    except ManifestNotFoundError as exc:
        raise AttestationError(f"release {record.index_uri}: no cosign signature ({what} is missing: not a release "
                               "Stitch signed)") from exc  # fmt: skip
    except RegistryError as exc:
        raise AttestationError(f"{what}: cannot be read ({exc})") from exc
    layers = [layer for layer in manifest.json().get("layers", []) if layer.get("mediaType") == SIMPLE_SIGNING]
    if not layers:
        raise AttestationError(f"{what}: holds no {SIMPLE_SIGNING} layer")
    for layer in layers:
        _check(client, repo, layer, record.index_digest, verifier, what)
    return manifest.digest, f"cosign signature of {record.index_digest}: {len(layers)} layer(s)"


def _check(
    client: RegistryClient, repo: RepositoryRef, layer: dict[str, Any], digest: str, verifier: Signer, what: str
) -> None:
    try:
        blob = client.get_blob(repo, str(layer["digest"]))
        signature = base64.b64decode(str((layer.get("annotations") or {})[SIGNATURE]), validate=True)
        claims = json.loads(blob)["critical"]
    except (RegistryError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise AttestationError(f"{what}: a layer cannot be read ({type(exc).__name__}: {exc})") from exc
    if digest_of(blob) != layer["digest"]:
        raise AttestationError(f"{what}: a payload does not match its digest")
    if not verifier.verify(blob, signature):
        raise AttestationError(f"{what}: a signature does not verify with the platform's release key "
                               f"{verifier.key_id}")  # fmt: skip
    named = (claims.get("image") or {}).get("docker-manifest-digest") if isinstance(claims, dict) else None
    if named != digest or claims.get("type") != COSIGN_TYPE:
        raise AttestationError(f"{what}: a signed payload names {named!r}, not {digest}")
