"""Repository names: one rule, used by the CDK app, local mode and the lock alike."""

from __future__ import annotations


def service_repository_name(team: str, service: str) -> str:
    """``<team>/<service>``: where a service's releases (and its registry cache) live."""
    return f"{team}/{service}"


def base_repository_name(team: str, base: str) -> str:
    """``<team>/bases/<name>``: a curated base image; SW001 allows ``<team>/bases/`` as a base-image prefix."""
    return f"{team}/bases/{base}"


def base_prefix(team: str) -> str:
    return f"{team}/bases"
