"""Progress lines (of releases and local runs) go to stderr, so stdout stays the result (a table, or JSON with --json).

Below every caller: the release library and local mode both report through it, and nothing in it imports back up."""

from __future__ import annotations

import sys


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
