"""Prop validation shared by Slipway's constructs, after aws-cdk's own: collect every problem, then raise once."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import Token


class PropsError(ValueError):
    """A construct received invalid props; the message names each prop, the value received and the fix."""

    def __init__(self, construct: str, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{construct}: " + "; ".join(self.problems))


def raise_if_any(construct: str, problems: list[str]) -> None:
    if problems:
        raise PropsError(construct, problems)


def check_range(problems: list[str], prop: str, value: int, low: int, high: int) -> None:
    """Tokens (values known only at deploy time) are skipped, as aws-cdk does."""
    if not Token.is_unresolved(value) and not low <= value <= high:
        problems.append(f"{prop}: expected {low}..{high}, got {value}")


_ACCOUNT = re.compile(r"^\d{12}$")


def check_account(problems: list[str], prop: str, value: str) -> None:
    if not _ACCOUNT.fullmatch(value):
        problems.append(f"{prop}: expected a 12-digit account id, got {value!r}")
