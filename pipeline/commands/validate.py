"""``slipway validate``: check platform.toml and report every problem with its key path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipeline import config

EXIT_INVALID = 2


def register(commands: Any) -> None:
    parser = commands.add_parser("validate", help="check platform.toml", description=__doc__)
    parser.add_argument("path", nargs="?", default="platform.toml", type=Path, help="default: %(default)s")
    parser.set_defaults(run=lambda args: validate(path=args.path))


def validate(*, path: Path) -> int:
    try:
        loaded = config.load(path)
    except config.ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_INVALID
    services = sum(1 for _ in loaded.services())
    bases = sum(len(t.base_images) for t in loaded.teams)
    print(
        f"{path}: ok — platform {loaded.platform.name!r} in {loaded.platform.account}/{loaded.platform.region}: "
        f"{len(loaded.teams)} teams, {services} services, {bases} base images, {len(loaded.upstreams)} upstreams"
    )
    return 0
