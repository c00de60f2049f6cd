"""An in-memory registry implementing RegistryClient.

Real registries refuse to serve bytes that do not match a digest, so the "registry lies" paths of stitch and verify
can only be exercised with a registry we control. Everything else is tested against real registries.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.oci import OCI_MANIFEST, Manifest, canonical_json, digest_of
from pipeline.records import ImageRecord
from pipeline.registry.base import ManifestNotFoundError, RegistryError, RepositoryRef

CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


class MemoryRegistry:
    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], Manifest] = {}
        self.blobs: dict[str, bytes] = {}
        self.refuse_push = False
        self.puts: list[str] = []
        self.referrers_api = True
        """False: a registry without the OCI 1.1 referrers API (clients keep the ``sha256-<hex>`` fallback tag)."""

    def get_manifest(self, repo: RepositoryRef, reference: str, accept: Sequence[str]) -> Manifest:
        """As distribution negotiates: by tag, a manifest whose media type the client does not accept is not served;
        by digest, the stored bytes are (a client must check what it got). The Accept header is built as the real
        client builds it (a missing list fails there too)."""
        _repository(repo)
        ", ".join(accept)
        try:
            manifest = self.manifests[str(repo), reference]
        except KeyError:
            raise ManifestNotFoundError(f"image {repo}:{reference}: not found") from None
        if not reference.startswith("sha256:") and manifest.media_type not in accept:
            raise ManifestNotFoundError(f"image {repo}:{reference}: not found as {', '.join(accept)}")
        return manifest

    def put_manifest(self, repo: RepositoryRef, reference: str, manifest: Manifest) -> str:
        if self.refuse_push:
            raise RegistryError(f"push of image {repo}:{reference}: registry answered HTTP 403 denied")
        self.puts.append(reference)
        self.manifests[str(repo), reference] = manifest
        self.manifests[str(repo), manifest.digest] = manifest
        return manifest.digest

    def list_tags(self, repo: RepositoryRef) -> list[str]:
        return sorted(ref for name, ref in self.manifests if name == str(repo) and not ref.startswith("sha256:"))

    def get_blob(self, repo: RepositoryRef, digest: str) -> bytes:
        _repository(repo)
        return self.blobs[digest]

    def has_blob(self, repo: RepositoryRef, digest: str) -> bool:
        _repository(repo)
        return digest in self.blobs

    def referrers(self, repo: RepositoryRef, digest: str) -> list[dict[str, Any]] | None:
        """As a registry with the API computes it: every stored manifest whose ``subject`` is ``digest``."""
        if not self.referrers_api:
            return None
        found = {}
        for (name, _), manifest in self.manifests.items():
            document = json.loads(manifest.data) if name == str(repo) else {}
            if isinstance(document, dict) and (document.get("subject") or {}).get("digest") == digest:
                found[manifest.digest] = {
                    "mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.data),
                    "artifactType": document.get("artifactType", ""), "annotations": document.get("annotations", {}),
                }  # fmt: skip
        return list(found.values())

    def put_blob(self, repo: RepositoryRef, digest: str, path: Path) -> None:
        data = path.read_bytes()
        if digest_of(data) != digest:
            raise RegistryError(f"upload of blob {repo}@{digest}: registry answered HTTP 400 DIGEST_INVALID")
        self.blobs[digest] = data

    def add_image(self, repo: str, os: str, arch: str, *, layer: bytes = b"layer", user: str | None = None) -> str:
        """A single-platform OCI manifest with a real config (``user``: its ``config.User``); returns its digest."""
        fields = {"architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": []}}
        config = canonical_json({**fields, **({"config": {"User": user}} if user is not None else {})})
        self.blobs[digest_of(config)] = config
        manifest = Manifest(
            canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": CONFIG_MEDIA_TYPE,
                        "digest": digest_of(config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": digest_of(layer),
                            "size": len(layer),
                        }
                    ],
                }
            ),
            OCI_MANIFEST,
        )
        self.manifests[repo, manifest.digest] = manifest
        return manifest.digest


def _repository(repo: RepositoryRef) -> None:
    """Every request names its repository (the real client builds its URL from it)."""
    if not isinstance(repo, RepositoryRef):
        raise TypeError(f"expected a RepositoryRef, got {repo!r}")


def released(
    repository: str, platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"), tag: str = "c0ffee1"
) -> tuple[MemoryRegistry, ImageRecord]:
    """A registry holding one stitched release of ``repository``: real manifests, configs and digests."""
    from pipeline.records import BuildRecord
    from pipeline.stitch import stitch

    registry = MemoryRegistry()
    builds = [
        BuildRecord(repository, p, registry.add_image(repository, *p.split("/")), 1000, 1.0, "buildx")
        for p in platforms
    ]
    return registry, stitch(registry, builds, tag=tag).record


def aws_out_of_reach(monkeypatch: Any, service: str) -> str:
    """Point the AWS SDK's ``service`` endpoint at a closed local port (one attempt, dummy credentials); returns it."""
    endpoint = "http://127.0.0.1:9"
    for key, value in {f"AWS_ENDPOINT_URL_{service}": endpoint, "AWS_MAX_ATTEMPTS": "1", "AWS_DEFAULT_REGION": "eu-west-1",
                       "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "x"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    return endpoint


@contextlib.contextmanager
def health_endpoint() -> Iterator[tuple[str, list[int]]]:
    """An HTTP health endpoint on 127.0.0.1: yields its URL and a list whose first item is the status it answers
    (the test sets it); stopped on exit."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    statuses = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", statuses
    finally:
        server.shutdown()
        server.server_close()
