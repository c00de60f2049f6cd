"""One service's pipeline: push → lint → native build per platform (parallel) → stitch → deploy by digest.

Renders an :class:`infra.blueprint.PipelineBlueprint`. The pipeline and its jobs run as the roles the team's
pipelines share in the stack (:class:`infra.team_roles.TeamRoles`: roles grow with teams and environments, not
services); this adds what the service's own steps need to them: the build role pushes to the service's repository and
reads its secrets; the deploy role of an environment assumes the service's workload role there (or, without
environments, touches only the service's named targets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from aws_cdk import Aws, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import buildspecs, lock_grants, stage_gates
from infra.blueprint import BuildStep, DeployStage, DeployStep, PipelineBlueprint
from infra.deploy_grants import grant_deploy
from infra.image_repository import PULL_ACTIONS, RepositoryAccess
from infra.jobs import job_project, sourced_pipeline
from infra.lock_grants import LockStoreNames
from infra.nag import ECR_AUTH_TOKEN, acknowledge
from infra.pull_through_cache import PullThroughCache
from infra.release_key import grant_use, release_key_alias_of
from infra.team_roles import TeamRoles
from infra.validation import raise_if_any
from pipeline import notify
from pipeline.deployers import DEPLOYERS
from pipeline.naming import job_project_name, partition_for, workload_role_name
from pipeline.references import ecr_registry


@dataclass(frozen=True, kw_only=True)
class ServicePipelineProps:
    blueprint: PipelineBlueprint
    repository: RepositoryAccess
    roles: TeamRoles
    """The roles the team's pipelines share in this stack; the pipeline adds its service's grants to them. Their
    props are what the stack's pipelines share too: the connection, Slipway's tools object (every job installs the
    reviewed CLI from it), the artifact bucket and its key -- the pipeline uses exactly what its roles are granted."""
    pull_through_cache: PullThroughCache | None = None
    build_timeout_minutes: int = 60
    base_repositories: tuple[RepositoryAccess, ...] = ()
    """Curated base repositories builds pull their ``FROM`` images from."""
    lock_store: LockStoreNames | None = None
    """Where lint and build jobs read the base lock when they run (``ARG BASE_…``); ``None``: no lock."""
    allowed_registries: tuple[str, ...] = ()
    """Image prefixes the Lint job's SW001 accepts (pull-through prefixes and curated bases in the platform's ECR)."""
    notify_topic_arn: str = ""
    """The team's topic (:mod:`infra.notifications`): approvals waiting, deploys and rollbacks are told there."""
    release_key_arn: str = ""
    """The platform's release key (:mod:`infra.release_key`), by its alias ARN: Stitch signs each release with it,
    every deploy verifies the release with it first. Empty: releases are not signed."""


class ServicePipeline(Construct):
    def __init__(self, scope: Construct, id: str, props: ServicePipelineProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        self.props = props
        bp = props.blueprint
        sourced = sourced_pipeline(
            self, f"slipway-{bp.name}", repository=bp.source_repo, branch=bp.branch, file_paths=list(bp.file_paths),
            connection_arn=props.roles.props.connection_arn, artifact_bucket=props.roles.props.artifact_bucket,
            shared_role=props.roles.pipeline,
        )  # fmt: skip
        self.pipeline, self.source_action, self.source_output = sourced.pipeline, sourced.source_action, sourced.source
        self.projects: dict[str, codebuild.PipelineProject] = {}
        # Lint runs beside the native builds: every CodeBuild action costs a runner start-up, so a push pays for
        # Build, Stitch and one deploy stage per environment in sequence, no more. A failed lint still stops the
        # release: Stitch (which tags it) runs only after the whole stage succeeded.
        build_actions, build_outputs = self._build_actions()
        self.pipeline.add_stage(stage_name="Build", actions=[self._lint_action(), *build_actions])
        self.image_output = codepipeline.Artifact("image")
        self.pipeline.add_stage(stage_name="Stitch", actions=[self._stitch_action(build_outputs)])
        for stage in bp.stages:
            self._add_deploy_stage(stage)

    @staticmethod
    def _validate(props: ServicePipelineProps) -> None:
        problems: list[str] = []
        bp = props.blueprint
        if not bp.builds:
            problems.append("blueprint.builds: expected at least one platform, got none")
        for i, step in enumerate(bp.deploys):
            if step.kind not in DEPLOYERS:
                problems.append(
                    f"blueprint.deploys[{i}].target: kind {step.kind!r} has no deployer (known: {', '.join(DEPLOYERS)})"
                )
        for stage in bp.stages:
            kinds = [d.kind for d in stage.steps]
            for kind in sorted({k for k in kinds if kinds.count(k) > 1}):
                problems.append(f"blueprint.deploys: more than one {kind} target in stage {stage.name}")
        names = [stage.name for stage in bp.stages]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"blueprint.deploys: stage {name} comes twice (an environment's deploys are consecutive)")
        raise_if_any("ServicePipeline", problems)

    def _project(
        self,
        id: str,
        spec: dict[str, object],
        runner: str = "x86",
        *,
        privileged: bool = False,
        env: dict[str, codebuild.BuildEnvironmentVariable] | None = None,
        role: iam.IRole | None = None,
        timeout_minutes: int = 0,
    ) -> codebuild.PipelineProject:
        """``role``: the team's role the job runs as (default: the build role); ``timeout_minutes``: the job's
        (default: the pipeline's build timeout)."""
        bp = self.props.blueprint
        repository = {
            buildspecs.REPOSITORY_ENV: codebuild.BuildEnvironmentVariable(value=self.props.repository.repository_uri)
        }
        project = job_project(
            self, id, spec,
            replace(self.props.roles.props.jobs, timeout_minutes=timeout_minutes or self.props.build_timeout_minutes),
            runner=runner, privileged=privileged, env={**repository, **(env or {})},
            shared_role=role or self.props.roles.build, name=job_project_name(bp.team, bp.service, id),
            description=f"Slipway {bp.name} {id}",
        )  # fmt: skip
        self.projects[id] = project
        return project

    def _lock_env(self) -> dict[str, codebuild.BuildEnvironmentVariable]:
        """The lock store's paths, never its entries: a base release reaches this pipeline with no new template."""
        store = self.props.lock_store
        bp = self.props.blueprint
        if store is None:
            return {}
        return store.environment(f"slipway-{bp.name}", bp.lock_key, team=bp.team, lanes=bp.rebuild_concurrency)

    def _grant_lock(self, role: iam.IRole, *, register: bool = False) -> None:
        store = self.props.lock_store
        if store is None:
            return
        lock_grants.grant_read(role, store)
        if register:
            lock_grants.grant_register(role, store, f"slipway-{self.props.blueprint.name}")

    def _lint_action(self) -> actions.CodeBuildAction:
        stack = Stack.of(self)
        project = self._project(
            "Lint",
            buildspecs.lint(
                self.props.blueprint, ecr_registry(stack.account, stack.region), self.props.allowed_registries
            ),
            env=self._lock_env(),
        )
        # SW008 reads a curated base's own user from its config when the final stage sets no USER (read-only).
        self._grant_lock(self.props.roles.build)
        self._grant_bases(self.props.roles.build)
        return actions.CodeBuildAction(action_name="Lint", project=project, input=self.source_output)

    def _build_actions(self) -> tuple[list[codepipeline.IAction], list[codepipeline.Artifact]]:
        bp = self.props.blueprint
        build_actions: list[codepipeline.IAction] = []
        outputs: list[codepipeline.Artifact] = []
        for step in bp.builds:
            output = codepipeline.Artifact(buildspecs.build_artifact(step))
            project = self._build_project(step)
            # Same run_order: the platforms build in parallel.
            build_actions.append(
                actions.CodeBuildAction(
                    action_name=f"Build-{step.slug}",
                    project=project,
                    input=self.source_output,
                    outputs=[output],
                    run_order=1,
                    # SOURCE_DATE_EPOCH: the commit's time, so a re-run of the commit gives the same digests.
                    environment_variables={
                        buildspecs.COMMIT_TIME_ENV: codebuild.BuildEnvironmentVariable(
                            value=self.source_action.variables.author_date
                        )
                    },
                )
            )
            outputs.append(output)
        return build_actions, outputs

    def _build_project(self, step: BuildStep) -> codebuild.PipelineProject:
        bp = self.props.blueprint
        # CodeBuild resolves these at job start, and CDK grants the role GetSecretValue on these secrets only.
        secrets = {
            buildspecs.secret_env(secret.id): codebuild.BuildEnvironmentVariable(
                type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER, value=secret.secret_name
            )
            for secret in bp.secrets
        }
        project = self._project(
            f"Build{step.slug.capitalize()}",
            buildspecs.build(bp, step, lanes=self.props.lock_store is not None),
            step.runner,
            privileged=True,
            env={**secrets, **self._lock_env()},
        )
        role = self.props.roles.build
        self.props.repository.grant_push(role)
        self._grant_lock(role, register=True)
        if self.props.lock_store is not None:
            # A failed build gives its rebuild lane up and starts the lane's next pipeline (post_build: `slipway bases
            # continue`), as Stitch does after a build that succeeded.
            lock_grants.grant_continue(role, self.props.lock_store, bp.team)
        self._grant_bases(role)
        acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        if self.props.pull_through_cache is not None:
            self.props.pull_through_cache.grant_pull_through(role)
        if bp.secrets:
            # CodeBuild resolves them as the job's role when the job starts: these secrets, no other.
            stack = Stack.of(self)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[
                        f"arn:{Aws.PARTITION}:secretsmanager:{stack.region}:{stack.account}:secret:{s.secret_name}-??????"
                        for s in bp.secrets
                    ],
                )
            )
        return project

    def _grant_bases(self, role: iam.IRole) -> None:
        for base in self.props.base_repositories:
            base.grant_pull(role)
        if self.props.base_repositories:
            acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")

    def _stitch_action(self, build_outputs: list[codepipeline.Artifact]) -> actions.CodeBuildAction:
        bp = self.props.blueprint
        store = self.props.lock_store
        key = self.props.release_key_arn
        spec = buildspecs.stitch(bp, lanes=store is not None, release_key=key)
        # Stitch has a role of its own: the only one the release key lets sign (the build jobs run teams' Dockerfiles).
        role = self.props.roles.stitch
        project = self._project("Stitch", spec, env=self._lock_env(), role=role)
        self.props.repository.grant_push(role)
        if key:
            # Sign; and Verify: a retry of Stitch checks the attestations an earlier attempt left before keeping them.
            grant_use(role, release_key_alias_of(key), "kms:Sign", "kms:Verify")
        if store is not None:
            # The next pipeline of the team's rebuild lane starts once this one has built (`slipway bases continue`),
            # which also marks this pipeline's own registration as no longer building.
            lock_grants.grant_continue(role, store, bp.team)
            lock_grants.grant_register(role, store, f"slipway-{bp.name}")
        if bp.lock_key and store is not None:
            # A base's release becomes its lock entry, and what builds on it starts (`slipway bases publish`).
            lock_grants.grant_publish(role, store, bp.lock_key, f"slipway-{bp.name}")
        acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        return actions.CodeBuildAction(
            action_name="Stitch",
            project=project,
            input=self.source_output,
            extra_inputs=build_outputs,
            outputs=[self.image_output],
            environment_variables={
                buildspecs.COMMIT_ENV: codebuild.BuildEnvironmentVariable(value=self.source_action.variables.commit_id)
            },
        )

    def _add_deploy_stage(self, stage: DeployStage) -> None:
        """An approval first if configured; then the stage's targets side by side, each deploying the one image.json
        Stitch made. A failed deploy or check fails the stage (which rolls back), and no later environment runs."""
        stage_actions: list[codepipeline.IAction] = []
        if stage.approval:
            stage_actions.append(self._approval(stage))
        for step in stage.steps:
            artifact = "_".join(p for p in ("deployed", step.environment.replace("-", "_"), step.kind) if p)
            stage_actions.append(
                actions.CodeBuildAction(
                    action_name=f"Deploy-{step.kind}",
                    project=self._deploy_project(step),
                    input=self.image_output,
                    outputs=[codepipeline.Artifact(artifact)],
                    run_order=2,
                )
            )
        # Stage gates (#29): a failure rolls the stage back; no entry while the previous environment is alarming.
        stages = self.props.blueprint.stages
        previous = stages[stages.index(stage) - 1] if stages.index(stage) else None
        self.pipeline.add_stage(
            stage_name=stage.name, actions=stage_actions, on_failure=stage_gates.on_failure(),
            before_entry=stage_gates.before_entry(previous) if previous else None,
        )  # fmt: skip
        if previous:
            index, team = int(self.pipeline.stage_count) - 1, self.props.blueprint.team
            stage_gates.assume_gate_roles(self.pipeline, self.props.roles.pipeline, index, team, previous)

    def _approval(self, stage: DeployStage) -> actions.ManualApprovalAction:
        """The approval, told to the team when it waits (CodePipeline publishes it with the review link): the commit
        the release was built from, and where it answered before (that deploy's message names its digest)."""
        bp = self.props.blueprint
        where = f"environment {stage.environment}" if stage.environment else "production"
        position = [s.name for s in bp.stages].index(stage.name)
        before = bp.stages[position - 1].environment if position else ""
        answered = f"; it answered in {before} (its deploy messages there name the release tag, digest and check)"
        answered = answered if before else ""
        release = self.source_action.variables.commit_id
        topic = self.props.notify_topic_arn
        return actions.ManualApprovalAction(
            action_name="Approve",
            additional_information=f"Deploy {bp.team}/{bp.service} release of commit {release} to {where}{answered}",
            notification_topic=sns.Topic.from_topic_arn(self, f"Notify{stage.name}", topic) if topic else None,
            run_order=1,
        )

    def _next_approval(self, step: DeployStep) -> tuple[str, ...]:
        """The deploys of the stage before an approval tell the team what the approval will be asked for: this
        release, verified here, and where to approve it (the approval's own message names only the commit)."""
        stages = self.props.blueprint.stages
        position = next(i for i, stage in enumerate(stages) if step in stage.steps)
        if position + 1 == len(stages) or not stages[position + 1].approval:
            return ()
        link = notify.pipeline_link(f"slipway-{self.props.blueprint.name}", Stack.of(self).region)
        return ("--next-approval", stages[position + 1].environment or "production", "--approval-link", link)

    def _deploy_project(self, step: DeployStep) -> codebuild.PipelineProject:
        bp = self.props.blueprint
        args: tuple[str, ...] = step.args
        environment = "".join(part.capitalize() for part in step.environment.split("-"))
        role = self.props.roles.deploy(step.environment)
        if step.environment:
            # The job assumes the environment's workload role (infra.workload_stack) and deploys with it.
            role_arn = f"arn:{partition_for(step.region)}:iam::{step.account}:role/"
            role_arn += workload_role_name(bp.team, bp.service, step.environment)
            args = ("--environment", step.environment, "--role-arn", role_arn, "--region", step.region, *args)
        if self.props.notify_topic_arn:
            args = (*args, "--notify-topic", self.props.notify_topic_arn, *self._next_approval(step))
        if key := self.props.release_key_arn:
            args = (*args, "--release-key", key, "--source", bp.source_repo)
        record = "-".join(p for p in ("deployed", step.environment, step.kind) if p) + ".json"
        spec = buildspecs.deploy(step.kind, args, record=record)
        # A traffic shift's bakes are waited out inside the job (#29): its timeout grows by them.
        timeout = self.props.build_timeout_minutes + math.ceil(step.target.strategy.seconds / 60)
        project = self._project(
            f"Deploy{environment}{step.kind.capitalize()}", spec, role=role, timeout_minutes=timeout
        )
        # `slipway deploy` first checks that the registry serves exactly what image.json says (every target kind),
        # signed by the release key.
        self.props.repository.grant_pull(role)
        if key:
            grant_use(role, release_key_alias_of(key), "kms:Verify")
        acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        if self.props.notify_topic_arn:
            role.add_to_principal_policy(iam.PolicyStatement(actions=["sns:Publish"],
                                                             resources=[self.props.notify_topic_arn]))  # fmt: skip
        stack = Stack.of(self)
        if step.environment and step.region != stack.region:
            # ... and then that its replica in the environment's region serves the same (pipeline.replication).
            name = self.props.repository.repository.repository_name
            replica = f"arn:{Aws.PARTITION}:ecr:{step.region}:{stack.account}:repository/{name}"
            role.add_to_principal_policy(iam.PolicyStatement(actions=list(PULL_ACTIONS), resources=[replica]))
        if step.environment:
            role.add_to_principal_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role_arn]))
        else:
            # The role already reads the repository; an EKS namespace joins the team's one access entry per cluster.
            grant_deploy(self, step.target, role, pull=None, namespace_access=self.props.roles.namespace_access)
        return project
