"""The registry interface stitch, verify, build and deploy share."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import SlipwayError
from pipeline.oci import Manifest

# Every partition's suffix: amazonaws.com, amazonaws.com.cn, amazonaws.eu (the European Sovereign Cloud).
_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.(com(\.cn)?|eu)$", re.ASCII)


def ecr_account_region(host: str) -> tuple[str, str] | None:
    """``(account, region)`` of an ECR registry host; None for any other registry."""
    match = _ECR_HOST.match(host)
    return (match["account"], match["region"]) if match else None


ENDPOINT_ENV = "SLIPWAY_ECR_ENDPOINT"
REGIONS_ENV = "SLIPWAY_ECR_REGIONS"


def endpoint(host: str) -> str:
    """The address to connect to for ``host``: the host itself, except that the local replay serves ECR registries
    from stand-ins, as ``AWS_ENDPOINT_URL`` does for the AWS APIs: each region in ``$SLIPWAY_ECR_REGIONS``
    (``region=host:port,...``; a region not listed is not served), else every region at ``$SLIPWAY_ECR_ENDPOINT``.
    Names in image.json, task definitions and functions stay the ECR ones; only connections are redirected."""
    place = ecr_account_region(host)
    if place is None:
        return host
    if regions := os.environ.get(REGIONS_ENV, ""):
        served = dict(entry.split("=", 1) for entry in regions.split(",") if "=" in entry)
        return served.get(place[1], host)
    return os.environ.get(ENDPOINT_ENV, "") or host


def pull_address(reference: str) -> str:
    """``reference`` with its registry host replaced by :func:`endpoint` (for ``docker pull``/``run`` and builds)."""
    host, sep, rest = reference.partition("/")
    return f"{endpoint(host)}{sep}{rest}" if sep else reference


class RegistryError(SlipwayError):
    """The registry refused a request or is unreachable; the message names the image and the operation."""


class ManifestNotFoundError(RegistryError):
    pass


@dataclass(frozen=True)
class RepositoryRef:
    """``host/name`` of a repository, e.g. ``111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api``."""

    host: str
    name: str

    @classmethod
    def parse(cls, uri: str) -> RepositoryRef:
        host, _, name = uri.partition("/")
        if not name or "@" in uri or ":" in name:
            raise RegistryError(f"repository {uri!r}: expected 'host/name' without tag or digest")
        return cls(host, name)

    @property
    def ecr_account_region(self) -> tuple[str, str] | None:
        return ecr_account_region(self.host)

    def __str__(self) -> str:
        return f"{self.host}/{self.name}"


class RegistryClient(Protocol):
    def get_manifest(self, repo: RepositoryRef, reference: str, accept: Sequence[str]) -> Manifest:
        """Manifest bytes by tag or digest; raises :class:`ManifestNotFoundError` when absent."""
        ...

    def put_manifest(self, repo: RepositoryRef, reference: str, manifest: Manifest) -> str:
        """Store the manifest under a tag or its digest; returns the digest the registry reports."""
        ...

    def list_tags(self, repo: RepositoryRef) -> list[str]:
        """Every tag of ``repo`` (empty when the repository does not exist yet)."""
        ...

    def get_blob(self, repo: RepositoryRef, digest: str) -> bytes:
        """A blob's bytes (image configs are small; layers are never fetched)."""
        ...

    def has_blob(self, repo: RepositoryRef, digest: str) -> bool:
        """Whether ``repo`` already holds the blob (a push skips it)."""
        ...

    def put_blob(self, repo: RepositoryRef, digest: str, path: Path) -> None:
        """Upload the file at ``path`` as blob ``digest``; the registry checks the digest itself."""
        ...

    def referrers(self, repo: RepositoryRef, digest: str) -> list[dict[str, Any]] | None:
        """The descriptors the OCI 1.1 referrers API lists for ``digest``; ``None``: the registry lacks the API."""
        ...
