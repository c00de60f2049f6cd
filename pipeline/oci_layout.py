"""Push an OCI image layout (what ``buildx --output type=oci,tar=false`` writes) to a registry by digest.

BuildKit's ``rewrite-timestamp`` works with the OCI exporter on every buildx driver, and ``push-by-digest`` does not
(the docker driver refuses it): exporting a layout and pushing it with Slipway's own client is the one way that runs
the same on CodeBuild's docker-container builder and on a local dockerd. Every blob is hashed before it is sent, the
manifest is pushed under its digest only -- no tag -- and the registry's answer must name the same digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from pipeline.oci import IMAGE_MANIFESTS, Descriptor, Manifest, ManifestError, Platform
from pipeline.registry.base import RegistryClient, RegistryError, RepositoryRef


class LayoutError(ManifestError):
    """The layout is not one single-platform image whose blobs hash to their names."""


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise LayoutError(f"layout {layout}: unsupported digest {digest!r}")
    return layout / "blobs" / "sha256" / hexdigest


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def read_image(layout: Path) -> tuple[Descriptor, Manifest]:
    """The layout's one image manifest (BuildKit writes exactly one per single-platform build)."""
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
        entries: list[dict[str, Any]] = index["manifests"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LayoutError(f"layout {layout}: no readable index.json ({exc})") from exc
    images = [e for e in entries if isinstance(e, dict) and e.get("mediaType") in IMAGE_MANIFESTS]
    if len(images) != 1 or len(entries) != 1:
        raise LayoutError(f"layout {layout}: expected exactly one image manifest, found {len(entries)} entries")
    entry = images[0]
    data = _blob_path(layout, str(entry.get("digest", ""))).read_bytes()
    manifest = Manifest(data, str(entry["mediaType"]))
    if manifest.digest != entry["digest"]:
        raise LayoutError(f"layout {layout}: manifest bytes hash to {manifest.digest}, index says {entry['digest']}")
    platform = entry.get("platform") or {}
    descriptor = Descriptor(
        manifest.media_type,
        manifest.digest,
        len(data),
        Platform(platform.get("os", ""), platform.get("architecture", ""), platform.get("variant", "")),
    )
    return descriptor, manifest


# What a registry answers when a blob it was just given is not (yet) there: distribution loses a race between two
# uploads of one blob (amd64 and arm64 builds of a scratch image share their layers), and a push may meet it.
_RACE = ("DIGEST_INVALID", "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN")
ATTEMPTS = 3


def push_layout(client: RegistryClient, repo: RepositoryRef, layout: Path) -> str:
    """Push the layout's image (config, layers, then the manifest by digest); return the manifest digest. Pushing is
    idempotent, so a registry that lost a concurrently uploaded blob is given the image again (a few times)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _push(client, repo, layout)
        except RegistryError as exc:
            if attempt == ATTEMPTS or not any(code in str(exc) for code in _RACE):
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def _push(client: RegistryClient, repo: RepositoryRef, layout: Path) -> str:
    descriptor, manifest = read_image(layout)
    document = manifest.json()
    blobs = [document.get("config", {}), *document.get("layers", [])]
    for blob in blobs:
        digest = str(blob.get("digest", ""))
        path = _blob_path(layout, digest)
        if not path.is_file():
            raise LayoutError(f"layout {layout}: blob {digest} is missing")
        if client.has_blob(repo, digest):
            continue
        if (actual := _file_digest(path)) != digest:
            raise LayoutError(f"layout {layout}: blob {digest} hashes to {actual}")
        client.put_blob(repo, digest, path)
    stored = client.put_manifest(repo, descriptor.digest, manifest)
    if stored != descriptor.digest:
        raise LayoutError(f"image {repo}@{descriptor.digest}: registry stored it as {stored}")
    return descriptor.digest
