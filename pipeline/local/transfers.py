"""Bytes the local registry moved (#30): what a build pulled from and pushed to it, measured where they pass.

The registry gate records each request body it forwards (pushes: blob uploads, manifests) and each response body it
returns (pulls answered by the registry itself); the S3 stand-in records each blob it serves (a blob GET is
redirected there, as ECR redirects to S3). Both append one JSON line per transfer to the file ``SLIPWAY_TRANSFER_LOG``
names (local mode: ``<state>/logs/transfers.jsonl``); :func:`since` sums what was appended after a :func:`mark`.
Nothing is recorded when the variable is unset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV = "SLIPWAY_TRANSFER_LOG"
PUSHED, PULLED = "pushed", "pulled"


def log_path(state: Path) -> Path:
    return state.resolve() / "logs" / "transfers.jsonl"


def record(direction: str, size: int, what: str) -> None:
    """Append one transfer; one ``write`` of one line to a file opened ``O_APPEND``, so the gate's and the S3
    stand-in's threads never interleave within a line."""
    target = os.environ.get(ENV)
    if not target or size <= 0:
        return
    line = json.dumps({"direction": direction, "bytes": size, "what": what}) + "\n"
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class Moved:
    pushed: int = 0
    pulled: int = 0

    @property
    def total(self) -> int:
        return self.pushed + self.pulled


def mark(path: Path) -> int:
    """Where the log ends now: :func:`since` counts what comes after."""
    return path.stat().st_size if path.exists() else 0


def since(path: Path, offset: int) -> Moved:
    if not path.exists():
        return Moved()
    with path.open("rb") as log:
        log.seek(offset)
        entries = [json.loads(line) for line in log.read().splitlines() if line.strip()]
    return Moved(
        pushed=sum(e["bytes"] for e in entries if e["direction"] == PUSHED),
        pulled=sum(e["bytes"] for e in entries if e["direction"] == PULLED),
    )
