"""``slipway build``: build one platform, push it by digest, check what landed, write the build record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline import bases, records
from pipeline.arguments import build_arg_pairs
from pipeline.builders import BUILDERS, BuildRequest, BuildSecretSource, get_builder
from pipeline.config import PLATFORMS
from pipeline.oci import image_size
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.reproducible import source_date_epoch
from pipeline.stitch import inspect_child


def register(commands: Any) -> None:
    parser = commands.add_parser("build", help="build and push one platform by digest", description=__doc__)
    parser.add_argument("--repository", required=True, help="host/name, no tag")
    parser.add_argument("--platform", required=True, choices=PLATFORMS)
    parser.add_argument("--context", type=Path, default=Path())
    parser.add_argument("--dockerfile", type=Path, default=None, help="default: CONTEXT/Dockerfile")
    parser.add_argument("--builder", choices=BUILDERS, default="buildx")
    parser.add_argument("--secret", action="append", default=[], help="id=NAME,env=VARIABLE (repeatable)")
    parser.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE, never a secret (repeatable)")
    parser.add_argument("--target", default="", help="Dockerfile stage to build (default: the last)")
    parser.add_argument("--network-host", action="store_true", help="RUN steps use the host network")
    parser.add_argument(
        "--source-date",
        default="",
        help="the commit time (seconds or ISO 8601) for SOURCE_DATE_EPOCH; default $SOURCE_DATE_EPOCH, else the "
        "context's last commit",
    )
    parser.add_argument("--out", type=Path, required=True, help="build record (JSON)")
    parser.set_defaults(
        run=lambda a: build(
            repository=a.repository,
            platform=a.platform,
            context=a.context,
            dockerfile=a.dockerfile or a.context / "Dockerfile",
            builder=a.builder,
            secrets=[BuildSecretSource.parse(s) for s in a.secret],
            network_host=a.network_host,
            build_args=build_arg_pairs(a.build_arg),
            target=a.target,
            source_date=a.source_date,
            out=a.out,
        )
    )


def build(
    *,
    repository: str,
    platform: str,
    context: Path,
    dockerfile: Path,
    builder: str,
    out: Path,
    secrets: list[BuildSecretSource] | None = None,
    network_host: bool = False,
    build_args: dict[str, str] | None = None,
    target: str = "",
    source_date: str = "",
    client: RegistryClient | None = None,
) -> int:
    record = build_image(
        repository=repository, platform=platform, context=context, dockerfile=dockerfile, builder=builder,
        secrets=secrets, network_host=network_host, build_args=build_args, target=target, client=client,
        source_date_epoch=source_date_epoch(context, source_date),
    )  # fmt: skip
    records.write(out, record)
    print(
        f"{record.repository}@{record.digest} {platform} {record.size} bytes in {record.seconds}s, {record.cache_hits} cached steps"
    )
    return 0


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
) -> records.BuildRecord:
    """Build, push by digest, read back; the record says what landed."""
    repo = RepositoryRef.parse(repository)
    # Bases pinned by the platform's lock, for the ARGs this Dockerfile declares; explicit --build-arg wins.
    declared = bases.declared_args(dockerfile) if dockerfile.exists() else set()
    locked = {k: v for k, v in bases.build_args(bases.from_environment(), repo.host).items() if k in declared}
    build_args = {**locked, **(build_args or {})}
    request = BuildRequest(
        repository=str(repo),
        platform=platform,
        context=context,
        dockerfile=dockerfile,
        secrets=tuple(secrets or ()),
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
    return records.BuildRecord(
        repository=str(repo),
        platform=platform,
        digest=digest,
        size=size,
        seconds=seconds,
        builder=builder,
        cache_ref=request.cache_ref,
        cache_hits=built.cache_hits,
    )
