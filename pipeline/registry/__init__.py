"""Registry clients: one small interface (:class:`RegistryClient`), a module per API, one factory.

``distribution`` speaks the OCI distribution HTTP API (any registry, ECR included, with a token from
``ecr:GetAuthorizationToken``). Stitch, verify, build and deploy are written once against the interface and get their
client from :func:`client_for_host`: nothing else decides how to reach a registry.
"""

from __future__ import annotations

from typing import Any

from pipeline.registry.base import RegistryClient, RegistryError, RepositoryRef, ecr_account_region
from pipeline.registry.distribution import DistributionClient


def client_for_host(host: str, *, session: Any = None) -> RegistryClient:
    """The distribution API client for ``host``, authenticated with an ECR token (fetched on first use) for ECR --
    as ``session`` (a boto3 session: a workload role's) when given, else as the process's own credentials."""
    if (account_region := ecr_account_region(host)) is not None:
        from pipeline.registry.ecr_auth import ecr_basic_auth

        region = account_region[1]
        ecr = session.client("ecr", region_name=region) if session is not None else None
        return DistributionClient(authorization=lambda: ecr_basic_auth(region, ecr=ecr))
    return DistributionClient()


def client_for(repo: RepositoryRef, *, session: Any = None) -> RegistryClient:
    return client_for_host(repo.host, session=session)


__all__ = ["RegistryClient", "RegistryError", "RepositoryRef", "client_for", "client_for_host"]
