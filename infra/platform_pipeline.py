"""The platform repository's own pipeline: the platform deploying itself, and what moves the base lock when nobody
is at a laptop.

Source (the platform repository) → Deploy: ``slipway platform deploy`` synthesizes the pushed commit with its own
Slipway and deploys every stack through the bootstrap roles of each account (CDK Pipelines' self-mutation; the
workload accounts trust the platform's through ``cdk bootstrap --trust``), then starts each pipeline whose definition
changed -- an updated definition starts nothing by itself. It runs on a push of platform.toml, images/,
lambda_base/, the lock or Slipway's own code (a push of a base's context also starts that base's pipeline, by its own
trigger). → Refresh: ``slipway bases refresh`` resolves every upstream tag the committed lock
follows (``docker-hub/library/debian:bookworm``) through the pull-through cache -- a pull by tag, which is what
makes ECR fetch a moved upstream -- and publishes each digest that moved to the lock store, which starts every
pipeline registered as building on it (the curated bases, then what builds on them, through their own
publications). It runs every week (Sunday, in the spread window) and on a push that changes ``images/lock.json``.
An unmoved upstream publishes nothing, so nothing downstream runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_codebuild as codebuild
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
from pipeline.naming import partition_for
from pipeline.platform_deploy import BOOTSTRAP_QUALIFIER, environments
from pipeline.references import ecr_registry

PIPELINE_NAME = "slipway-platform"
LOCK_FILE = "images/lock.json"
DEPLOY_TIMEOUT_MINUTES = 480
CONFIG_FILE = "platform.toml"
PLATFORM_FILES = [
    CONFIG_FILE,
    "images/**",
    "lambda_base/**",
    "infra/**",
    "pipeline/**",
    "app.py",
    "pyproject.toml",
    "*.json",
]
"""What a push must change to start the platform pipeline: what the deployed stacks are synthesized from (the lock
is under images/; ``*.json``: cdk.json and the CDK CLI's pins). Eight patterns: CodePipeline's most per filter."""
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
    deploys_to: tuple[tuple[str, str], ...] = ()
    """``(account, region)`` of every bootstrapped place the platform's stacks deploy to (the platform's own first):
    the Deploy job may assume their bootstrap roles, and nothing else's."""
    deploy_runner: str = ""
    """The lock's ``RUNNER_PLATFORM`` entry, the image the Deploy job runs in; empty: ``jobs.runner``'s."""


class PlatformPipeline(Construct):
    def __init__(self, scope: Construct, id: str, props: PlatformPipelineProps) -> None:
        super().__init__(scope, id)
        problems = []
        if props.source_repo.count("/") != 1:
            problems.append(f"source_repo: expected owner/name, got {props.source_repo!r}")
        if not props.branch:
            problems.append("branch: expected the platform repository's branch, got none")
        if not props.deploys_to:
            problems.append("deploys_to: expected the platform's own (account, region) at least, got none")
        raise_if_any("PlatformPipeline", problems)
        sourced = sourced_pipeline(
            self, PIPELINE_NAME, repository=props.source_repo, branch=props.branch, file_paths=PLATFORM_FILES,
            connection_arn=props.connection_arn, artifact_bucket=props.artifact_bucket,
        )  # fmt: skip
        self.pipeline, source = sourced.pipeline, sourced.source
        stack = Stack.of(self)
        self.deploy_project = self._deploy_project(props)
        self.pipeline.add_stage(
            stage_name="Deploy",
            actions=[actions.CodeBuildAction(action_name="Deploy", project=self.deploy_project, input=source)],
        )
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

    def _deploy_project(self, props: PlatformPipelineProps) -> codebuild.PipelineProject:
        """The Deploy job: assumes the bootstrap roles of the places the stacks deploy to (the CDK CLI's way: the
        CloudFormation execution role those pass holds the rights, never this role) and starts the platform's
        pipelines."""
        # CodeBuild's longest timeout: synthesis takes minutes at hundreds of services (about 5 at 500 here) and a
        # change every stack holds (a Slipway upgrade) updates hundreds of stacks, four at a time.
        # The runner's `platform` target: Node, the CDK libraries and the CDK CLI besides what every job has.
        jobs = replace(
            props.jobs, timeout_minutes=DEPLOY_TIMEOUT_MINUTES, runner=props.deploy_runner or props.jobs.runner
        )
        project = job_project(
            self, "Deploy", buildspecs.platform_deploy(CONFIG_FILE), jobs, role_path=ROLE_PATH,
            description="Slipway platform deploy (self-mutation)",
        )  # fmt: skip
        role = project.role
        assert role is not None
        # One pattern a place for its four bootstrap roles (deploy, file- and image-publishing, lookup), not four
        # ARNs: at 100 workload accounts four ARNs each overflowed the role's 10,240 characters into managed policies.
        # The pattern also names the place's cfn-exec role, which trusts only CloudFormation: no AssumeRole reaches it.
        # The partition is the place's region's, written out: a token per ARN doubled CDK's estimate of the size.
        roles = [
            f"arn:{partition_for(region)}:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-*-role-{account}-{region}"
            for account, region in props.deploys_to
        ]  # fmt: skip
        role.add_to_principal_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=roles))
        for pattern in roles:
            acknowledge(
                role, "IAM5", "Assumes the CDK bootstrap roles of a place its stacks deploy to (one pattern for the four)",
                applies_to=f"Resource::{pattern}",
            )  # fmt: skip
        lock_grants.grant_start_pipelines(
            role,
            "slipway-*",
            "Starts the platform's pipelines whose definition its deploy changed (all named slipway-*)",
        )
        return project


class PlatformStack(Stack):
    """The platform pipeline with its own artifact bucket: deployed right after the registry, before any pipeline
    that builds on a base (``cdk deploy --all`` deploys stacks in that order), so the lock store holds the upstream
    entries by the time the first base pipeline builds."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PlatformConfig,
        registry: RegistryStack,
        runner: str,
        deploy_runner: str,
        **kwargs: Any,
    ):
        """``runner``, ``deploy_runner``: the lock's ``RUNNER`` and ``RUNNER_PLATFORM`` entries."""
        super().__init__(scope, id, **kwargs)
        artifacts, key = artifact_store(self)
        self.add_dependency(registry)
        self.pipeline = PlatformPipeline(
            self,
            "Platform",
            PlatformPipelineProps(
                source_repo=config.platform.source_repo, branch=config.platform.branch,
                connection_arn=config.platform.connection_arn, jobs=JobSettings(runner, key), artifact_bucket=artifacts,
                lock_store=LockStoreNames.of(config.platform.name), pull_through_cache=registry.pull_through_cache,
                deploys_to=tuple(environments(config)), deploy_runner=deploy_runner,
            ),
        )  # fmt: skip
