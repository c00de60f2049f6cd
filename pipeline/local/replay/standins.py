"""The replay's stand-ins for what the cloud has and this machine lacks, mounted into container jobs at :data:`MOUNT`:
the EKS cluster (``bin/kubectl``: the cluster stand-in, run by the image's own Python from the image's own Slipway,
answering from the state directory) and ``site/``, the distributions its schema check imports, copied from this
machine's environment -- the runner itself holds nothing of the replay's."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
from pathlib import Path

MOUNT = "/slipway-standins"
DISTRIBUTIONS = ("kubernetes-validate",)
"""What the local EKS check imports (:func:`pipeline.local.verify.schema_check`), with what it requires."""


def prepare(directory: Path) -> Path:
    """``<directory>/standins``, made once."""
    root = directory / "standins"
    ready = root / ".ready"
    if ready.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    kubectl = root / "bin" / "kubectl"
    kubectl.write_text('#!/bin/sh\nexec python3 -m pipeline.local.kubectl_standin "$@"\n')
    kubectl.chmod(0o755)
    site = root / "site"
    for name in requirements(DISTRIBUTIONS):
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or ():
            located = Path(str(distribution.locate_file(file)))
            if located.is_file() and ".." not in file.parts:
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(located, site / file)
    ready.write_text("")
    return root


def requirements(names: tuple[str, ...]) -> list[str]:
    """``names`` and what they require (recursively), as installed here; a requirement not installed is skipped (a
    marker that does not apply to this Python)."""
    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        key = distribution.metadata["Name"].lower()
        if key in seen:
            continue
        seen[key] = None
        todo += [
            re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in distribution.requires or () if "extra ==" not in r
        ]
    return list(seen)
