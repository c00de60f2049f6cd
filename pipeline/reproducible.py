"""``SOURCE_DATE_EPOCH`` for a build: the commit time, so the same commit gives the same bytes.

In CodeBuild the pipeline passes the source action's ``AuthorDate`` (ISO 8601); locally it is the author time of the
last commit that touched the build context. Either way it is a property of the commit, never of the clock.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

from pipeline.errors import InputError

ENV = "SOURCE_DATE_EPOCH"


def parse_source_date(text: str, *, what: str = "--source-date") -> int:
    """Seconds since the epoch from ``1700000000`` or an ISO 8601 time with a zone (``2026-11-29T06:23:28Z``)."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{what} {text[:60]!r}: expected seconds since 1970 or an ISO 8601 time with a zone")
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise InputError(f"{what} {text[:60]!r}: before 1970")
    return seconds


def commit_time(path: Path) -> int | None:
    """Author time of the last commit touching ``path``; None outside a git checkout or for untracked paths."""
    directory = path if path.is_dir() else path.parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), "log", "-1", "--format=%at", "--", "."],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    stamp = completed.stdout.strip()
    return int(stamp) if completed.returncode == 0 and stamp.isdigit() else None


def source_date_epoch(context: Path, explicit: str = "") -> int:
    """``explicit`` (the CLI flag), else ``$SOURCE_DATE_EPOCH``, else the context's commit time, else 0."""
    if explicit:
        return parse_source_date(explicit)
    if environment := os.environ.get(ENV, ""):
        return parse_source_date(environment, what=f"${ENV}")
    found = commit_time(context)
    return found if found is not None else 0
