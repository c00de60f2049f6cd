"""ECR's pull-through cache in the registry gate, as strict as users report it (issue #25, defect 3).

Upstream content lives in the upstream stand-in -- the store's ``slipway-upstream/`` namespace, what Docker Hub and
the other upstream registries serve, which only the seed (the stand-in's admin) writes -- never at the cache path.
A repository under a cache rule's prefix (``docker-hub/library/debian``) fills only as ECR fills it:

- a manifest pulled **by tag** imports the upstream's image under that tag (every child manifest and blob), or
  refreshes it when the upstream tag has moved; the caller needs ``ecr:BatchImportUpstreamImage`` on the cache
  repository, and ``ecr:CreateRepository`` when this first pull creates it (aws/containers-roadmap#2837,
  GoogleContainerTools/kaniko#2994);
- a manifest pulled **by digest** is served only when an earlier tag pull imported it: otherwise 404
  ``MANIFEST_UNKNOWN``, whatever the upstream holds.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

UPSTREAM = "slipway-upstream"
"""The upstream stand-in's namespace in the store (``slipway-upstream/docker-hub/library/debian``)."""
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))  # fmt: skip


def cached(prefixes: tuple[str, ...], repository: str) -> bool:
    """Whether ``repository`` is a pull-through cache repository (under one of the cache rules' prefixes)."""
    return any(repository.startswith(prefix + "/") for prefix in prefixes)


def upstream_of(repository: str) -> str:
    return f"{UPSTREAM}/{repository}"


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Store:
    """The registry store behind the gate, spoken to directly (the gate has authorized the caller already)."""

    host: str
    port: int

    def _request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), response
        finally:
            connection.close()

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        status, body, response = self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}
        )
        if status != 200:
            return None
        return Manifest(body, response.getheader("Content-Type", ""), response.getheader("Docker-Content-Digest", ""))

    def exists(self, repository: str) -> bool:
        status, body, _ = self._request("GET", f"/v2/{repository}/tags/list")
        return status == 200 and bool(json.loads(body or b"{}").get("tags"))

    def put(self, repository: str, reference: str, manifest: Manifest) -> None:
        status, body, _ = self._request(
            "PUT", f"/v2/{repository}/manifests/{reference}", manifest.body, {"Content-Type": manifest.media_type}
        )
        if status not in (200, 201):
            raise OSError(f"import of {repository}:{reference} refused by the store ({status} {body[:200]!r})")

    def mount(self, repository: str, digest: str, source: str) -> None:
        status, body, _ = self._request("POST", f"/v2/{repository}/blobs/uploads/?mount={digest}&from={source}")
        if status != 201:
            raise OSError(f"import of blob {digest} into {repository} refused by the store ({status} {body[:200]!r})")


def _children(manifest: Manifest) -> list[str]:
    document = json.loads(manifest.body)
    return [str(m["digest"]) for m in document.get("manifests", [])]


def _blobs(manifest: Manifest) -> list[str]:
    document = json.loads(manifest.body)
    return [str(d["digest"]) for d in [document.get("config", {}), *document.get("layers", [])] if d]


def import_tag(store: Store, repository: str, tag: str) -> bool:
    """The upstream's image under ``tag`` copied into the cache ``repository`` (children and blobs first, the tag
    last); nothing to do when the cache's tag already names it. ``False``: the upstream has no such tag."""
    source = upstream_of(repository)
    upstream = store.manifest(source, tag)
    if upstream is None:
        return False
    current = store.manifest(repository, tag)
    if current is not None and current.digest == upstream.digest:
        return True
    for child in _children(upstream):
        manifest = store.manifest(source, child)
        if manifest is None:
            raise OSError(f"upstream {source}:{tag} names {child}, which it does not serve")
        for blob in _blobs(manifest):
            store.mount(repository, blob, source)
        store.put(repository, child, manifest)
    for blob in _blobs(upstream):
        store.mount(repository, blob, source)
    store.put(repository, tag, upstream)
    return True
