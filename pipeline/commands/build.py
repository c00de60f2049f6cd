"""``slipway build``: build one platform, push it by digest, check what landed, write the build record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline import records
from pipeline.arguments import build_arg_pairs
from pipeline.attest.sbom import sbom_path
from pipeline.build import build_image
from pipeline.builders import BUILDERS, BuildSecretSource
from pipeline.config import PLATFORMS
from pipeline.registry import RegistryClient
from pipeline.reproducible import source_date_epoch

NETWORK_ENV = "SLIPWAY_BUILD_NETWORK"


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
    parser.add_argument(
        "--network-host",
        action="store_true",
        default=os.environ.get(NETWORK_ENV) == "host",
        help=f"RUN steps use the host network (default when ${NETWORK_ENV}=host: a daemon without a bridge network, "
        "as the local replay's)",
    )
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
        source_date_epoch=source_date_epoch(context, source_date), sbom_out=sbom_path(out),
    )  # fmt: skip
    records.write(out, record)
    print(
        f"{record.repository}@{record.digest} {platform} {record.size} bytes in {record.seconds}s, {record.cache_hits} cached steps"
    )
    return 0
