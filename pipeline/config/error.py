"""The one error platform.toml can cause: every problem found, each naming the key path."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import InputError


def _path_order(problem: str) -> list[tuple[int, str]]:
    """Sort key: the key path with its indexes as numbers (``teams[2]`` before ``teams[10]``)."""
    path = problem.split(": ", 1)[0]
    return [
        (int(part), "") if part.isascii() and part.isdigit() else (-1, part)
        for part in re.split(r"[.\[\]]+", path)
        if part
    ]


class ConfigError(InputError):
    """``platform.toml`` is unreadable or invalid (exit 2); ``problems`` holds one line per problem, sorted by key
    path so field errors and cross-field errors about one key stand together."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        self.source = source
        self.problems = sorted(problems, key=_path_order)
        lines = [f"{source}: {p}" for p in self.problems]
        super().__init__("\n".join([*lines, f"{source}: {len(self.problems)} problem(s)"]))
