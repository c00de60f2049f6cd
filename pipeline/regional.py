"""A release in another region: the same repository name and digests on that region's registry (its ECR replica,
:mod:`pipeline.replication`), deployed only once the replica serves the whole release."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pipeline.errors import SlipwayError
from pipeline.records import ImageRecord
from pipeline.registry.base import ManifestNotFoundError, RegistryClient, RepositoryRef


class ReplicaError(SlipwayError):
    """The replica does not serve the release (yet); nothing was deployed (exit 1, as a failed deploy)."""


def regional(record: ImageRecord, region: str) -> ImageRecord:
    """The release as its replica in ``region`` serves it: the same account, repository name and digests on that
    region's registry host; ``record`` itself when ``region`` is empty or already its own."""
    repo = RepositoryRef.parse(record.repository)
    place = repo.ecr_account_region
    if not region or place is None or place[1] == region:
        return record
    host = repo.host.replace(f".dkr.ecr.{place[1]}.", f".dkr.ecr.{region}.", 1)
    return replace(record, repository=f"{host}/{repo.name}")


def await_replica(
    client: RegistryClient,
    record: ImageRecord,
    verify: Callable[[RegistryClient, ImageRecord], None],
    *,
    timeout: float,
    interval: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until the replica serves exactly ``record`` (``verify``: the check a deploy makes of the platform's
    repository, here of the replica), at most ``timeout`` seconds. A manifest not there yet is waited for; anything
    else the replica serves differently fails at once."""
    deadline = clock() + timeout
    while True:
        try:
            verify(client, record)
            return
        except ManifestNotFoundError as exc:
            if clock() >= deadline:
                raise ReplicaError(
                    f"image {record.index_uri}: the replica does not serve the release after {timeout:g} s ({exc}); "
                    "ECR replicates asynchronously, usually within minutes: run the deploy again; nothing was "
                    "deployed"
                ) from exc
        sleep(interval)
