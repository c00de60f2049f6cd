"""``slipway bases update``: pin the lock to what the registry serves now.

Run in the platform repository's checkout. Upstream entries (``UPSTREAM_*``, ``BUILDKIT``: pull-through-cache paths)
are re-resolved by their tag. Curated bases are pinned to the newest release their own pipelines published: the
release tag is the commit the pipeline built (``<commit>.N`` for a weekly rebuild of it), and the newest is the one
whose commit comes first in this checkout's history. A curated base no pipeline has published yet is left out, so a
fresh account bootstraps in waves: debian first, then what builds on it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pipeline import bases as lock
from pipeline import config
from pipeline.errors import InputError
from pipeline.naming import base_repository_name

DEFAULT_LOCK = Path("images/lock.json")


def register(commands: Any) -> None:
    parser = commands.add_parser("bases", help="manage the base-image lock", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    update_parser = verbs.add_parser("update", help="pin the lock to what the registry serves now")
    update_parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    update_parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    update_parser.add_argument(
        "--registry", required=True, help="registry host, e.g. <acct>.dkr.ecr.<region>.amazonaws.com"
    )
    update_parser.set_defaults(run=lambda a: update(lock_path=a.lock, registry=a.registry, config_path=a.config))


def history(checkout: Path) -> list[str]:
    """The checkout's commits, newest first."""
    completed = subprocess.run(["git", "rev-list", "HEAD"], cwd=checkout, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise InputError(f"{checkout}: not a git checkout of the platform repository ({completed.stderr.strip()})")
    return completed.stdout.split()


def update(*, lock_path: Path, registry: str, config_path: Path = Path("platform.toml")) -> int:
    from pipeline.registry import client_for_host

    if not lock_path.is_file():
        raise lock.LockError(f"{lock_path}: no lock there (bases update refreshes an existing lock)")
    loaded = config.load(config_path)
    curated = {b.lock_key: base_repository_name(t.name, b.name) for t in loaded.teams for b in t.base_images}
    entries = lock.load(lock_path)
    client = client_for_host(registry)
    upstream = lock.update({k: v for k, v in entries.items() if k not in curated}, client, registry)
    found = lock.published(client, registry, curated, history(config_path.resolve().parent))
    updated = {**upstream, **found}
    lock.save(lock_path, updated)
    changed = sorted(k for k in updated if updated[k] != entries.get(k))
    waiting = sorted(set(curated) - set(found))
    print(f"{lock_path}: {len(updated)} bases, {len(changed)} changed{': ' + ', '.join(changed) if changed else ''}")
    if waiting:
        print(f"not published yet (their pipelines run once what they build on is in the lock): {', '.join(waiting)}")
    return 0
