"""ECR's other regions in the replay: one registry per region, and replication between them as ECR does it.

Every ECR registry host names its region (``<account>.dkr.ecr.<region>.amazonaws.com``); the replay serves each
region the platform replicates to from a gate of its own (:mod:`pipeline.local.registry_gate` with ``--region``),
reached through ``SLIPWAY_ECR_REGIONS`` (:func:`pipeline.registry.base.endpoint`). Behind it, that region's
repositories live under ``<region>/`` in the one store -- separate repositories, so a replica holds only what was
replicated into it (a pull of anything else there is 404, as in AWS).

Replication (:func:`replicate`) is what ECR does by itself after a push to a repository the registry's replication
configuration matches (the Registry stack's ``AWS::ECR::ReplicationConfiguration``, read from the assembly): the
manifest, what it references, and its tag are copied to each destination region, asynchronously (a thread started
after the push answered). It needs no IAM of the pusher, as ECR's replication acts as its service-linked role.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterable

from pipeline.oci import INDEXES
from pipeline.registry.base import REGIONS_ENV

ENV = REGIONS_ENV
"""``region=host:port,...``: the address each region's registry is served at in the replay."""

MANIFEST = ", ".join((*INDEXES, "application/vnd.oci.image.manifest.v1+json",
                      "application/vnd.docker.distribution.manifest.v2+json"))  # fmt: skip


def namespaced(path: str, region: str) -> str:
    """The store's path of a registry request made to ``region``'s gate (``/v2/<name>/...`` -> under ``region/``)."""
    if not region or not path.startswith("/v2/") or path.rstrip("/") == "/v2":
        return path
    return f"/v2/{region}/{path[4:]}"


def mounted_from(query: str, region: str) -> str:
    """A cross-repository mount's ``from=`` names a repository of the same region."""
    if not region or "from=" not in query:
        return query
    return "&".join(f"from={region}/{p[5:]}" if p.startswith("from=") else p for p in query.split("&"))


def outward(value: str, region: str) -> str:
    """A store's ``Location`` (an upload's URL) as the region's gate names it."""
    return value.replace(f"/v2/{region}/", "/v2/", 1) if region else value


def matches(rules: Iterable[tuple[tuple[str, ...], tuple[str, ...]]], repository: str) -> list[str]:
    """The regions ``repository`` replicates to (``rules``: ``(regions, prefixes)``, ECR's ``PREFIX_MATCH``)."""
    found: dict[str, None] = {}
    for regions, prefixes in rules:
        if any(repository.startswith(p) for p in prefixes):
            found.update(dict.fromkeys(regions))
    return list(found)


def replicate(store: tuple[str, int], repository: str, reference: str, regions: list[str]) -> threading.Thread:
    """Copy ``repository``'s manifest ``reference`` (a tag or digest, just pushed) into each region, in the
    background; returns the thread (tests join it)."""
    thread = threading.Thread(target=_copy_all, args=(store, repository, reference, regions), daemon=True)
    thread.start()
    return thread


def _copy_all(store: tuple[str, int], repository: str, reference: str, regions: list[str]) -> None:
    for region in regions:
        _copy(store, repository, reference, f"{region}/{repository}")


def _request(store: tuple[str, int], method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    connection = http.client.HTTPConnection(*store, timeout=120)
    try:
        connection.request(method, path, body=body, headers={"Content-Length": str(len(body)), **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _copy(store: tuple[str, int], source: str, reference: str, target: str) -> None:
    status, headers, body = _request(store, "GET", f"/v2/{source}/manifests/{reference}", headers={"Accept": MANIFEST})
    if status != 200:
        return
    media_type = headers.get("content-type", "")
    document = json.loads(body)
    for child in document.get("manifests", []):
        _copy(store, source, child["digest"], target)
    for blob in [document.get("config", {}), *document.get("layers", [])]:
        if blob.get("digest"):
            _request(store, "POST", f"/v2/{target}/blobs/uploads/?mount={blob['digest']}&from={source}")
    _request(store, "PUT", f"/v2/{target}/manifests/{reference}", body, {"Content-Type": media_type})
