"""The platform repository's own pipeline: what moves the base lock when nobody is at a laptop.

Source (the platform repository) → Refresh: ``slipway bases refresh`` resolves every upstream tag the committed lock
follows (``docker-hub/library/debian:bookworm``) through the pull-through cache -- a pull by tag, which is what
makes ECR fetch a moved upstream -- and publishes each digest that moved to the lock store, which starts every
pipeline registered as building on it (the curated bases, then what builds on them, through their own
publications). It runs every week (Sunday, in the spread window) and on a push that changes ``images/lock.json``.
An unmoved upstream publishes nothing, so nothing downstream runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import buildspecs, lock_grants
from infra.blueprint import weekly_rebuild_time
from infra.jobs import JobSettings, job_project, sourced_pipeline
from infra.lock_grants import LockStoreNames
from infra.nag import ECR_AUTH_TOKEN, acknowledge
from infra.pipelines_stack import artifact_store
from infra.pull_through_cache import PullThroughCache
from infra.registry_stack import RegistryStack
from infra.validation import raise_if_any
from pipeline.config import PlatformConfig
from pipeline.references import ecr_registry

PIPELINE_NAME = "slipway-platform"
LOCK_FILE = "images/lock.json"
ROLE_PATH = "/slipway/platform/"


@dataclass(frozen=True, kw_only=True)
class PlatformPipelineProps:
    source_repo: str
    """``owner/name`` of the platform repository (platform.toml, images/, the committed lock)."""
    branch: str
    connection_arn: str
    jobs: JobSettings
    artifact_bucket: s3.IBucket
    lock_store: LockStoreNames
    pull_through_cache: PullThroughCache | None = None
    """The refresh resolves upstream tags through it (and so may import them: ``ecr:BatchImportUpstreamImage``)."""


class PlatformPipeline(Construct):
    def __init__(self, scope: Construct, id: str, props: PlatformPipelineProps) -> None:
        super().__init__(scope, id)
        problems = []
        if props.source_repo.count("/") != 1:
            problems.append(f"source_repo: expected owner/name, got {props.source_repo!r}")
        if not props.branch:
            problems.append("branch: expected the platform repository's branch, got none")
        raise_if_any("PlatformPipeline", problems)
        sourced = sourced_pipeline(
            self, PIPELINE_NAME, repository=props.source_repo, branch=props.branch, file_paths=[LOCK_FILE],
            connection_arn=props.connection_arn, artifact_bucket=props.artifact_bucket,
        )  # fmt: skip
        self.pipeline, source = sourced.pipeline, sourced.source
        stack = Stack.of(self)
        registry = ecr_registry(stack.account, stack.region)
        spec = buildspecs.refresh(LOCK_FILE, registry)
        self.project = job_project(
            self, "Refresh", spec, props.jobs, role_path=ROLE_PATH, description="Slipway upstream refresh",
            env=props.lock_store.environment(PIPELINE_NAME),
        )  # fmt: skip
        role = self.project.role
        assert role is not None
        lock_grants.grant_publish(role, props.lock_store, "*")
        if props.pull_through_cache is not None:
            props.pull_through_cache.grant_pull_through(role)
        role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        self.pipeline.add_stage(
            stage_name="Refresh",
            actions=[actions.CodeBuildAction(action_name="Refresh", project=self.project, input=source)],
        )
        hour, minute = weekly_rebuild_time(PIPELINE_NAME)
        events.Rule(
            self,
            "WeeklyRefresh",
            description="Resolve the upstream bases' tags again weekly: upstream security fixes reach every service",
            schedule=events.Schedule.cron(week_day="SUN", hour=str(hour), minute=str(minute)),
            targets=[events_targets.CodePipeline(self.pipeline)],
        )


class PlatformStack(Stack):
    """The platform pipeline with its own artifact bucket: deployed right after the registry, before any pipeline
    that builds on a base (``cdk deploy --all`` deploys stacks in that order), so the lock store holds the upstream
    entries by the time the first base pipeline builds."""

    def __init__(self, scope: Construct, id: str, *, config: PlatformConfig, registry: RegistryStack, **kwargs: Any):
        super().__init__(scope, id, **kwargs)
        tools, artifacts, key = artifact_store(self)
        self.add_dependency(registry)
        self.pipeline = PlatformPipeline(
            self,
            "Platform",
            PlatformPipelineProps(
                source_repo=config.platform.source_repo, branch=config.platform.branch,
                connection_arn=config.platform.connection_arn, jobs=JobSettings(tools, key), artifact_bucket=artifacts,
                lock_store=LockStoreNames.of(config.platform.name), pull_through_cache=registry.pull_through_cache,
            ),
        )  # fmt: skip
