"""Rules for one value: what a field of the platform model carries in its ``Annotated`` type.

Each rule is a small callable object, ``rule(value) -> problem or None``, so a message says what was expected and
shows what was given (``shown``: escaped, and shortened past ``ECHO_LIMIT``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], str | None]
ECHO_LIMIT = 60


def shown(value: Any) -> str:
    """A value as a message shows it: repr (so newlines and NUL are visible), at most ECHO_LIMIT characters."""
    text = repr(value)
    return text if len(text) <= ECHO_LIMIT else f"{text[: ECHO_LIMIT - 5]}…{text[-4:]} ({len(str(value))} chars)"


@dataclass(frozen=True)
class Matches:
    """The value matches ``pattern`` in full; ``expected`` says what that is in the message."""

    pattern: re.Pattern[str]
    expected: str

    def __call__(self, value: Any) -> str | None:
        return None if self.pattern.fullmatch(value) else f"expected {self.expected}, got {shown(value)}"


@dataclass(frozen=True)
class OrEmpty:
    """``check``, for a value that may also be left empty."""

    check: Check

    def __call__(self, value: Any) -> str | None:
        return None if value == "" else self.check(value)


@dataclass(frozen=True)
class InRange:
    low: int
    high: int

    def __call__(self, value: Any) -> str | None:
        return None if self.low <= value <= self.high else f"expected {self.low}..{self.high}, got {shown(value)}"
