"""Progress lines of local runs go to stderr, so stdout stays the result (a table, or JSON with --json)."""

from __future__ import annotations

import sys


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
