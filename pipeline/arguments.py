"""Argument types the commands share: each turns bad input into a message that names the option (exit 2)."""

from __future__ import annotations

import argparse
import math
import re

from pipeline.errors import InputError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", re.ASCII)


def build_arg_pairs(items: list[str]) -> dict[str, str]:
    """``--build-arg NAME=VALUE`` (repeatable) as a dict; a bare ``NAME`` is refused, never silently dropped."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--build-arg {item[:80]!r}: expected NAME=VALUE")
        pairs[name] = value
    return pairs


def seconds(text: str) -> float:
    """A finite, non-negative number of seconds (``nan``, ``inf`` and negatives are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text[:40]!r}")
    return value


def dns_label(text: str) -> str:
    """A Kubernetes name (RFC 1123 label): what a namespace, Deployment or container name must be."""
    if not _DNS_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a DNS label (lowercase letters, digits, '-', at most 63), got {text[:80]!r}"
        )
    return text
