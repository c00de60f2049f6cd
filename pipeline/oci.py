"""OCI image index and manifest handling: the bytes that a digest names.

A digest is the sha256 of the exact bytes a registry serves, so everything here works on bytes and checks the hash
itself rather than trusting a registry header. :func:`build_index` is deterministic: the same child descriptors in
any order give the same bytes and therefore the same index digest, so re-running a stitch is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import SlipwayError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ANY_MANIFEST = (*INDEXES, *IMAGE_MANIFESTS)
# BuildKit marks attestation manifests inside an index with this annotation; Lambda must never see one.
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


class ManifestError(SlipwayError):
    """A manifest's bytes, media type or content is not what the caller expected."""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __post_init__(self) -> None:
        # arm64 has one variant (v8); builders differ on writing it, and linux/arm64 must match either way.
        if self.architecture == "arm64" and self.variant == "v8":
            object.__setattr__(self, "variant", "")

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"platform {text!r}: expected 'os/arch' or 'os/arch/variant'")
        return cls(*parts)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


@dataclass(frozen=True)
class Manifest:
    """Raw manifest bytes as served, with the media type the registry declared."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def json(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.data)
        except ValueError as exc:
            raise ManifestError(f"manifest {self.digest}: not JSON ({exc})") from exc
        if not isinstance(parsed, dict):
            raise ManifestError(f"manifest {self.digest}: expected a JSON object")
        return parsed


def canonical_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def build_index(children: Iterable[Descriptor], annotations: Mapping[str, str] | None = None) -> Manifest:
    """An OCI image index of single-platform manifests, one per platform, in a stable order."""
    ordered = sorted(children, key=lambda d: str(d.platform))
    seen: set[str] = set()
    for child in ordered:
        if child.platform is None:
            raise ManifestError(f"manifest {child.digest}: an index entry needs a platform")
        if child.media_type not in IMAGE_MANIFESTS:
            raise ManifestError(
                f"manifest {child.digest} ({child.platform}): expected media type {' or '.join(IMAGE_MANIFESTS)}, "
                f"got {child.media_type!r}"
            )
        if str(child.platform) in seen:
            raise ManifestError(f"platform {child.platform}: more than one manifest given")
        seen.add(str(child.platform))
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [c.to_json() for c in ordered],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return Manifest(canonical_json(document), OCI_INDEX)


def index_children(index: Manifest) -> list[Descriptor]:
    """The platform manifests of an index, skipping attestation manifests (``unknown/unknown``)."""
    if index.media_type not in INDEXES:
        raise ManifestError(f"manifest {index.digest}: expected an image index ({OCI_INDEX}), got {index.media_type!r}")
    children = []
    for entry in index.json().get("manifests", []):
        annotations = entry.get("annotations") or {}
        if ATTESTATION_ANNOTATION in annotations:
            continue
        platform = entry.get("platform") or {}
        children.append(
            Descriptor(
                media_type=entry["mediaType"],
                digest=entry["digest"],
                size=int(entry["size"]),
                platform=Platform(
                    platform.get("os", ""), platform.get("architecture", ""), platform.get("variant", "")
                ),
            )
        )
    return children


def check_bytes(manifest: Manifest, expected_digest: str, what: str) -> None:
    """The registry must serve exactly the bytes the digest names."""
    actual = manifest.digest
    if actual != expected_digest:
        raise ManifestError(f"{what}: registry served bytes hashing to {actual}, expected {expected_digest}")


def image_size(manifest: Manifest) -> int:
    """Bytes an image stores in the registry: its config plus its (compressed) layers."""
    document = manifest.json()
    return int(document["config"]["size"]) + sum(int(layer["size"]) for layer in document.get("layers", []))


def image_platform(config_blob: bytes, digest: str) -> Platform:
    """The platform an image really is, from its config blob (not from what a build claimed)."""
    try:
        config = json.loads(config_blob)
        return Platform(config["os"], config["architecture"], config.get("variant", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"manifest {digest}: config blob has no os/architecture") from exc
