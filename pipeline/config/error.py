"""The one error platform.toml can cause: every problem found, each naming the key path."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import InputError


def _path_order(problem: str) -> list[tuple[bool, int | str]]:
    """Sort key: the key path (up to the first ': ') with its indexes as numbers (``teams[2]`` before ``teams[10]``);
    at one position a name sorts before an index, so a string never meets a number."""
    key: list[tuple[bool, int | str]] = []
    for part in re.split(r"[.\[\]]+", problem.partition(": ")[0]):
        index = part.isascii() and part.isdigit()
        if part:
            key.append((index, int(part) if index else part))
    return key


class ConfigError(InputError):
    """``platform.toml`` is unreadable or invalid (exit 2); ``problems`` holds one line per problem, sorted by key
    path so field errors and cross-field errors about one key stand together."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        self.source = source
        self.problems = sorted(problems, key=_path_order)
        lines = [f"{source}: {p}" for p in self.problems]
        super().__init__("\n".join([*lines, f"{source}: {len(self.problems)} problem(s)"]))
