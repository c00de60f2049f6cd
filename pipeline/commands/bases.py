"""``slipway bases update``: re-resolve every base in the lock to the digest its tag serves now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import bases as lock

DEFAULT_LOCK = Path("images/lock.json")


def register(commands: Any) -> None:
    parser = commands.add_parser("bases", help="manage the base-image lock", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    update_parser = verbs.add_parser("update", help="refresh the lock's digests from a registry")
    update_parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    update_parser.add_argument(
        "--registry", required=True, help="registry host, e.g. 127.0.0.1:5000 or <acct>.dkr.ecr…"
    )
    update_parser.set_defaults(run=lambda a: update(lock_path=a.lock, registry=a.registry))


def update(*, lock_path: Path, registry: str) -> int:
    from pipeline.registry import client_for_host

    if not lock_path.is_file():
        raise lock.LockError(f"{lock_path}: no lock there (bases update refreshes an existing lock)")
    entries = lock.load(lock_path)
    updated = lock.update(entries, client_for_host(registry), registry)
    lock.save(lock_path, updated)
    changed = sorted(k for k in updated if updated[k] != entries.get(k))
    print(f"{lock_path}: {len(updated)} bases, {len(changed)} changed{': ' + ', '.join(changed) if changed else ''}")
    return 0
