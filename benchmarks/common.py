"""Shared output for the benchmark scripts: a table on stdout, JSON under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
"""Where results are written; ``SLIPWAY_BENCH_RESULTS`` moves them (the smoke run in the tests)."""


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, {platform.platform(terse=True)}"


def emit(
    name: str,
    rows: list[dict[str, Any]],
    columns: Sequence[str],
    note: str = "",
    summary: dict[str, Any] | None = None,
) -> None:
    """``summary``: the benchmark's verdicts, written as top-level keys beside the rows (and printed)."""
    from pipeline.table import render

    print(f"\n== {name} ({machine()})")
    print(render(columns, [[str(row.get(c, "")) for c in columns] for row in rows]))
    if note:
        print(note)
    for key, value in (summary or {}).items():
        print(f"{key}: {value}")
    results = Path(os.environ.get("SLIPWAY_BENCH_RESULTS") or RESULTS)
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(
        json.dumps({"machine": machine(), "note": note, **(summary or {}), "rows": rows}, indent=2) + "\n"
    )
