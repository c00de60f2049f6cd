"""ECR replication: an environment in another region runs its release from a replica in its own region.

Lambda runs an image only from an ECR repository in the function's own region; ECS and EKS could pull across regions,
but every task start would then cross regions and depend on the platform's. So a service with an environment outside
the platform's region has its repository replicated there -- same account, same name, same digests: the Registry
stack holds the registry's one replication configuration (:func:`plan`), a Replicas stack in each such region the
replica repositories with their own policies (exactly that region's accounts and functions), and every deploy there
names the replica, once it serves the whole release (:func:`pipeline.regional.await_replica`): ECR replicates
asynchronously.

ECR's replication quotas (https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html, "Amazon ECR
service quotas"; https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html): 10 rules per replication
configuration, 100 repository filters per rule, 25 unique destinations. Services sharing the same set of regions share
a rule; a rule holds 100 of them -- 1,000 replicated services at most, checked at validation (:func:`problems`).
A filter matches by prefix (ECR has no exact filter): ``payments/api`` also replicates ``payments/api-admin`` when
that exists; replication never widens who may pull (the replica's policy is the Replicas stack's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.naming import service_repository_name

if TYPE_CHECKING:  # the config's checks import this module: the model is read, never imported at run time
    from pipeline.config.model import PlatformConfig, Service

MAX_RULES = 10
MAX_FILTERS_PER_RULE = 100
MAX_DESTINATIONS = 25
DOCUMENTED = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html"


@dataclass(frozen=True)
class Rule:
    """One replication rule: these repositories to these regions (of the platform's own account)."""

    regions: tuple[str, ...]
    repositories: tuple[str, ...]


def replica_regions(platform_region: str, service: Service) -> tuple[str, ...]:
    """The regions other than the platform's where ``service`` has an environment, in config order, each once."""
    regions = (e.region or platform_region for e in service.environments)
    return tuple(dict.fromkeys(r for r in regions if r != platform_region))


def regions(config: PlatformConfig) -> tuple[str, ...]:
    """Every region the platform replicates to, in config order."""
    found = (r for _, service in config.services() for r in replica_regions(config.platform.region, service))
    return tuple(dict.fromkeys(found))


def replicated(config: PlatformConfig) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """``(repository, regions, where)`` of every replicated service (``where``: its path in platform.toml)."""
    for t, team in enumerate(config.teams):
        for s, service in enumerate(team.services):
            regions = replica_regions(config.platform.region, service)
            if regions:
                yield service_repository_name(team.name, service.name), regions, f"teams[{t}].services[{s}]"


def plan(config: PlatformConfig) -> list[Rule]:
    """The replication configuration's rules: services grouped by their set of regions, 100 to a rule."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for repository, regions, _ in replicated(config):
        groups.setdefault(tuple(sorted(regions)), []).append(repository)
    return [
        Rule(regions, tuple(names[i : i + MAX_FILTERS_PER_RULE]))
        for regions, names in groups.items()
        for i in range(0, len(names), MAX_FILTERS_PER_RULE)
    ]


def problems(config: PlatformConfig) -> Iterator[str]:
    """Where the replication the config needs passes ECR's quotas, naming the first service that does not fit."""
    rules, regions = 0, set[str]()
    groups: dict[tuple[str, ...], int] = {}
    for _, wanted, where in replicated(config):
        key = tuple(sorted(wanted))
        if groups.get(key, 0) % MAX_FILTERS_PER_RULE == 0:
            rules += 1
        groups[key] = groups.get(key, 0) + 1
        regions.update(wanted)
        if rules > MAX_RULES:
            yield (
                f"{where}.environments: ECR replication holds {MAX_RULES} rules of {MAX_FILTERS_PER_RULE} "
                f"repositories ({DOCUMENTED}); services grouped by their regions need more here: give services "
                "the same set of regions"
            )
            return
        if len(regions) > MAX_DESTINATIONS:
            yield (
                f"{where}.environments: ECR replication reaches {MAX_DESTINATIONS} destinations at most "
                f"({DOCUMENTED}); this service brings the count to {len(regions)}"
            )
            return
