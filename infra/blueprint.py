"""The shape of each service pipeline as plain data: what runs, where, in which order. No CDK here.

``service_pipeline.py`` renders a :class:`PipelineBlueprint` into CodePipeline and CodeBuild; tests check the shape
(native runner per platform, deploy order, approvals) without paying for a synth. ``shard`` spreads pipelines over
stacks so no stack nears CloudFormation's 500-resource cap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pipeline.config import BaseImage, BuildSecret, Service, Team
from pipeline.deployers.base import DeployTarget
from pipeline.platforms import slug

Runner = Literal["x86", "arm"]
T = TypeVar("T")

# Each platform builds on its own native runner; QEMU is never used in the cloud (5x slower measured here).
NATIVE_RUNNER: dict[str, Runner] = {"linux/amd64": "x86", "linux/arm64": "arm"}

# Resources a stack holds, measured from synth (tests/unit/test_sharding.py holds the estimate to it); used to shard
# without synthesizing. The stack's own: artifact and access-log buckets with their policies, the key. The team's
# shared roles (infra.team_roles), each with its policy: the pipeline, build and Stitch roles, and a deploy role per
# environment. A pipeline: itself, its Lint and Stitch projects, a project per build and per deploy (an EKS target's
# namespace may add the role's access entry on that cluster). Approvals and every action act as the pipeline role.
RESOURCES_PER_STACK = 5
RESOURCES_PER_TEAM = 6
RESOURCES_PER_ENVIRONMENT = 2
RESOURCES_PER_PIPELINE = 3
RESOURCES_PER_BUILD = 1
RESOURCES_PER_DEPLOY = 1
RESOURCES_PER_EKS_DEPLOY = 2
MAX_RESOURCES_PER_STACK = 400

# Template bytes one pipeline adds, as CDK writes and uploads them (1-space-indented JSON), measured from synth of the
# example (tests/unit/test_service_pipeline.py holds the estimate to it); every logical ID and ARN repeats the
# pipeline's name, so longer names add bytes per resource; the margin covers what the example does not show.
BYTES_PER_PIPELINE = 11_000
BYTES_PER_BUILD = 3_500
BYTES_PER_DEPLOY = 4_200
NAME_BYTES_PER_RESOURCE = 8
BYTES_MARGIN = 1.25
STACK_BYTES = 6_000  # the stack's own artifact and access-log buckets, their policies, the key
TEAM_BYTES = 14_500  # the pipeline and build roles with their policies (what every pipeline of the team shares)
BYTES_PER_ENVIRONMENT = 2_500  # a deploy role and its policy
MAX_TEMPLATE_BYTES = 900_000
"""Headroom under CloudFormation's 1,000,000-byte limit for a template uploaded to S3 (what `cdk deploy` does)."""


@dataclass(frozen=True)
class BuildStep:
    platform: str
    runner: Runner

    @property
    def slug(self) -> str:
        """``linux/arm64`` → ``arm64``: construct IDs, artifact names, cache tags."""
        return slug(self.platform)


@dataclass(frozen=True)
class DeployStep:
    target: DeployTarget
    """The typed target from platform.toml; its deployer (by ``kind``) owns the CLI options and the permissions."""
    approval: bool
    environment: str = ""
    """The environment this deploy promotes the release to; empty: the platform's own account (no environments)."""
    account: str = ""
    """The environment's workload account (its deploys assume the workload role there)."""
    region: str = ""

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def args(self) -> tuple[str, ...]:
        """``slipway deploy <kind>`` options naming the target."""
        return self.target.cli_args()


@dataclass(frozen=True)
class DeployStage:
    """One pipeline stage: an approval if configured, then the environment's targets side by side."""

    environment: str
    approval: bool
    steps: tuple[DeployStep, ...]

    @property
    def name(self) -> str:
        return f"Deploy-{self.environment}" if self.environment else "Deploy"

    @property
    def account(self) -> str:
        return self.steps[0].account if self.steps else ""

    @property
    def region(self) -> str:
        return self.steps[0].region if self.steps else ""

    @property
    def alarms(self) -> tuple[str, ...]:
        """What the environment's traffic shifts watch, every target's alarms once (the next stage's entry gate)."""
        return tuple(dict.fromkeys(a for step in self.steps for a in step.target.strategy.alarms))


@dataclass(frozen=True)
class PipelineBlueprint:
    team: str
    service: str
    repository_name: str
    source_repo: str
    branch: str
    dockerfile: str
    context: str
    file_paths: tuple[str, ...]
    secrets: tuple[BuildSecret, ...]
    builds: tuple[BuildStep, ...]
    deploys: tuple[DeployStep, ...]
    target: str = ""
    """Dockerfile stage to build (a base image's variant); default the last stage."""
    rebuilds: bool = False
    """A base image: rebuilt on the same commit when what it builds on is published again (an upstream fix), so a new
    index for a released commit is published beside the earlier one (``<commit>.2``…) instead of refused."""
    lock_key: str = ""
    """A base image's lock entry (``BASE_PYTHON``): its verified releases are published there."""
    rebuild_concurrency: int = 0
    """The team's budget: its pipelines a base release rebuilds at once (0: no budget)."""

    @property
    def name(self) -> str:
        return f"{self.team}-{self.service}"

    @property
    def stages(self) -> tuple[DeployStage, ...]:
        """The deploy stages in promotion order: one per environment (one in all without environments)."""
        stages: list[DeployStage] = []
        for step in self.deploys:
            if stages and stages[-1].environment == step.environment:
                stages[-1] = DeployStage(step.environment, stages[-1].approval, (*stages[-1].steps, step))
            else:
                stages.append(DeployStage(step.environment, step.approval, (step,)))
        return tuple(stages)

    @property
    def dockerfile_path(self) -> str:
        return self.dockerfile if self.context in ("", ".") else f"{self.context.rstrip('/')}/{self.dockerfile}"

    @property
    def estimated_bytes(self) -> int:
        """What the pipeline adds to its stack's template; the team's roles are :func:`estimate`'s."""
        made = BYTES_PER_PIPELINE + BYTES_PER_BUILD * len(self.builds) + BYTES_PER_DEPLOY * len(self.deploys)
        return int((made + NAME_BYTES_PER_RESOURCE * len(self.name) * self.estimated_resources) * BYTES_MARGIN)

    @property
    def estimated_resources(self) -> int:
        """What the pipeline adds to its stack; the team's roles are :func:`estimate`'s."""
        deploys = sum(RESOURCES_PER_EKS_DEPLOY if d.kind == "eks" else RESOURCES_PER_DEPLOY for d in self.deploys)
        return RESOURCES_PER_PIPELINE + RESOURCES_PER_BUILD * len(self.builds) + deploys

    @property
    def environments(self) -> frozenset[str]:
        """The environments it deploys to (``""``: the platform account's own targets): a deploy role each."""
        return frozenset(d.environment for d in self.deploys)


def blueprint(team: Team, service: Service, repository_name: str, platform_region: str = "") -> PipelineBlueprint:
    deploys = tuple(DeployStep(target, service.deploy.approval) for target in service.deploy.targets())
    deploys += tuple(
        DeployStep(target, environment.approval, environment.name, environment.account,
                   environment.region or platform_region)
        for environment in service.environments
        for target in environment.targets()
    )  # fmt: skip
    return PipelineBlueprint(
        team=team.name,
        service=service.name,
        repository_name=repository_name,
        source_repo=service.source_repo,
        branch=service.branch,
        dockerfile=service.dockerfile,
        context=service.context,
        file_paths=service.file_paths,
        secrets=service.secrets,
        builds=tuple(BuildStep(p, NATIVE_RUNNER[p]) for p in service.platforms),
        deploys=deploys,
        target=service.target,
        rebuild_concurrency=team.rebuild_concurrency,
    )


def base_blueprint(
    team: Team, base: BaseImage, repository_name: str, source_repo: str, branch: str
) -> PipelineBlueprint:
    """A curated base builds like a service (native per platform, stitched by digest) and deploys nowhere: its
    release is published to the lock store, which starts what builds on it. It rebuilds when its context changes
    (a push) or when a base it builds on is published (the lock store starts it)."""
    return PipelineBlueprint(
        team=team.name,
        service=f"base-{base.name}",
        repository_name=repository_name,
        source_repo=source_repo,
        branch=branch,
        dockerfile=base.dockerfile,
        context=base.context,
        file_paths=(f"{base.context.rstrip('/')}/**",),
        secrets=(),
        builds=tuple(BuildStep(p, NATIVE_RUNNER[p]) for p in base.platforms),
        deploys=(),
        target=base.target,
        rebuilds=True,
        lock_key=base.lock_key,
        rebuild_concurrency=team.rebuild_concurrency,
    )


REBUILD_WINDOW = (2, 6)
"""The weekly upstream refresh starts on Sunday between 02:00 and 06:00 UTC, spread over the window."""


def weekly_rebuild_time(pipeline_name: str) -> tuple[int, int]:
    """``(hour, minute)`` of a weekly schedule: spread over :data:`REBUILD_WINDOW` by a hash of the pipeline's name,
    so platforms (or any future per-base schedule) do not all start in the same minute, and the same pipeline keeps
    its minute across syntheses (no template churn)."""
    start, end = REBUILD_WINDOW
    offset = int(hashlib.sha256(pipeline_name.encode()).hexdigest(), 16) % ((end - start) * 60)
    return start + offset // 60, offset % 60


def estimate(group: Sequence[PipelineBlueprint]) -> tuple[int, int]:
    """``(resources, template bytes)`` of the stack holding ``group`` (one team's pipelines), never undercounted:
    the stack's own, the team's shared roles (a deploy role per environment) and every pipeline's."""
    environments = {e for bp in group for e in bp.environments}
    resources = RESOURCES_PER_STACK + RESOURCES_PER_TEAM + RESOURCES_PER_ENVIRONMENT * len(environments)
    shared = int((TEAM_BYTES + BYTES_PER_ENVIRONMENT * len(environments)) * BYTES_MARGIN)
    return (
        resources + sum(bp.estimated_resources for bp in group),
        STACK_BYTES + shared + sum(bp.estimated_bytes for bp in group),
    )


def shard(
    items: Sequence[PipelineBlueprint],
    limit: int = MAX_RESOURCES_PER_STACK,
    byte_limit: int = MAX_TEMPLATE_BYTES,
) -> list[list[PipelineBlueprint]]:
    """Group pipelines into stacks of at most ``limit`` estimated resources and ``byte_limit`` estimated template
    bytes (:func:`estimate`), one team per shard -- what CloudFormation limits (500 resources; 1,000,000 bytes a
    template), with headroom.

    Shards fill in config order and a team never shares a stack with another, so adding a service to one team
    never moves another team's pipelines (moving would replace them).
    """

    def fits(group: list[PipelineBlueprint]) -> bool:
        resources, size = estimate(group)
        return group[0].team == group[-1].team and resources <= limit and size <= byte_limit

    return fill(items, fits)


def fill(items: Sequence[T], fits: Callable[[list[T]], bool]) -> list[list[T]]:
    """Greedy and in order (what a stack holds never depends on what comes after it): an item joins the current
    group when the group with it still ``fits``, else it starts the next."""
    groups: list[list[T]] = []
    for item in items:
        if groups and fits([*groups[-1], item]):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
