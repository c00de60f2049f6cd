"""``slipway lint PATH...``: the Dockerfile policy gate. Exit 0 clean, 1 on findings, 2 on unreadable input (the
readable files are still linted and their findings printed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline import bases, config
from pipeline.arguments import build_arg_pairs
from pipeline.config.model import PLATFORMS
from pipeline.lint import LintResult, dockerfiles, lint_files
from pipeline.lint.base_user import registry_user
from pipeline.lint.policy import LOCAL_REGISTRY, policy_for
from pipeline.lint.sarif import to_sarif


def register(commands: Any) -> None:
    parser = commands.add_parser("lint", help="check Dockerfiles against the policy", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="Dockerfiles or directories to search")
    parser.add_argument("--config", type=Path, default=Path("platform.toml"), help="where allowed registries come from")
    parser.add_argument("--allow-registry", action="append", default=[], help="extra allowed base prefix (repeatable)")
    parser.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE used to resolve FROM lines")
    parser.add_argument("--target", default="", help="the stage the pipeline builds (default: the last)")
    parser.add_argument("--format", choices=("text", "sarif"), default="text")
    parser.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="base-image lock resolving FROM ${BASE_...} (default: .slipway/lock.json if present, else images/lock.json)",
    )
    parser.add_argument("--registry", default=LOCAL_REGISTRY, help="registry host the lock is relative to")
    parser.add_argument(
        "--platform", action="append", choices=PLATFORMS, default=[],
        help="a platform the image is built for: the file is judged with its predefined TARGET* ARGs (repeatable; "
        "default: every platform Slipway builds)",
    )  # fmt: skip
    parser.set_defaults(
        run=lambda a: lint(
            paths=a.paths,
            config_path=a.config,
            allow=a.allow_registry,
            build_args={
                **bases.build_args(_locked(a.paths) or _lock(a.lock), a.registry),
                **build_arg_pairs(a.build_arg),
            },
            target=a.target,
            output=a.format,
            platforms=tuple(a.platform) or PLATFORMS,
        )
    )


def _locked(paths: list[Path]) -> dict[str, str]:
    """The entries the files' ARGs name, read now from the lock store CodeBuild names (or ``SLIPWAY_BASE_LOCK``)."""
    found: dict[str, str] = {}
    for path in paths:
        found.update(bases.current(path if path.is_file() else None))
    return found


def _lock(given: Path | None) -> dict[str, str]:
    """A lock named with ``--lock`` must exist; the default one may be absent (no bases pinned yet)."""
    return bases.load(given, required=True) if given is not None else bases.load(default_lock())


def default_lock() -> Path:
    local = Path(".slipway/lock.json")
    return local if local.exists() else Path("images/lock.json")


def lint(
    *,
    paths: list[Path],
    config_path: Path,
    allow: list[str],
    build_args: dict[str, str],
    target: str = "",
    output: str = "text",
    platforms: tuple[str, ...] = PLATFORMS,
    read_bases: bool = True,
) -> int:
    """``read_bases``: read a base image's user from the registry when a final stage sets no USER (SW008)."""
    loaded = config.load(config_path) if config_path.exists() else None
    missing: list[str] = []
    files = dockerfiles(paths, missing)  # a missing path is reported, and the others are still linted
    found = lint_files(files, policy_for(loaded, allow), build_args, target=target, platforms=platforms,
                       image_user=registry_user() if read_bases else None)  # fmt: skip
    result = LintResult(found.findings, [*missing, *found.errors])
    if output == "sarif":
        print(json.dumps(to_sarif(result.findings), indent=2))
    else:
        for finding in result.findings:
            print(finding)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    print(
        f"{len(files)} Dockerfile(s), {len(result.findings)} finding(s), {len(result.errors)} unreadable",
        file=sys.stderr,
    )
    return 2 if result.errors else 1 if result.failed else 0
