"""``slipway lint PATH...``: the Dockerfile policy gate. Exit 0 clean, 1 on findings, 2 on unreadable input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline import bases, config
from pipeline.lint import dockerfiles, lint_file
from pipeline.lint.rules import Policy
from pipeline.lint.sarif import to_sarif
from pipeline.references import ecr_registry

LOCAL_REGISTRY = "127.0.0.1:5000"


def register(commands: Any) -> None:
    parser = commands.add_parser("lint", help="check Dockerfiles against the policy", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="Dockerfiles or directories to search")
    parser.add_argument("--config", type=Path, default=Path("platform.toml"), help="where allowed registries come from")
    parser.add_argument("--allow-registry", action="append", default=[], help="extra allowed base prefix (repeatable)")
    parser.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE used to resolve FROM lines")
    parser.add_argument("--format", choices=("text", "sarif"), default="text")
    parser.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="base-image lock resolving FROM ${BASE_...} (default: .slipway/lock.json if present, else images/lock.json)",
    )
    parser.add_argument("--registry", default=LOCAL_REGISTRY, help="registry host the lock is relative to")
    parser.set_defaults(
        run=lambda a: lint(
            paths=a.paths,
            config_path=a.config,
            allow=a.allow_registry,
            build_args={
                **bases.build_args(bases.from_environment() or bases.load(a.lock or default_lock()), a.registry),
                **dict(item.split("=", 1) for item in a.build_arg if "=" in item),
            },
            output=a.format,
        )
    )


def default_lock() -> Path:
    local = Path(".slipway/lock.json")
    return local if local.exists() else Path("images/lock.json")


def policy_for(loaded: config.PlatformConfig | None, extra: list[str], local_registry: str = LOCAL_REGISTRY) -> Policy:
    """Bases may come from each pull-through prefix and each team's curated repositories, in ECR or in the local
    registry (``local_registry``: wherever `slipway local up` serves it)."""
    prefixes: list[str] = []
    hosts = [local_registry]
    if loaded is not None:
        hosts.insert(0, ecr_registry(loaded.platform.account, loaded.platform.region))
        names = [u.prefix for u in loaded.upstreams] + [f"{t.name}/bases" for t in loaded.teams]
        prefixes = [f"{host}/{name}/" for host in hosts for name in names]
    return Policy(allowed_registries=tuple(prefixes + extra))


def lint(
    *,
    paths: list[Path],
    config_path: Path,
    allow: list[str],
    build_args: dict[str, str],
    output: str = "text",
) -> int:
    loaded = config.load(config_path) if config_path.exists() else None
    policy = policy_for(loaded, allow)
    files = dockerfiles(paths)
    findings = [f for path in files for f in lint_file(path, policy, build_args)]
    if output == "sarif":
        print(json.dumps(to_sarif(findings), indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{len(files)} Dockerfile(s), {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0
