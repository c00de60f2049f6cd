"""AWS partitions: which one a region belongs to and its DNS suffix, from botocore's own ``partitions.json``.

The list of partitions grows (the European Sovereign Cloud's ``aws-eusc`` with ``eusc-de-east-1``, the ISO
partitions), and botocore ships it with every release: reading it keeps Slipway's region rule and ARNs in step with
the SDK that makes the calls, instead of a hand-written pattern that refuses a region AWS serves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from botocore.loaders import create_loader


@dataclass(frozen=True)
class Partition:
    name: str
    """``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-eusc``…: what ARNs carry."""
    dns_suffix: str
    """``amazonaws.com``, ``amazonaws.com.cn``, ``amazonaws.eu``…: what service host names end with."""
    regions: re.Pattern[str]


@functools.cache
def partitions() -> tuple[Partition, ...]:
    data = create_loader().load_data("partitions")
    return tuple(
        Partition(p["id"], p["outputs"]["dnsSuffix"], re.compile(p["regionRegex"], re.ASCII))
        for p in data["partitions"]
    )


def partition_of(region: str) -> Partition | None:
    """The partition whose region pattern ``region`` matches; None for a string that is no region."""
    return next((p for p in partitions() if p.regions.fullmatch(region)), None)


def is_region(region: str) -> bool:
    return partition_of(region) is not None


def partition_for(region: str) -> str:
    """The ARN partition of ``region`` (``aws`` for a string no partition claims: validation reports it first)."""
    found = partition_of(region)
    return found.name if found else "aws"


def dns_suffix(region: str) -> str:
    found = partition_of(region)
    return found.dns_suffix if found else "amazonaws.com"
