"""The roles one team's pipelines share within a stack: roles grow with teams and environments, not with services.

IAM's default quota is 1,000 roles per account. A role per CodeBuild job and per pipeline made ten roles a service
(four of them per environment), so a platform account stopped somewhere near 100 services. The team is already the
trust boundary -- only roles under the team's build path push to its repositories -- so a stack's pipelines of one
team share:

- **one pipeline role**: every pipeline of the team in the stack, and every action of them (Source included);
- **one build role** (under :func:`infra.image_repository.build_role_path`): the Lint and Build jobs;
- **one Stitch role** (under :data:`pipeline.naming.STITCH_ROLES`, inside the build path: it pushes releases): the
  Stitch jobs, the only ones the platform's release key lets sign (:mod:`infra.release_key`);
- **one deploy role per environment** (under :func:`pipeline.naming.deploy_role_path`): the deploy jobs, which
  assume the environment's workload role, or (no environment) deploy the team's targets in the platform account.

What every job needs whatever its service (its log group, the artifact bucket and key, Slipway's runner image) is
granted once, by the team's project-name prefix (:func:`pipeline.naming.team_projects`); the projects run as views
of these roles that CDK cannot add a per-project statement to. What one service needs (its repository, its secrets,
its lock registration, its workload roles, its targets) is added by :class:`infra.service_pipeline.ServicePipeline`.
Sharing widens one thing, and the README says so: a team's job may act for any of the team's services in the stack
(push to its repositories, read its build secrets, deploy its targets) -- never for another team's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.deploy_grants import eks_access_entry, scope_namespaces
from infra.image_repository import build_role_path
from infra.jobs import JobSettings, grant_runner, grant_use_connection
from infra.nag import acknowledge
from infra.validation import raise_if_any
from pipeline.deployers.base import NamespaceAccess
from pipeline.naming import STITCH_ROLES, deploy_role_path, team_projects

PIPELINE_ROLE_PATH = "/slipway/pipeline/{team}/"
_TEAM = re.compile(r"^[a-z0-9][a-z0-9-]*$", re.ASCII)


@dataclass(frozen=True, kw_only=True)
class TeamRolesProps:
    team: str
    connection_arn: str
    """The CodeStar/CodeConnections connection every Source action of the team uses."""
    jobs: JobSettings
    artifact_bucket: s3.IBucket
    """The stack's artifact bucket (encrypted with ``jobs.encryption_key``)."""


class TeamRoles(Construct):
    def __init__(self, scope: Construct, id: str, props: TeamRolesProps) -> None:
        super().__init__(scope, id)
        problems = []
        if not _TEAM.fullmatch(props.team):
            # The project-name prefix slipway_<team>_ separates teams only while a team name holds no '_'.
            problems.append(f"team: expected lowercase letters, digits and '-', got {props.team!r}")
        if props.connection_arn.count(":") < 5:
            problems.append(f"connection_arn: expected a connection ARN, got {props.connection_arn!r}")
        raise_if_any("TeamRoles", problems)
        self.props = props
        self._projects = self._arn("codebuild", "project/" + team_projects(props.team))
        self._logs = self._arn("logs", "log-group:/aws/codebuild/" + team_projects(props.team))
        self.pipeline = self._pipeline_role()
        self.build = self._job_role("BuildRole", build_role_path(props.team), "builds (lint, build)")
        self.stitch = self._job_role("StitchRole", STITCH_ROLES.format(team=props.team), "stitch (signs releases)")
        self._deploy: dict[str, iam.Role] = {}
        self._access_entries: dict[tuple[str, str], tuple[eks_l1.CfnAccessEntry, set[str]]] = {}

    def deploy(self, environment: str = "") -> iam.Role:
        """The team's deploy role for ``environment`` (none: the platform account's own targets), made on first use."""
        if environment not in self._deploy:
            id = "DeployRole" + "".join(part.capitalize() for part in environment.split("-"))
            where = f"environment {environment}" if environment else "the platform account"
            self._deploy[environment] = self._job_role(
                id, deploy_role_path(self.props.team, environment), f"deploys to {where}"
            )
        return self._deploy[environment]

    def namespace_access(self, role: iam.IRole, access: NamespaceAccess) -> None:
        """EKS allows one access entry per principal and cluster: a team's deploy role reaching several namespaces of
        one cluster gets one entry, scoped to exactly those namespaces."""
        key = (role.node.path, access.cluster)
        if key not in self._access_entries:
            id = f"AccessEntry-{len(self._access_entries)}"
            self._access_entries[key] = (eks_access_entry(self, access, role, id=id), set())
        entry, namespaces = self._access_entries[key]
        namespaces.add(access.namespace)
        scope_namespaces(entry, namespaces)

    def _pipeline_role(self) -> iam.Role:
        props = self.props
        role = iam.Role(
            self, "PipelineRole", assumed_by=iam.ServicePrincipal("codepipeline.amazonaws.com"),
            path=PIPELINE_ROLE_PATH.format(team=props.team),
            description=f"Slipway: the pipelines of team {props.team} and their actions",
        )  # fmt: skip
        grant_use_connection(role, props.connection_arn)
        props.artifact_bucket.grant_read_write(role)
        props.artifact_bucket.grant_put_acl(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"],
                resources=[self._projects],
            )
        )
        acknowledge(
            role, "IAM5", "Starts and follows the team's CodeBuild projects (named by the team's prefix)",
            applies_to="Resource::" + self._arn("codebuild", "project/" + team_projects(props.team), shown=True),
        )  # fmt: skip
        return role

    def _job_role(self, id: str, path: str, what: str) -> iam.Role:
        props = self.props
        role = iam.Role(
            self, id, assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"), path=path,
            description=f"Slipway: team {props.team}'s {what}",
        )  # fmt: skip
        grant_runner(role, props.jobs.runner)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], resources=[self._logs]
            )
        )
        # Read input artifacts, write output artifacts, both encrypted with the stack's key.
        props.artifact_bucket.grant_read_write(role)
        props.jobs.encryption_key.grant_encrypt_decrypt(role)
        acknowledge(
            role, "IAM5", "Writes the logs of the team's CodeBuild projects (named by the team's prefix)",
            applies_to="Resource::" + self._arn("logs", "log-group:/aws/codebuild/" + team_projects(props.team), shown=True),
        )  # fmt: skip
        return role

    def _arn(self, service: str, resource: str, *, shown: bool = False) -> str:
        """An ARN in this stack's account and Region; ``shown``: as cdk-nag prints it (the partition unresolved)."""
        stack = Stack.of(self)
        partition = "<AWS::Partition>" if shown else Aws.PARTITION
        return f"arn:{partition}:{service}:{stack.region}:{stack.account}:{resource}"
