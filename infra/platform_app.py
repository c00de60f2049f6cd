"""Build the CDK app from a loaded platform config: the one place stacks are wired together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from aws_cdk import Annotations, App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.blueprint import base_blueprint, blueprint, shard
from infra.notifications import TeamNotificationsProps
from infra.pipelines_stack import PipelinePlan, PipelinesStack
from infra.platform_pipeline import PlatformStack
from infra.registry_stack import RegistryStack
from infra.repositories_stack import (
    RepositoriesStack,
    notifications_bytes,
    planned_repositories,
    planned_services,
    shard_repositories,
)
from infra.workload_stack import WorkloadStack, workload_places
from pipeline import bases, replication, runner_image
from pipeline.config import PlatformConfig, Team
from pipeline.naming import base_repository_name, service_repository_name

COMMITTED_LOCK = Path(__file__).resolve().parent.parent / "images" / "lock.json"


def build_app(
    config: PlatformConfig, *, outdir: str | None = None, nag: bool = True, lock: dict[str, str] | None = None
) -> App:
    """Compose every stack. cdk-nag's AwsSolutions pack runs on all of them; synth fails on any finding.

    ``lock``: the platform's lock (default: the checkout's ``images/lock.json``); its ``RUNNER`` is the image every
    CodeBuild project runs in. Without one, only the Registry stack: what ``slipway runner bootstrap`` needs (the
    pull-through cache its upstream Debian comes through) before every other stack can be deployed."""
    app = App(outdir=outdir) if outdir else App()
    # Account and region come from platform.toml, resolved once here, so synth needs no credentials.
    env = Environment(account=config.platform.account, region=config.platform.region)
    prefix = _stack_prefix(config)
    registry = RegistryStack(app, f"{prefix}-Registry", config=config, env=env, description="Slipway image supply")
    lock = bases.load(COMMITTED_LOCK) if lock is None else lock
    runner, deploy_runner = (lock.get(key, "") for key in runner_image.TARGETS)
    if not (runner and deploy_runner):
        Annotations.of(registry).add_info(
            f"no {' and '.join(runner_image.TARGETS)} in the lock: only this stack is synthesized; after deploying "
            "it, run `slipway runner bootstrap` and synthesize again"
        )
        return _finish(app, config, nag)
    repositories: dict[str, list[Stack]] = {}
    for team in config.teams:
        team_told = notifications(config, team)
        reserved = notifications_bytes(team_told)
        for n, group in enumerate(shard_repositories(planned_repositories(config, team), reserved=reserved), start=1):
            told = team_told if n == 1 else None
            stack = RepositoriesStack(app, f"{prefix}-Registry-{team.name}-{n}", team=team.name, repositories=group,
                                      notifications=told, env=env,
                                      description=f"Slipway repositories of team {team.name}")  # fmt: skip
            repositories.setdefault(team.name, []).append(stack)
        for region in replication.regions(config):
            replicas = planned_services(config, team, region)
            for n, group in enumerate(shard_repositories(replicas) if replicas else [], start=1):
                stack = RepositoriesStack(app, f"{prefix}-Replicas-{region}-{team.name}-{n}", team=team.name,
                                          repositories=group, env=Environment(account=env.account, region=region),
                                          description=f"Slipway replicas of team {team.name} in {region}")  # fmt: skip
                repositories.setdefault(team.name, []).append(stack)
    platform = None
    if config.platform.source_repo:
        platform = PlatformStack(app, f"{prefix}-Platform", config=config, registry=registry, env=env, runner=runner,
                                 deploy_runner=deploy_runner,
                                 description="Slipway: the platform repository's pipeline (upstream refresh)")  # fmt: skip
    services = [
        PipelinePlan(
            blueprint(team, service, service_repository_name(team.name, service.name), config.platform.region),
            service_repository_name(team.name, service.name),
        )
        for team, service in config.services()
    ]
    _pipeline_stacks(app, f"{prefix}-Pipelines", services, config, registry, env, platform, repositories, runner)
    if config.platform.source_repo:
        source, branch = config.platform.source_repo, config.platform.branch
        curated = [
            PipelinePlan(
                base_blueprint(team, base, base_repository_name(team.name, base.name), source, branch),
                base_repository_name(team.name, base.name),
            )
            for team in config.teams
            for base in team.base_images
        ]
        _pipeline_stacks(app, f"{prefix}-Bases", curated, config, registry, env, platform, repositories, runner)
    for account, region in workload_places(config):
        WorkloadStack(
            app,
            f"{prefix}-Workload-{account}-{region}",
            config=config,
            env=Environment(account=account, region=region),
            description="Slipway: the roles each environment's deploys assume in this workload account",
        )
    return _finish(app, config, nag)


def _finish(app: App, config: PlatformConfig, nag: bool) -> App:
    Tags.of(app).add("slipway:platform", config.platform.name)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def _pipeline_stacks(
    app: App,
    name: str,
    plans: list[PipelinePlan],
    config: PlatformConfig,
    registry: RegistryStack,
    env: Environment,
    platform: Stack | None,
    repositories: dict[str, list[Stack]],
    runner: str,
) -> None:
    """Shards numbered per team (``<name>-<team>-<n>``): a new pipeline in one team never renames another's stack.
    Each is deployed after its team's repository stacks and after ``platform``, whose pipeline refreshes the
    upstream entries of the lock store on creation (an order, not a reference: no export ties them)."""
    by_blueprint = {id(p.blueprint): p for p in plans}
    shards_per_team: Counter[str] = Counter()
    for group in shard([p.blueprint for p in plans]):
        team = group[0].team
        shards_per_team[team] += 1
        stack = PipelinesStack(
            app,
            f"{name}-{team}-{shards_per_team[team]}",
            config=config,
            registry=registry,
            runner=runner,
            plans=[by_blueprint[id(bp)] for bp in group],
            env=env,
            description=f"Slipway pipelines: {', '.join(bp.service for bp in group)}",
        )
        if platform is not None:
            stack.add_dependency(platform)
        for owner in repositories.get(team, []):
            stack.add_dependency(owner)  # the team's repositories exist before its first run (an order, no export)


def notifications(config: PlatformConfig, team: Team) -> TeamNotificationsProps | None:
    """The team's topic and failure rule, over every pipeline of the team (its services', its curated bases')."""
    if team.notifications is None:
        return None
    pipelines = [f"slipway-{team.name}-{s.name}" for s in team.services]
    if config.platform.source_repo:
        pipelines += [f"slipway-{team.name}-base-{b.name}" for b in team.base_images]
    told = team.notifications
    return TeamNotificationsProps(team=team.name, pipelines=tuple(pipelines), topic_arn=told.topic_arn,
                                  slack_workspace_id=told.slack_workspace_id, slack_channel_id=told.slack_channel_id)  # fmt: skip


def _stack_prefix(config: PlatformConfig) -> str:
    return "Slipway-" + "".join(part.capitalize() for part in config.platform.name.split("-"))
