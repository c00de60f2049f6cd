"""The platform repository as its team keeps it in the replay's git host: this checkout's files, and the lock pinning
the runner image the team bootstrapped on this machine (:mod:`pipeline.runner_image`), committed as a person would."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import bases, runner_image
from pipeline.config import PlatformConfig
from pipeline.local.replay import sources
from pipeline.local.state import LocalState
from pipeline.progress import progress
from pipeline.references import ecr_registry
from pipeline.registry import client_for_host

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_LOCK = ROOT / "images" / "lock.json"


def lock(state: LocalState) -> dict[str, str]:
    """The platform repository's lock: this checkout's, pinning the runner its team bootstrapped on this machine
    (none before the first bootstrap) instead of the checkout's own pin."""
    local = bases.load(state.lock_path)
    committed = {k: v for k, v in bases.load(COMMITTED_LOCK).items() if k not in runner_image.TARGETS}
    return {**committed, **{k: local[k] for k in runner_image.TARGETS if k in local}}


def commits(config: PlatformConfig, state: LocalState, repository: str) -> dict[str, bytes]:
    """What the platform team committed to its repository besides this checkout's files: its lock (:func:`lock`).
    Empty for any other repository."""
    if repository != config.platform.source_repo:
        return {}
    return {"images/lock.json": (json.dumps(lock(state), indent=2) + "\n").encode()}


def bootstrap_runner(config: PlatformConfig, state: LocalState, branch: str, folder: str) -> None:
    """What the platform team does once, after its first `cdk deploy --all` deployed the Registry stack alone: build
    Slipway's runner image through the pull-through cache it made, pin it in the platform repository's lock, commit."""
    registry = ecr_registry(config.platform.account, config.platform.region)
    progress("runner: `slipway runner bootstrap` (the image every job runs in), then a commit of the lock")
    made = runner_image.bootstrap(client_for_host(registry), registry=registry, lock=bases.load(state.lock_path),
                                  checkout=ROOT)  # fmt: skip
    bases.save(state.lock_path, {**bases.load(state.lock_path), **{k: r.entry for k, r in made.items()}})
    for key, release in made.items():
        progress(f"  {key:<18} {release.entry}")
    sources.seed_repository(state.git_root, config.platform.source_repo, branch, ROOT, folder,
                            overlay=commits(config, state, config.platform.source_repo))  # fmt: skip
