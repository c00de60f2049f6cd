"""The platform model: frozen, typed dataclasses that are also the schema of ``platform.toml``.

The loader (:mod:`pipeline.config.loader`) walks their type hints. A value's domain rule is part of its type:
``Annotated[str, Matches(pattern, "what is expected")]`` (an item's rule, in ``tuple[Annotated[...], ...]``, is reported
with the item's index). Rules that need several values live in :mod:`pipeline.config.checks`.

Every pattern is ASCII-only (``re.ASCII``): ``\\d`` must not accept Unicode digits (fullwidth or Arabic-Indic
ones), which would pass validation and then break a bucket name or an ARN at synth time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pipeline import partitions
from pipeline.config.builders import Builders
from pipeline.config.error import ConfigError
from pipeline.config.strategy import Strategy
from pipeline.config.values import InRange, Matches, OrEmpty, shown
from pipeline.platforms import platform_for_architecture

Platform = Literal["linux/amd64", "linux/arm64"]
LambdaArchitecture = Literal["x86_64", "arm64"]
ScanMode = Literal["basic", "enhanced"]

PLATFORMS: tuple[str, ...] = get_args(Platform)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", re.ASCII)
_ACCOUNT = re.compile(r"^[0-9]{12}$", re.ASCII)
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]{36}$",
    re.ASCII,
)
_SOURCE_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$", re.ASCII)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:key/[0-9a-f-]{36}$", re.ASCII)
# ECR pull-through cache rule prefixes: 2-30 characters.
_ECR_PREFIX = re.compile(r"^(?=.{2,30}$)[a-z0-9]+(?:[._-][a-z0-9]+)*$", re.ASCII)
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$", re.ASCII)
_SECRETS_MANAGER_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$", re.ASCII)
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", re.ASCII)
_LAMBDA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$", re.ASCII)
# Lambda aliases: up to 128 characters, and never all digits (a number names a version).
_LAMBDA_ALIAS = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$", re.ASCII)
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$", re.ASCII)
_HEALTH_URL = re.compile(r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?$", re.ASCII)
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}$", re.ASCII)
_IAM_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$", re.ASCII)
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", re.ASCII)
_SLACK_ID = re.compile(r"^[A-Z0-9]{9,12}$", re.ASCII)
_EKS_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$", re.ASCII)
# A path inside the repository: relative, no '..', a character set no shell or YAML needs to quote.
_REPO_PATH = re.compile(r"^(?!/)[A-Za-z0-9._/+@-]{1,255}$", re.ASCII)
_PATH_GLOB = re.compile(r"^(?!/)[A-Za-z0-9._/+@*?{},\[\]!-]{1,255}$", re.ASCII)
_STAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", re.ASCII)
_UPSTREAM_URL = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", re.ASCII)
# git's check-ref-format, for branch names: no space, control character, ~^:?*[\\, '..', '@{' or '//'; no leading
# '-' or '/', no trailing '/', '.' or '.lock'.
_BRANCH = re.compile(r"^(?!-|/|.*(\.\.|@\{|//|/\.|\.lock$|[./]$))[^\x00-\x20\x7f~^:?*\[\\]{1,255}$", re.ASCII)

# Upstreams ECR pull-through cache supports, and whether each needs a Secrets Manager credential.
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-rule.html
UPSTREAM_REGISTRIES: Mapping[str, tuple[str, bool]] = {
    # kind: (default upstream URL, needs credential)
    "ecr-public": ("public.ecr.aws", False),
    "k8s": ("registry.k8s.io", False),
    "quay": ("quay.io", False),
    "docker-hub": ("registry-1.docker.io", True),
    "github-container-registry": ("ghcr.io", True),
    "gitlab-container-registry": ("registry.gitlab.com", True),
    "azure-container-registry": ("", True),
}
PULL_THROUGH_SECRET_PREFIX = "ecr-pullthroughcache/"


def _json_object(value: Any) -> str | None:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"expected a JSON object, got {shown(value)} ({exc})"
    return None if isinstance(parsed, dict) else f"expected a JSON object, got {shown(value)}"


def _repo_path(value: Any) -> str | None:
    if not _REPO_PATH.fullmatch(value) or ".." in value.split("/"):
        return (
            "expected a relative path inside the repository (letters, digits, '._/+@-'; no '..', not absolute), "
            f"got {shown(value)}"
        )
    return None


def _upstream_kind(value: Any) -> str | None:
    return (
        None if value in UPSTREAM_REGISTRIES else f"expected one of {sorted(UPSTREAM_REGISTRIES)}, got {shown(value)}"
    )


def is_region(value: str) -> bool:
    return partitions.is_region(value)


def _region_rule(value: Any) -> str | None:
    """A region of a partition botocore knows (``eu-west-1``, ``us-gov-west-1``, ``eusc-de-east-1``…)."""
    return None if is_region(value) else f"expected an AWS region such as 'eu-west-1', got {shown(value)}"


# Value types several fields share; a field with its own wording spells its Annotated out.
_region = _region_rule
Name = Annotated[str, Matches(_NAME, "a lowercase name of 2-40 letters, digits and '-'")]
AccountId = Annotated[str, Matches(_ACCOUNT, "a 12-digit AWS account id")]
Region = Annotated[str, _region]
Branch = Annotated[str, Matches(_BRANCH, "a git branch name")]
RepoPath = Annotated[str, _repo_path]
StageName = Annotated[str, OrEmpty(Matches(_STAGE, "a Dockerfile stage name"))]
HealthPath = Annotated[str, OrEmpty(Matches(_HEALTH_PATH, "a path such as '/health'"))]


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    """Who and where: the AWS account and region the platform is deployed to."""

    name: Name
    account: AccountId
    region: Region
    connection_arn: Annotated[
        str, Matches(_CONNECTION_ARN, "a CodeConnections ARN 'arn:aws:codeconnections:REGION:ACCOUNT:connection/UUID'")
    ]
    source_repo: Annotated[str, OrEmpty(Matches(_SOURCE_REPO, "'owner/name'"))] = ""
    """The platform's own repository (platform.toml, images/, lambda_base/): its base pipelines build from it.
    Empty: no base pipelines."""
    branch: Branch = "main"


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """An upstream registry served through ECR pull-through cache under ``<prefix>/``."""

    prefix: Annotated[str, Matches(_ECR_PREFIX, "a lowercase ECR repository prefix such as 'docker-hub'")]
    registry: Annotated[str, _upstream_kind]
    url: Annotated[str, OrEmpty(Matches(_UPSTREAM_URL, "a registry host name"))] = ""
    """Upstream URL; defaults to the registry's public endpoint (required for ``azure-container-registry``)."""
    credential_secret: str = ""
    """Secrets Manager name for registries that need credentials; must start ``ecr-pullthroughcache/``."""
    create_secret: bool = False
    """Create an empty secret shell with that name (the value is set out of band), instead of referencing one."""

    @property
    def upstream_url(self) -> str:
        return self.url or UPSTREAM_REGISTRIES.get(self.registry, ("", False))[0]

    @property
    def needs_credential(self) -> bool:
        """False for an unknown registry (already reported by its own check; cross-value rules still run)."""
        return UPSTREAM_REGISTRIES.get(self.registry, ("", False))[1]


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """Defaults for every ECR repository the platform creates."""

    scan: ScanMode = "basic"
    """``basic`` scans on push; ``enhanced`` turns on Amazon Inspector continuous scanning for the registry."""
    kms_key_arn: Annotated[str, OrEmpty(Matches(_KMS_KEY_ARN, "a KMS key ARN"))] = ""
    """Customer-managed KMS key for repositories (in the platform's region); empty means AES-256 with an AWS-owned
    key."""

    @property
    def kms_key_region(self) -> str:
        match = _KMS_KEY_ARN.fullmatch(self.kms_key_arn)
        return match["region"] if match else ""

    untagged_expiry_days: Annotated[int, InRange(1, 3650)] = 14
    keep_releases: Annotated[int, InRange(1, 1000)] = 50
    keep_cache_images: Annotated[int, InRange(1, 100)] = 10
    root_creation_template: bool = False
    """Also add a ``ROOT`` creation template for repositories created on push outside the known prefixes."""


@dataclass(frozen=True, kw_only=True)
class BuildSecret:
    """A BuildKit secret mount (``RUN --mount=type=secret,id=<id>``) fed from Secrets Manager."""

    id: Annotated[str, Matches(_SECRET_ID, "a BuildKit secret id of letters, digits, '_' and '-'")]
    secret_name: Annotated[str, Matches(_SECRETS_MANAGER_NAME, "a Secrets Manager secret name")]


# Deploy targets: one typed value each, from platform.toml to the pipeline model, the buildspec and the deployer.
# ``kind`` picks the deployer (pipeline.deployers.DEPLOYERS); ``cli_args`` are what `slipway deploy <kind>` takes.


@dataclass(frozen=True, kw_only=True)
class LambdaTarget:
    kind: ClassVar[str] = "lambda"
    function_name: Annotated[str, Matches(_LAMBDA_NAME, "a Lambda function name")]
    architecture: LambdaArchitecture
    alias: Annotated[str, Matches(_LAMBDA_ALIAS, "a Lambda alias name (not all digits)")] = "live"
    smoke_event: Annotated[str, _json_object] = "{}"
    """JSON event the new version is invoked with before the alias moves to it."""
    smoke_expect: Annotated[str, _json_object] = "{}"
    """JSON object the answer must contain (key by key); ``{}`` accepts any answer that is not a function error."""
    strategy: Strategy = field(default_factory=Strategy)
    """How the alias moves to the new version once it answered its smoke event (#29)."""

    @property
    def platform(self) -> str:
        return platform_for_architecture(self.architecture)

    @property
    def label(self) -> str:
        return f"lambda:{self.function_name}"

    def cli_args(self) -> tuple[str, ...]:
        return ("--function-name", self.function_name, "--architecture", self.architecture, "--alias", self.alias,
                "--smoke-event", self.smoke_event, "--smoke-expect", self.smoke_expect,
                *self.strategy.cli_args())  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EcsTarget:
    cluster: Annotated[str, Matches(_ECS_NAME, "an ECS cluster name")]
    service: Annotated[str, Matches(_ECS_NAME, "an ECS service name")]
    container: Annotated[str, Matches(_ECS_NAME, "a container name in the task definition")]
    cpu_architecture: LambdaArchitecture = "x86_64"
    """Fargate runtimePlatform.cpuArchitecture (``X86_64`` or ``ARM64``); must be a platform the service builds."""
    health_path: HealthPath = ""
    """HTTP path the container answers 200 on (local mode GETs it from the deployed image); empty: the image serves no
    HTTP and is run to its exit instead. In the cloud, steady state with the circuit breaker is the check."""
    health_url: Annotated[str, OrEmpty(Matches(_HEALTH_URL, "an http(s) URL"))] = ""
    """The service's own health URL (its load balancer), checked after steady state: anything but 200 puts the service
    back on the previous revision. Empty: steady state with the circuit breaker is the check."""
    task_roles: tuple[Annotated[str, Matches(_IAM_ROLE_NAME, "an IAM role name")], ...] = ()
    """IAM role names the task definition uses (task role, execution role). Registering the new revision passes
    them, so the deploy role may pass exactly these (``iam:PassRole``) and the deploy refuses any other."""
    strategy: Strategy = field(default_factory=Strategy)
    """ECS's own deployment strategy (``CANARY``, ``LINEAR``): ECS shifts, bakes, watches the alarms, rolls back."""
    kind: ClassVar[str] = "ecs"

    @property
    def platform(self) -> str:
        return platform_for_architecture(self.cpu_architecture)

    @property
    def label(self) -> str:
        return f"ecs:{self.cluster}/{self.service}"

    def cli_args(self) -> tuple[str, ...]:
        roles = tuple(word for role in self.task_roles for word in ("--task-role", role))
        health: tuple[str, ...] = ("--health-url", self.health_url) if self.health_url else ()
        health += ("--health-path", self.health_path) if self.health_path else ()
        return ("--cluster", self.cluster, "--service", self.service, "--container", self.container, *roles, *health,
                *self.strategy.cli_args())  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class EksTarget:
    cluster: Annotated[str, Matches(_EKS_CLUSTER, "an EKS cluster name (up to 100 letters, digits, '-', '_')")]
    namespace: Annotated[str, Matches(_K8S_NAME, "a Kubernetes namespace (DNS label)")]
    deployment: Annotated[str, Matches(_K8S_NAME, "a Kubernetes Deployment name (DNS label)")]
    container: Annotated[str, Matches(_K8S_NAME, "a container name (DNS label)")]
    health_path: HealthPath = ""
    """As for ECS: what local mode GETs from the deployed image (the cloud check is ``kubectl rollout status``)."""
    strategy: Strategy = field(default_factory=Strategy)
    """``linear``: a rolling update ``step_percent`` at a time, each step ready ``interval_seconds``, alarms watched."""
    kind: ClassVar[str] = "eks"

    @property
    def label(self) -> str:
        return f"eks:{self.cluster}/{self.namespace}/{self.deployment}"

    def cli_args(self) -> tuple[str, ...]:
        health = ("--health-path", self.health_path) if self.health_path else ()
        return ("--cluster", self.cluster, "--namespace", self.namespace, "--deployment", self.deployment,
                "--container", self.container, *health, *self.strategy.cli_args())  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class DeployTargets:
    lambda_: LambdaTarget | None = field(default=None, metadata={"key": "lambda"})
    ecs: EcsTarget | None = None
    eks: EksTarget | None = None
    approval: bool = False
    """Hold each deploy behind a manual approval (production)."""

    def targets(self) -> tuple[DeployTarget, ...]:
        """The configured targets, in deploy order."""
        return tuple(t for t in (self.lambda_, self.ecs, self.eks) if t is not None)


DeployTarget = LambdaTarget | EcsTarget | EksTarget


@dataclass(frozen=True, kw_only=True)
class Environment(DeployTargets):
    """One step of a service's promotion: the same release (image.json) deployed to these targets, in this workload
    account, after the environments before it answered; ``approval`` holds it for a person first."""

    name: Name
    account: Annotated[str, Matches(_ACCOUNT, "a 12-digit AWS account id (one of the team's workload_accounts)")]
    region: Annotated[str, OrEmpty(_region)] = ""
    """Where the targets live; empty: the platform's region."""


@dataclass(frozen=True, kw_only=True)
class Service:
    name: Name
    source_repo: Annotated[str, Matches(_SOURCE_REPO, "'owner/name' of the source repository")]
    branch: Branch = "main"
    dockerfile: RepoPath = "Dockerfile"
    context: RepoPath = "."
    target: StageName = ""
    """Dockerfile stage to build and deploy; default: the last stage."""
    platforms: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
    file_paths: tuple[Annotated[str, Matches(_PATH_GLOB, "a path glob inside the repository")], ...] = ()
    """Only pushes touching these globs start the pipeline; empty means every push to the branch."""
    secrets: tuple[BuildSecret, ...] = ()
    deploy: DeployTargets = field(default_factory=DeployTargets)
    """Targets in the platform's own account (no promotion). A service with ``environments`` leaves this empty."""
    environments: tuple[Environment, ...] = ()
    """Promotion order: build and stitch once, then deploy the same digests to each environment in turn."""

    def all_targets(self) -> Iterator[tuple[str, DeployTarget]]:
        """``(path of the target's table in platform.toml, target)`` for every deploy target of the service."""
        for key, target in (("lambda", self.deploy.lambda_), ("ecs", self.deploy.ecs), ("eks", self.deploy.eks)):
            if target is not None:
                yield f"deploy.{key}", target
        for i, environment in enumerate(self.environments):
            for key, target in (("lambda", environment.lambda_), ("ecs", environment.ecs), ("eks", environment.eks)):
                if target is not None:
                    yield f"environments[{i}].{key}", target


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    """A curated base image the team publishes from ``images/<name>``."""

    name: Name
    context: RepoPath
    dockerfile: RepoPath = "Dockerfile"
    target: StageName = ""
    """Dockerfile stage to publish (e.g. ``build`` for a ``python-build`` variant); default: the last stage."""
    platforms: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")

    @property
    def lock_key(self) -> str:
        """The build argument Dockerfiles use for this base (``BASE_PYTHON_BUILD``), filled from the lock."""
        return "BASE_" + self.name.upper().replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class Team:
    name: Name
    workload_accounts: tuple[AccountId, ...] = ()
    """Accounts whose Lambda/ECS/EKS workloads pull this team's images (the platform account always can)."""
    base_images: tuple[BaseImage, ...] = ()
    services: tuple[Service, ...] = ()
    rebuild_concurrency: Annotated[int, InRange(1, 100)] = 4
    """How many of this team's pipelines a base release rebuilds at once (about two CodeBuild builds each): the rest
    wait in line and start as those finish (:mod:`pipeline.lock_store`), so a weekly wave leaves room for pushes."""
    notifications: Notifications | None = None
    """Failed executions, approvals waiting, deploys and rollbacks, told to the team; none: nobody is told."""


@dataclass(frozen=True, kw_only=True)
class Notifications:
    """Where a team hears about its pipelines (:mod:`infra.notifications`): an SNS topic -- the platform's own
    ``slipway-<team>``, or one given -- and, optionally, a Slack channel through AWS Chatbot."""

    topic_arn: Annotated[str, OrEmpty(Matches(_SNS_TOPIC_ARN, "an SNS topic ARN"))] = ""
    """Empty: the platform creates ``slipway-<team>``. A given topic must let EventBridge and CodePipeline publish."""
    slack_workspace_id: Annotated[str, OrEmpty(Matches(_SLACK_ID, "a Slack workspace ID such as 'T0123ABCD'"))] = ""
    slack_channel_id: Annotated[str, OrEmpty(Matches(_SLACK_ID, "a Slack channel ID such as 'C0123ABCDEF'"))] = ""


@dataclass(frozen=True, kw_only=True)
class PlatformConfig:
    platform: PlatformSettings
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    builders: Builders = field(default_factory=Builders)
    upstreams: tuple[Upstream, ...] = ()
    teams: tuple[Team, ...] = ()
    source: Path = field(default=Path("platform.toml"), compare=False, metadata={"loader": False})

    def services(self) -> Iterator[tuple[Team, Service]]:
        for team in self.teams:
            for service in team.services:
                yield team, service

    def find_service(self, ref: str) -> tuple[Team, Service]:
        """Look up ``TEAM/SERVICE``."""
        for team, service in self.services():
            if f"{team.name}/{service.name}" == ref:
                return team, service
        known = ", ".join(f"{t.name}/{s.name}" for t, s in self.services()) or "none"
        raise ConfigError(self.source, [f"service {shown(ref)} not found (known: {known})"])
