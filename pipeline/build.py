"""One platform built, pushed by digest and read back: what ``slipway build``, local mode and the benchmarks share."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pipeline import bases, records
from pipeline.builders import BuildRequest, BuildSecretSource, get_builder
from pipeline.oci import image_size
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.registry.base import endpoint
from pipeline.stitch import inspect_child

TRUST_SECRET = "ca_bundle"


def runner_trust(secrets: list[BuildSecretSource]) -> tuple[BuildSecretSource, ...]:
    """The runner's own CA bundle as BuildKit secret ``ca_bundle``, when the runner trusts a TLS-intercepting proxy
    (``PIP_CERT``/``SSL_CERT_FILE`` name a file; unset on CodeBuild): package downloads inside a build verify TLS the
    way the runner does, and the CA never lands in a layer. A Dockerfile opts in with an optional secret mount."""
    if any(s.id == TRUST_SECRET for s in secrets):
        return ()
    for variable in ("PIP_CERT", "SSL_CERT_FILE"):
        path = os.environ.get(variable, "")
        if path and Path(path).is_file():
            return (BuildSecretSource(TRUST_SECRET, src=path),)
    return ()


def build_image(
    *,
    repository: str,
    platform: str,
    context: Path,
    dockerfile: Path,
    builder: str,
    secrets: list[BuildSecretSource] | None = None,
    network_host: bool = False,
    build_args: dict[str, str] | None = None,
    target: str = "",
    client: RegistryClient | None = None,
    source_date_epoch: int = 0,
    use_cache: bool = True,
    sbom_out: Path | None = None,
) -> records.BuildRecord:
    """Build, push by digest, read back; the record says what landed. ``sbom_out``: where the image's SBOM is
    written (Stitch signs it beside the release)."""
    repo = RepositoryRef.parse(repository)
    # Bases pinned by the platform's lock, for the ARGs this Dockerfile declares; explicit --build-arg wins.
    # Read now, from the lock store in CodeBuild: registering this pipeline first as building on its FROM bases.
    declared = bases.declared_args(dockerfile) if dockerfile.exists() else set()
    explicit = dict(build_args or {})
    used = {k: v for k, v in bases.current(dockerfile, register=True).items() if k in declared and k not in explicit}
    build_args = {**bases.build_args(used, endpoint(repo.host)), **explicit}
    request = BuildRequest(
        repository=str(repo),
        platform=platform,
        context=context,
        dockerfile=dockerfile,
        secrets=tuple(secrets or ()) + runner_trust(secrets or []),
        network_host=network_host,
        build_args=build_args or {},
        target=target,
        source_date_epoch=source_date_epoch,
        use_cache=use_cache,
    )
    registry = client or client_for(repo)
    started = time.monotonic()
    built = get_builder(builder, client=registry).build(request)
    digest = built.digest
    seconds = round(time.monotonic() - started, 2)
    # Read back what was pushed: the digest must name bytes for this platform, and the size is what is stored.
    _, manifest = inspect_child(registry, repo, digest, platform)
    size = image_size(manifest)
    if sbom_out is not None and built.sbom is not None:
        sbom_out.write_text(json.dumps(built.sbom, indent=1, sort_keys=True) + "\n")
    return records.BuildRecord(
        repository=str(repo),
        platform=platform,
        digest=digest,
        size=size,
        seconds=seconds,
        builder=builder,
        cache_ref=request.cache_ref,
        cache_hits=built.cache_hits,
        bases=used,
    )
