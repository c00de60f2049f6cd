"""Where a pulled image may come from: the platform's pull-through prefixes and each team's curated bases."""

from __future__ import annotations

from pipeline import config
from pipeline.lint.rules import Policy
from pipeline.naming import base_prefix
from pipeline.references import ecr_registry

LOCAL_REGISTRY = "127.0.0.1:5000"


def policy_for(loaded: config.PlatformConfig | None, extra: list[str], local_registry: str = LOCAL_REGISTRY) -> Policy:
    """Bases may come from each pull-through prefix and each team's curated repositories, in ECR or in the local
    registry (``local_registry``: wherever `slipway local up` serves it; empty for ECR only, as the cloud's Lint job)."""
    prefixes: list[str] = []
    hosts = [local_registry] if local_registry else []
    if loaded is not None:
        hosts.insert(0, ecr_registry(loaded.platform.account, loaded.platform.region))
        names = [u.prefix for u in loaded.upstreams] + [base_prefix(t.name) for t in loaded.teams]
        prefixes = [f"{host}/{name}/" for host in hosts for name in names]
    return Policy(allowed_registries=tuple(prefixes + extra))
