"""``slipway validate``: check platform.toml and report every problem with its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import config


def register(commands: Any) -> None:
    parser = commands.add_parser("validate", help="check platform.toml", description=__doc__)
    parser.add_argument("path", nargs="?", default="platform.toml", type=Path, help="default: %(default)s")
    parser.set_defaults(run=lambda args: validate(path=args.path))


def validate(*, path: Path) -> int:
    """Exit 0 when valid; an invalid file raises :class:`~pipeline.config.ConfigError` (exit 2, every problem)."""
    loaded = config.load(path)
    services = sum(1 for _ in loaded.services())
    bases = sum(len(t.base_images) for t in loaded.teams)
    print(
        f"{path}: ok — platform {loaded.platform.name!r} in {loaded.platform.account}/{loaded.platform.region}: "
        f"{len(loaded.teams)} teams, {services} services, {bases} base images, {len(loaded.upstreams)} upstreams"
    )
    return 0
