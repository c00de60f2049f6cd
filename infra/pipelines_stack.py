"""A shard of pipelines: one team's, split further so no stack nears 500 resources or 1 MB; the roles they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.blueprint import PipelineBlueprint
from infra.image_repository import RepositoryByName
from infra.jobs import JobSettings
from infra.lock_grants import LockStoreNames
from infra.nag import acknowledge
from infra.notifications import topic_arn
from infra.registry_stack import RegistryStack
from infra.service_pipeline import ServicePipeline, ServicePipelineProps
from infra.team_roles import TeamRoles, TeamRolesProps
from infra.warm_builders import WarmBuilders
from pipeline.config import PlatformConfig
from pipeline.lint.policy import policy_for
from pipeline.naming import CURATED_BASES, release_key_arn

ARTIFACT_DAYS = 90
NONCURRENT_DAYS = 30


@dataclass(frozen=True)
class PipelinePlan:
    """One pipeline to render: its shape, the repository it publishes to, and where it deploys (if anywhere)."""

    blueprint: PipelineBlueprint
    repository_name: str
    """The ECR repository the pipeline publishes to (the Registry stack owns it; reached here by name)."""


class PipelinesStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PlatformConfig,
        registry: RegistryStack,
        plans: list[PipelinePlan],
        runner: str,
        **kwargs: Any,
    ) -> None:
        """``runner``: the lock's ``RUNNER`` entry, the image every job of the stack runs in."""
        super().__init__(scope, id, **kwargs)
        artifacts, key = artifact_store(self)
        lock_store = LockStoreNames.of(config.platform.name)
        # Repositories by name, never by cross-stack reference: no Fn::ImportValue ties this stack to the team's
        # repository stacks, so removing a base or a service from platform.toml updates both instead of failing on an
        # export still in use. Explicit dependencies keep the deploy order: the registry's pull-through cache here,
        # the team's repositories in infra.platform_app.
        self.add_dependency(registry)
        # Any Slipway build may build on any team's curated base: one pattern, not an ARN per base -- a statement
        # per base in every team's build role grew with teams squared and overflowed IAM's inline policy size.
        curated = (
            (RepositoryByName(self, "CuratedBases", CURATED_BASES),) if any(t.base_images for t in config.teams) else ()
        )
        if curated:
            acknowledge(
                self, "IAM5", "Builds and lint may pull any curated base (every team's <team>/bases/<name>)",
                applies_to=f"Resource::arn:<AWS::Partition>:ecr:{self.region}:{self.account}:repository/{CURATED_BASES}",
            )  # fmt: skip
        allowed = policy_for(config, [], local_registry="").allowed_registries
        teams = sorted({plan.blueprint.team for plan in plans})
        # A shard holds one team (infra.blueprint.shard); the roles are per team all the same.
        self.roles = {
            team: TeamRoles(
                self, f"Team-{team}",
                TeamRolesProps(team=team, connection_arn=config.platform.connection_arn, jobs=JobSettings(runner, key, warm=WarmBuilders.of(config)),
                               artifact_bucket=artifacts),
            )
            for team in teams
        }  # fmt: skip
        self.pipelines: dict[str, ServicePipeline] = {}
        for plan in plans:
            bp = plan.blueprint
            self.pipelines[bp.name] = ServicePipeline(
                self,
                f"Service-{bp.name}",
                ServicePipelineProps(
                    blueprint=bp,
                    repository=RepositoryByName(self, f"Repository-{bp.name}", plan.repository_name),
                    pull_through_cache=registry.pull_through_cache,
                    roles=self.roles[bp.team],
                    base_repositories=curated,
                    lock_store=lock_store,
                    allowed_registries=allowed,
                    notify_topic_arn=_topic_of(self, config, bp.team),
                    release_key_arn=release_key_arn(config.platform.name, self.account, self.region),
                ),
            )


def _topic_of(stack: Stack, config: PlatformConfig, team: str) -> str:
    """The team's topic ARN (infra.notifications), by name: no reference ties this stack to the one holding it."""
    told = next((t.notifications for t in config.teams if t.name == team), None)
    return "" if told is None else topic_arn(stack, team, told.topic_arn)


def artifact_store(stack: Stack) -> tuple[s3.Bucket, kms.Key]:
    """The pipelines' artifact bucket (access-logged, versioned, expiring) and its key."""
    access_logs = s3.Bucket(
        stack,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge(access_logs, "S1", "This bucket is the access-log target itself; logging it would recurse")
    key = kms.Key(stack, "ArtifactsKey", enable_key_rotation=True, description="Slipway build artifacts")
    artifacts = s3.Bucket(
        stack,
        "Artifacts",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="artifacts/",
        removal_policy=RemovalPolicy.RETAIN,
        # Pipeline artifacts are read by the next stage within minutes; releases live in ECR and each target
        # keeps its own rollback target, so old artifacts (and their noncurrent versions) need not stay forever.
        lifecycle_rules=[
            s3.LifecycleRule(
                id="ExpireOldArtifacts",
                expiration=Duration.days(ARTIFACT_DAYS),
                noncurrent_version_expiration=Duration.days(NONCURRENT_DAYS),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
    )
    _acknowledge_artifact_grants(stack, artifacts)
    return artifacts, key


def _acknowledge_artifact_grants(stack: Stack, artifacts: s3.Bucket) -> None:
    """CDK grants pipeline and job roles object-level wildcards on this stack's artifact bucket and its key."""
    artifacts_id = stack.get_logical_id(artifacts.node.default_child)  # type: ignore[arg-type]
    findings = [
        *(f"Action::s3:{a}*" for a in ("GetObject", "GetBucket", "List", "DeleteObject", "Abort")),
        "Action::kms:ReEncrypt*",
        "Action::kms:GenerateDataKey*",
        f"Resource::<{artifacts_id}.Arn>/*",
    ]
    for finding in findings:
        acknowledge(
            stack,
            "IAM5",
            "CDK artifact grants: object and data-key wildcards on this stack's artifact bucket and its key",
            applies_to=finding,
        )
