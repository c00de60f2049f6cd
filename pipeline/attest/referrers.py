"""Attestations as OCI 1.1 artifacts beside a release: pushed with ``subject``, found through the referrers API.

A registry with the referrers API (ECR since June 2024; the local registry's gate) lists an artifact once it is
pushed with a ``subject``. Where a registry lacks the API (``GET /v2/<name>/referrers/<digest>`` answers 404), the OCI
1.1 fallback is kept: an index under the tag ``sha256-<hex>`` of the subject, listing its referrers, rewritten with each
one added. Each artifact is also tagged ``<release>-<kind>`` so the repository's lifecycle rules keep it exactly as
long as its release (an untagged manifest expires; :func:`infra.image_repository.lifecycle_rules`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pipeline.oci import OCI_INDEX, OCI_MANIFEST, Manifest, canonical_json, digest_of
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.registry.base import ManifestNotFoundError

EMPTY = "application/vnd.oci.empty.v1+json"
"""OCI 1.1's empty config: ``{}``."""


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-")


def artifact(subject: Manifest, artifact_type: str, blob: bytes, annotations: dict[str, str]) -> Manifest:
    """An OCI 1.1 artifact manifest: the empty config, one layer (``blob``), and ``subject``."""
    return Manifest(canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": digest_of(b"{}"), "size": 2, "data": "e30="},
        "layers": [{"mediaType": artifact_type, "digest": digest_of(blob), "size": len(blob)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.data)},
        "annotations": annotations,
    }), OCI_MANIFEST)  # fmt: skip


def push(client: RegistryClient, repo: RepositoryRef, tag: str, manifest: Manifest, blob: bytes) -> None:
    """The artifact's blobs, then the artifact under ``tag``; then, on a registry without the referrers API, the
    fallback index of its subject."""
    put_blobs(client, repo, b"{}", blob)
    client.put_manifest(repo, tag, manifest)
    subject = str(json.loads(manifest.data)["subject"]["digest"])
    if client.referrers(repo, subject) is None:
        _add_to_fallback(client, repo, subject, manifest)


def put_blobs(client: RegistryClient, repo: RepositoryRef, *blobs: bytes) -> None:
    """Upload each of ``blobs`` the repository does not hold yet."""
    with tempfile.TemporaryDirectory(prefix="slipway-attest-") as directory:
        for data in blobs:
            if not client.has_blob(repo, digest_of(data)):
                path = Path(directory) / "blob"
                path.write_bytes(data)
                client.put_blob(repo, digest_of(data), path)


def listed(client: RegistryClient, repo: RepositoryRef, digest: str) -> list[dict[str, Any]]:
    """The descriptors of ``digest``'s referrers: from the API, or from the fallback tag where there is none."""
    found = client.referrers(repo, digest)
    if found is not None:
        return found
    try:
        index = client.get_manifest(repo, fallback_tag(digest), (OCI_INDEX,))
    except ManifestNotFoundError:
        return []
    return list(json.loads(index.data).get("manifests", []))


def descriptor(manifest: Manifest) -> dict[str, Any]:
    document = json.loads(manifest.data)
    return {"mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.data),
            "artifactType": document.get("artifactType", ""), "annotations": document.get("annotations", {})}  # fmt: skip


def _add_to_fallback(client: RegistryClient, repo: RepositoryRef, subject: str, manifest: Manifest) -> None:
    present = listed(client, repo, subject)
    if any(d.get("digest") == manifest.digest for d in present):
        return
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*present, descriptor(manifest)]}
    client.put_manifest(repo, fallback_tag(subject), Manifest(canonical_json(index), OCI_INDEX))
