"""``slipway bases``: the base-image lock.

``publish`` (a base's Stitch job, after verify) writes the release to the lock store and starts every pipeline
registered as building on it; ``refresh`` (the platform pipeline, weekly and on a push of the lock) resolves the
committed lock's upstream tags again and publishes the digests that moved; ``continue`` (every Stitch job, once its
images are built) starts the next pipeline waiting in its team's rebuild lane. ``update`` pins a checkout's lock file to
what the registry serves now: upstream entries by their tag, curated bases to the newest release their own pipelines
published (the tag whose commit comes first in the checkout's history, ``<commit>.N`` for a rebuild of it) -- a view
for a person; jobs read the lock store.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pipeline import bases as lock
from pipeline import config, lock_store
from pipeline.errors import InputError
from pipeline.naming import base_repository_name
from pipeline.table import render

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
    publish_parser = verbs.add_parser(
        "publish", help="write a verified base release to the lock store and start what builds on it"
    )
    publish_parser.add_argument("--image-json", type=Path, required=True, help="the release Stitch made")
    publish_parser.add_argument("--key", required=True, help="the base's lock key (BASE_PYTHON)")
    publish_parser.add_argument(
        "--build", action="append", type=Path, default=[],
        help="a build record of the release (repeatable): the entries it was built with are recorded",
    )  # fmt: skip
    publish_parser.set_defaults(run=lambda a: publish(image_json=a.image_json, key=a.key, builds=a.build))
    refresh_parser = verbs.add_parser(
        "refresh", help="resolve the committed lock's upstream tags again and publish the digests that moved"
    )
    refresh_parser.add_argument(
        "--lock", type=Path, default=DEFAULT_LOCK, help="the upstream tags the platform follows"
    )
    refresh_parser.add_argument(
        "--registry", required=True, help="the platform's registry host (its pull-through cache)"
    )
    refresh_parser.set_defaults(run=lambda a: refresh(lock_path=a.lock, registry=a.registry))
    continue_parser = verbs.add_parser(
        "continue", help="start the next pipeline waiting in this pipeline's rebuild lane (a Stitch job, once built)"
    )
    continue_parser.set_defaults(run=lambda a: continue_lane())


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


def _store() -> lock_store.LockStore:
    store = lock_store.from_environment(publishing=True)
    if store is None:
        raise InputError(f"${lock_store.PARAMETERS_ENV} is not set: publishing writes the lock store the job names")
    return store


def _report(publications: list[lock_store.Publication]) -> None:
    rows = [
        (p.key, p.entry, "published" if p.changed else "unchanged", ", ".join(p.started) or "-",
         ", ".join(p.queued) or "-")
        for p in publications
    ]  # fmt: skip
    print(render(("key", "entry", "state", "started", "queued"), rows))


def publish(*, image_json: Path, key: str, builds: list[Path] | None = None) -> int:
    """A base's Stitch job, after verify: its release becomes the lock entry ``key``; what builds on it starts."""
    import os

    from pipeline.records import BuildRecord, ImageRecord
    from pipeline.registry import RepositoryRef

    if not lock.KEY.fullmatch(key):
        raise InputError(f"--key {key!r}: expected a build argument name like BASE_PYTHON")
    record = ImageRecord.load(image_json)
    entry = lock.entry(RepositoryRef.parse(record.repository).name, record.tag, record.index_digest)
    built_with: dict[str, str] = {}
    for path in builds or []:
        built_with.update(BuildRecord.load(path).bases)
    publication = _store().publish(
        key, entry, pipeline=os.environ.get(lock_store.PIPELINE_ENV, ""), built_with=built_with if builds else None,
        announce=print,
    )  # fmt: skip
    _report([publication])
    return 0


def refresh(*, lock_path: Path, registry: str) -> int:
    """The weekly refresh (and a push of the lock): each committed entry's tag resolved now, through the pull-through
    cache -- a moved upstream tag is a new digest -- and published; an unmoved one starts nothing."""
    from pipeline.registry import client_for_host
    from pipeline.runner_image import TARGETS as RUNNERS

    # The runner is the platform's own build, pinned by a commit (`slipway runner bootstrap`): no upstream to follow.
    committed = {k: v for k, v in lock.load(lock_path, required=True).items() if k not in RUNNERS}
    store = _store()
    resolved = lock.update(committed, client_for_host(registry), registry)
    _report([store.publish(key, resolved[key], announce=print) for key in sorted(resolved)])
    return 0


def continue_lane() -> int:
    """A Stitch job, once its images are built: the next pipeline of its team's rebuild lane starts. Nothing to do
    without a lock store (a job run by hand) or a budget."""
    import os

    store = lock_store.from_environment(publishing=True)
    pipeline = os.environ.get(lock_store.PIPELINE_ENV, "")
    if store is None or not pipeline:
        print("no lock store or pipeline named: no rebuild lane to continue")
        return 0
    started = store.continue_lane(pipeline, announce=print)
    if not started:
        print(f"{pipeline}: nothing waiting in its rebuild lane")
    return 0
