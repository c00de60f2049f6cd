"""What ``slipway status --local`` reads through: the replay's stand-ins, reached as the replay's own process reaches
them -- AWS at moto as the stand-in's admin, each region's registry at its address, and the cluster stand-in as
``kubectl`` (the same stand-in a job's kubectl is in the replay's containers)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.deployers import workload
from pipeline.local import runner
from pipeline.local.state import STATE_ENV, LocalState

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def reading(state: LocalState) -> Iterator[None]:
    shim = state.directory / "status-bin"
    shim.mkdir(parents=True, exist_ok=True)
    kubectl = shim / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pipeline.local.kubectl_standin "$@"\n')
    kubectl.chmod(0o755)
    variables = {"PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}", STATE_ENV: str(state.directory.resolve()),
                 "PYTHONPATH": str(ROOT)}  # fmt: skip
    with runner._acting_for(state), workload.acting_as(variables):
        yield
