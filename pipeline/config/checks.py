"""Rules that span several values of ``platform.toml``: uniqueness, credentials, regions and cross-references."""

from __future__ import annotations

from collections.abc import Iterator

from pipeline import partitions, replication
from pipeline.config.model import (
    PLATFORMS,
    PULL_THROUGH_SECRET_PREFIX,
    DeployTarget,
    EcsTarget,
    EksTarget,
    LambdaTarget,
    PlatformConfig,
    Service,
    Team,
    Upstream,
    is_region,
)
from pipeline.config.strategy import MAX_SHIFT_SECONDS
from pipeline.config.values import shown


def _duplicates(names: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield index, name
        seen.add(name)


def check_model(config: PlatformConfig) -> Iterator[str]:
    """Every cross-value problem of a loaded config."""
    kms_region = config.registry.kms_key_region
    if kms_region and is_region(config.platform.region) and kms_region != config.platform.region:
        yield (
            f"registry.kms_key_arn: the key is in {kms_region}, the platform in {config.platform.region}; ECR needs a "
            "key in the repository's region"
        )
    yield from _check_deploy_targets(config)
    yield from _check_replication(config)
    for i, name in _duplicates([u.prefix for u in config.upstreams]):
        yield f"upstreams[{i}].prefix: duplicate prefix {name!r}"
    for i, upstream in enumerate(config.upstreams):
        yield from _check_upstream(upstream, f"upstreams[{i}]")
    for i, name in _duplicates([t.name for t in config.teams]):
        yield f"teams[{i}].name: duplicate team name {name!r}"
    bases = [(t, b, base.name) for t, team in enumerate(config.teams) for b, base in enumerate(team.base_images)]
    seen_bases: set[str] = set()
    for t, b, name in bases:
        if name in seen_bases:
            yield f"teams[{t}].base_images[{b}].name: base image {name!r} is defined by another team too (build args BASE_<NAME> must be unique)"
        seen_bases.add(name)
    for t, team in enumerate(config.teams):
        image_names = [b.name for b in team.base_images] + [s.name for s in team.services]
        for i, name in _duplicates(image_names):
            kind, index = ("base_images", i) if i < len(team.base_images) else ("services", i - len(team.base_images))
            yield f"teams[{t}].{kind}[{index}].name: duplicate image name {name!r} in team {team.name!r}"
        for b, base in enumerate(team.base_images):
            yield from _check_platforms(base.platforms, f"teams[{t}].base_images[{b}].platforms")
        yield from _check_notifications(config, team, f"teams[{t}].notifications")
        for s, service in enumerate(team.services):
            yield from _check_service(service, f"teams[{t}].services[{s}]")
            yield from _check_environments(team.workload_accounts, service, f"teams[{t}].services[{s}]")
            yield from _check_regions(config.platform.region, service, f"teams[{t}].services[{s}]")


def _check_upstream(upstream: Upstream, path: str) -> Iterator[str]:
    if upstream.needs_credential and not upstream.credential_secret:
        yield (
            f"{path}.credential_secret: {upstream.registry} needs a Secrets Manager secret named "
            f"'{PULL_THROUGH_SECRET_PREFIX}...'"
        )
    if upstream.credential_secret and not upstream.credential_secret.startswith(PULL_THROUGH_SECRET_PREFIX):
        yield (
            f"{path}.credential_secret: expected a name starting {PULL_THROUGH_SECRET_PREFIX!r} "
            f"(ECR requires it), got {shown(upstream.credential_secret)}"
        )
    if not upstream.needs_credential and upstream.credential_secret:
        yield f"{path}.credential_secret: {upstream.registry} takes no credential; remove the key"
    if not upstream.upstream_url:
        yield f"{path}.url: {upstream.registry} has no public endpoint; set the registry URL"


def _check_platforms(platforms: tuple[str, ...], path: str) -> Iterator[str]:
    if not platforms:
        yield f"{path}: expected at least one of {', '.join(PLATFORMS)}"
    for i, name in _duplicates(list(platforms)):
        yield f"{path}[{i}]: duplicate platform {name!r}"


def _check_service(service: Service, path: str) -> Iterator[str]:
    yield from _check_platforms(service.platforms, f"{path}.platforms")
    for i, name in _duplicates([s.id for s in service.secrets]):
        yield f"{path}.secrets[{i}].id: duplicate secret id {name!r}"
    for where, target in service.all_targets():
        if isinstance(target, LambdaTarget) and target.platform not in service.platforms:
            yield (
                f"{path}.{where}.architecture: {target.architecture!r} needs platform "
                f"{target.platform!r}, which the service does not build (platforms: {list(service.platforms)})"
            )
        if isinstance(target, LambdaTarget | EksTarget) and target.strategy.seconds > MAX_SHIFT_SECONDS:
            yield (
                f"{path}.{where}.strategy: its steps bake {target.strategy.seconds} s in all, more than the "
                f"{MAX_SHIFT_SECONDS} s a deploy job waits"
            )
        if isinstance(target, EksTarget) and target.strategy.kind == "canary":
            yield (
                f"{path}.{where}.strategy.kind: an EKS Deployment rolls out all at once or linearly; a canary needs a "
                "traffic split a Deployment does not have"
            )
        if isinstance(target, EcsTarget) and target.platform not in service.platforms:
            yield (
                f"{path}.{where}.cpu_architecture: {target.cpu_architecture!r} needs platform "
                f"{target.platform!r}, which the service does not build (platforms: {list(service.platforms)})"
            )


def _check_environments(workload_accounts: tuple[str, ...], service: Service, path: str) -> Iterator[str]:
    if service.environments and service.deploy.targets():
        yield (
            f"{path}.deploy: a service with environments deploys only through them; move its targets into an "
            "environment"
        )
    if service.environments and service.deploy.approval:
        yield f"{path}.deploy.approval: set approval on the environment it precedes instead"
    for i, name in _duplicates([e.name for e in service.environments]):
        yield f"{path}.environments[{i}].name: duplicate environment name {name!r}"
    for i, environment in enumerate(service.environments):
        where = f"{path}.environments[{i}]"
        if environment.account not in workload_accounts:
            yield (
                f"{where}.account: {environment.account!r} is not one of the team's workload_accounts "
                f"({', '.join(workload_accounts) or 'none'})"
            )
        if not environment.targets():
            yield f"{where}: expected at least one deploy target (lambda, ecs or eks)"


def _check_regions(platform_region: str, service: Service, path: str) -> Iterator[str]:
    """An environment in another region runs its release from a replica there (:mod:`pipeline.replication`); no role
    or image crosses a partition."""
    if not is_region(platform_region):
        return
    for i, environment in enumerate(service.environments):
        region = environment.region or platform_region
        if not is_region(region) or region == platform_region:
            continue
        theirs, ours = partitions.partition_for(region), partitions.partition_for(platform_region)
        if theirs != ours:
            yield (
                f"{path}.environments[{i}].region: {region} is in partition {theirs}, the platform in {ours}; roles "
                "and images do not cross partitions: run a platform in that partition"
            )


def _check_notifications(config: PlatformConfig, team: Team, path: str) -> Iterator[str]:
    """A Slack channel needs its workspace; a given topic is where the team's pipelines publish: their account and
    region (EventBridge and CodePipeline publish to a topic of their own region)."""
    told = team.notifications
    if told is None:
        return
    if bool(told.slack_channel_id) != bool(told.slack_workspace_id):
        missing = "slack_workspace_id" if told.slack_channel_id else "slack_channel_id"
        yield f"{path}.{missing}: a Slack channel needs both slack_workspace_id and slack_channel_id"
    if told.topic_arn:
        _, _, _, region, account, _ = told.topic_arn.split(":", 5)
        if (account, region) != (config.platform.account, config.platform.region):
            yield (
                f"{path}.topic_arn: the topic is in {account}/{region}; the team's pipelines publish from the "
                f"platform's {config.platform.account}/{config.platform.region}: give a topic there"
            )


def _check_replication(config: PlatformConfig) -> Iterator[str]:
    if is_region(config.platform.region):
        yield from replication.problems(config)


def _check_deploy_targets(config: PlatformConfig) -> Iterator[str]:
    """Two services (or two environments) deploying to one function, ECS service or EKS Deployment of one account
    and region would overwrite each other."""
    owners: dict[tuple[str, str, str], str] = {}
    for t, team in enumerate(config.teams):
        for s, service in enumerate(team.services):
            places = {f"environments[{i}]": (e.account, e.region or config.platform.region, e.name)
                      for i, e in enumerate(service.environments)}  # fmt: skip
            for where, target in service.all_targets():
                account, region, name = places.get(where.rsplit(".", 1)[0], (config.platform.account, "", ""))
                key = f"teams[{t}].services[{s}].{where}." + _TARGET_KEY[target.kind]
                owner = f"{team.name}/{service.name}" + (f" ({name})" if name else "")
                place = (account, region or config.platform.region, _describe(target))
                if place in owners:
                    yield f"{key}: {place[2]} in account {account} is already the target of {owners[place]}"
                else:
                    owners[place] = owner


_TARGET_KEY = {"lambda": "function_name", "ecs": "service", "eks": "deployment"}


def _describe(target: DeployTarget) -> str:
    if isinstance(target, LambdaTarget):
        return f"Lambda function {target.function_name!r}"
    if isinstance(target, EcsTarget):
        return f"ECS service {target.cluster}/{target.service}"
    return f"EKS Deployment {target.cluster}/{target.namespace}/{target.deployment}"
