"""What every Slipway CodeBuild job and pipeline source shares: the project with its own role, and the Source role.

A job's project runs in Slipway's runner image (:mod:`pipeline.runner_image`), pulled from the platform's ECR by digest
with the project's service role, on the native runner of its platform, and has its role under the path the caller
gives (the team's build path, a deploy path, the platform's). Nothing is installed when a job starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge
from infra.validation import raise_if_any
from infra.warm_builders import WarmBuilders

_RUNNER_ENTRY = re.compile(r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_.-]+@sha256:[0-9a-f]{64}", re.ASCII)
RUNNER_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")


def grant_use_connection(role: iam.IRole, connection_arn: str) -> None:
    """``UseConnection`` under the connection ARN's own service prefix. CDK grants
    ``codestar-connections:UseConnection`` whatever the ARN; a ``codeconnections`` ARN needs
    ``codeconnections:UseConnection`` (IAM matches the action's service prefix to the resource's), so the first push
    would stop at Source."""
    service = connection_arn.split(":")[2] if connection_arn.count(":") >= 2 else "codeconnections"
    role.add_to_principal_policy(iam.PolicyStatement(actions=[f"{service}:UseConnection"], resources=[connection_arn]))


@dataclass(frozen=True)
class JobSettings:
    """What every Slipway CodeBuild job shares within a stack."""

    runner: str
    """The lock's ``RUNNER`` entry (``slipway/runner:<tag>@sha256:…``): the image every job runs in, by digest."""
    encryption_key: kms.IKey
    timeout_minutes: int = 60
    warm: WarmBuilders = field(default_factory=WarmBuilders)
    """The platform's warm builders (``[builders]``): image-building (privileged) jobs run on them."""

    def __post_init__(self) -> None:
        if not _RUNNER_ENTRY.fullmatch(self.runner):
            raise_if_any("JobSettings", [
                f"runner: expected the lock's RUNNER entry, '<repository>:<tag>@sha256:<64 hex>', got {self.runner!r}"
            ])  # fmt: skip


def job_project(
    scope: Construct,
    id: str,
    spec: dict[str, object],
    settings: JobSettings,
    *,
    description: str,
    role_path: str = "",
    shared_role: iam.IRole | None = None,
    name: str | None = None,
    runner: str = "x86",
    privileged: bool = False,
    env: dict[str, codebuild.BuildEnvironmentVariable] | None = None,
) -> codebuild.PipelineProject:
    """A CodeBuild project running ``spec`` in ``settings.runner``: with its own role under ``role_path``, or as
    ``shared_role`` (:class:`infra.team_roles.TeamRoles`), through a view CDK cannot add to -- what every
    project would otherwise get one statement each for (logs, artifacts, key) the shared role holds once, by the
    team's project-name prefix. ``name``: the project's name (a shared role reaches its projects by name)."""
    own: iam.Role | None = None
    if shared_role is None:
        own = iam.Role(
            scope, f"{id}Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"), path=role_path,
            description=description,
        )  # fmt: skip
        role: iam.IRole = own
    else:
        role = iam.Role.from_role_arn(scope, f"{id}Role", shared_role.role_arn, mutable=False)
    project = codebuild.PipelineProject(
        scope,
        id,
        project_name=name,
        role=role,
        build_spec=codebuild.BuildSpec.from_object(spec),
        timeout=Duration.minutes(settings.timeout_minutes),
        encryption_key=settings.encryption_key,
        environment=codebuild.BuildEnvironment(
            build_image=runner_image(scope, id, settings.runner, runner),
            compute_type=codebuild.ComputeType.MEDIUM if privileged else codebuild.ComputeType.SMALL,
            privileged=privileged,
        ),
        environment_variables=env or None,
    )
    cfn_project = project.node.default_child
    assert isinstance(cfn_project, codebuild.CfnProject)
    # CDK passes the role *name*; with an IAM path CodeBuild would resolve it to a wrong ARN.
    cfn_project.service_role = role.role_arn
    if own is not None:
        _acknowledge_generated_grants(own, project)
        _acknowledge_token(own)  # CDK's pull grant for the runner (a shared role holds grant_runner's)
    elif shared_role is not None:
        # The shared role's policies first: a project (and the execution its pipeline starts) never runs without them.
        project.node.add_dependency(shared_role)
        _acknowledge_service_role(project)
    acknowledge(project, "CB5", "Slipway's runner image: built by the platform, pinned by digest in its own ECR")
    if privileged:
        settings.warm.apply(cfn_project, runner)
        acknowledge(project, "CB3", "BuildKit needs privileged mode to build container images inside CodeBuild")
    return project


def runner_image(scope: Construct, id: str, entry: str, runner: str) -> codebuild.IBuildImage:
    """The runner by its index digest (CodeBuild pulls the child of its runner's architecture), with the project's
    service-role credentials: no repository policy names CodeBuild."""
    name, digest = entry.partition(":")[0], entry.rpartition("@")[2]
    repository = ecr.Repository.from_repository_name(scope, f"{id}Runner", name)
    if runner == "arm":  # ARM_CONTAINER: arm64 builds run natively, never under QEMU
        return codebuild.LinuxArmBuildImage.from_ecr_repository(repository, digest)
    return codebuild.LinuxBuildImage.from_ecr_repository(repository, digest)


def grant_runner(role: iam.IRole, entry: str) -> None:
    """Pull the runner (and nothing else of the registry); CodeBuild asks for the registry token as the role."""
    stack = Stack.of(role)
    name = entry.partition(":")[0]
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(RUNNER_PULL),
            resources=[f"arn:{Aws.PARTITION}:ecr:{stack.region}:{stack.account}:repository/{name}"],
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    _acknowledge_token(role)


def _acknowledge_token(role: iam.IRole) -> None:
    acknowledge(role, "IAM5", "ecr:GetAuthorizationToken has no resource: CodeBuild pulls the runner image with it",
                applies_to="Resource::*")  # fmt: skip


def _acknowledge_generated_grants(role: iam.IRole, project: codebuild.PipelineProject) -> None:
    """CDK's own grants use wildcards scoped to one bucket, one log group or one project's report groups."""
    stack = Stack.of(project)
    project_id = stack.get_logical_id(project.node.default_child)  # type: ignore[arg-type]
    prefix = f"arn:<AWS::Partition>:{{}}:{stack.region}:{stack.account}"
    scoped = [
        f"Resource::{prefix.format('logs')}:log-group:/aws/codebuild/<{project_id}>:*",
        f"Resource::{prefix.format('codebuild')}:report-group/<{project_id}>-*",
    ]
    for finding in scoped:
        acknowledge(role, "IAM5", "CDK-generated grant scoped to this project's logs and reports", applies_to=finding)
    _acknowledge_service_role(project)


def _acknowledge_service_role(project: codebuild.PipelineProject) -> None:
    acknowledge(
        project,
        "E3050",
        "ServiceRole is overridden to the role's GetAtt Arn (see the template); the check reads CDK's Ref",
        pack="CloudFormation-Validate",
    )


@dataclass(frozen=True)
class SourcedPipeline:
    """A V2 pipeline started by pushes to one branch of a repository (filtered by file paths), with its Source stage."""

    pipeline: codepipeline.Pipeline
    source_action: actions.CodeStarConnectionsSourceAction
    source: codepipeline.Artifact


def sourced_pipeline(
    scope: Construct,
    name: str,
    *,
    repository: str,
    branch: str,
    file_paths: list[str],
    connection_arn: str,
    artifact_bucket: s3.IBucket,
    shared_role: iam.IRole | None = None,
) -> SourcedPipeline:
    """``repository``: ``owner/name``; ``file_paths``: the push filter's paths (empty: any file). ``shared_role``:
    the team's pipeline role (:class:`infra.team_roles.TeamRoles`), which already holds what the pipeline and every
    action of it need (Source included); none: the pipeline gets a role of its own, which its actions act as too --
    Source included, so no role trusts a whole account to read the connection."""
    source = codepipeline.Artifact("source")
    owner, repo = repository.split("/", 1)
    own = None
    if shared_role is None:
        # The pipeline's own role, which its Source action acts as too: it reads the connection and writes the
        # artifact; CDK's grant for the action (under codestar-connections whatever the ARN) goes to a view and drops.
        own = iam.Role(scope, "PipelineRole", assumed_by=iam.ServicePrincipal("codepipeline.amazonaws.com"))
        grant_use_connection(own, connection_arn)
        artifact_bucket.grant_read_write(own)
        artifact_bucket.grant_put_acl(own)
    source_action = actions.CodeStarConnectionsSourceAction(
        action_name="Source", connection_arn=connection_arn, owner=owner, repo=repo, branch=branch, output=source,
        # The V2 trigger below starts the pipeline, with file-path filters; the action's own trigger would not.
        trigger_on_push=False,
        role=iam.Role.from_role_arn(scope, "SourceActionRole", own.role_arn, mutable=False) if own else None,
    )  # fmt: skip
    view = iam.Role.from_role_arn(scope, "PipelineRole", shared_role.role_arn, mutable=False) if shared_role else own
    push = codepipeline.GitPushFilter(branches_includes=[branch], file_paths_includes=file_paths or None)
    pipeline = codepipeline.Pipeline(
        scope, "Pipeline", pipeline_name=name, pipeline_type=codepipeline.PipelineType.V2,
        artifact_bucket=artifact_bucket, restart_execution_on_update=False, role=view,
        # One role for the pipeline and its actions (CDK would make one per action): roles count against IAM's
        # per-account quota, and the actions' roles held nothing the pipeline role does not.
        use_pipeline_role_for_actions=True,
        triggers=[codepipeline.TriggerProps(
            provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
            git_configuration=codepipeline.GitConfiguration(source_action=source_action, push_filter=[push]),
        )],
    )  # fmt: skip
    pipeline.add_stage(stage_name="Source", actions=[source_action])
    if shared_role is not None:
        pipeline.node.add_dependency(shared_role)
    return SourcedPipeline(pipeline, source_action, source)
