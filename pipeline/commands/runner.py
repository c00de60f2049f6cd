"""``slipway runner``: Slipway's runner image (:mod:`pipeline.runner_image`).

``bootstrap`` builds the runner from this checkout on the lock's upstream Debian, releases it into the platform's
registry and pins it in the lock as ``RUNNER`` -- once before the first ``cdk deploy --all``, and again for each new
runner (commit the lock; the platform pipeline deploys it). ``dockerd`` (a build job's first command) starts the
image's own Docker daemon when none answers: CodeBuild runs a custom image in privileged mode without starting one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import bases
from pipeline import runner_image as runner


def register(commands: Any) -> None:
    parser = commands.add_parser("runner", help="Slipway's runner image", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    boot = verbs.add_parser("bootstrap", help="build the runner image, release it and pin it in the lock")
    boot.add_argument("--registry", required=True, help="the platform's registry host")
    boot.add_argument("--lock", type=Path, default=Path("images/lock.json"))
    boot.add_argument("--checkout", type=Path, default=Path(), help="the platform repository (Slipway's code)")
    boot.set_defaults(run=lambda a: bootstrap(registry=a.registry, lock_path=a.lock, checkout=a.checkout))
    daemon = verbs.add_parser("dockerd", help="start the image's Docker daemon unless one answers")
    daemon.set_defaults(run=lambda a: dockerd())


def bootstrap(*, registry: str, lock_path: Path, checkout: Path) -> int:
    from pipeline.registry import client_for_host

    entries = bases.load(lock_path, required=True)
    made = runner.bootstrap(client_for_host(registry), registry=registry, lock=entries, checkout=checkout.resolve())
    bases.save(lock_path, {**entries, **{key: release.entry for key, release in made.items()}})
    for key, release in made.items():
        print(f"{key} = {release.entry} ({'built' if release.created else 'already released'})")
    print(f"commit {lock_path}")
    return 0


def dockerd() -> int:
    print(runner.ensure_dockerd())
    return 0
