"""A workload account's side of promotion: the role each environment's deploys assume there, and the gate role a
team's pipelines read an environment's alarms with (:mod:`infra.stage_gates`); nothing else.

Deployed once into each workload account, from the same app, with that account's credentials (``cdk deploy
Slipway-<Platform>-Workload-<account>-<region>``). For every environment of every service in that account and region,
one role that

- only the team's deploy role for that environment may assume (the platform account, and ``aws:PrincipalArn``
  under :func:`pipeline.naming.deploy_role_path`: the team's, shared by its pipelines in a stack);
- may do exactly what the target's deployer declares (``Deployer.permissions``), in this account: the named function,
  ECS service or EKS namespace;
- may read the service's release from the platform's repository -- in another region than the platform's, from its
  replica there (:mod:`pipeline.replication`) -- (Lambda resolves the image with its caller's permission, and a
  rollback run as this role checks the release against the registry; the repository policy, in the platform
  account, lets this account and these functions pull).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.deploy_grants import grant_deploy
from infra.image_repository import RepositoryByArn
from infra.nag import ECR_AUTH_TOKEN, acknowledge
from infra.stage_gates import GateRole, GateRoleProps
from infra.validation import check_account, raise_if_any
from pipeline.config import PlatformConfig
from pipeline.deployers.base import DeployTarget
from pipeline.naming import deploy_role_path, service_repository_name, workload_role_name


@dataclass(frozen=True, kw_only=True)
class WorkloadDeployRoleProps:
    team: str
    service: str
    environment: str
    platform_account: str
    """The account whose pipeline deploys here: only its deploy role for this environment may assume the role."""
    repository_arn: str
    """The service's repository in the platform account."""
    targets: tuple[DeployTarget, ...]


class WorkloadDeployRole(Construct):
    """The role one environment's deploys assume in its workload account."""

    def __init__(self, scope: Construct, id: str, props: WorkloadDeployRoleProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        partition = Stack.of(self).partition
        deployer = f"arn:{partition}:iam::{props.platform_account}:role"
        deployer += deploy_role_path(props.team, props.environment) + "*"
        self.role = iam.Role(
            self,
            "Role",
            role_name=workload_role_name(props.team, props.service, props.environment),
            assumed_by=iam.AccountPrincipal(props.platform_account).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": deployer}}
            ),
            description=f"Slipway: deploys of {props.team}/{props.service} to {props.environment}",
        )
        # The release is read as this role too: a rollback run in the environment checks it against the registry.
        RepositoryByArn(self, "Repository", props.repository_arn).grant_pull(self.role)
        acknowledge(self.role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        for target in props.targets:
            grant_deploy(Construct(self, f"Target-{target.kind}"), target, self.role, pull=None)

    @staticmethod
    def _validate(props: WorkloadDeployRoleProps) -> None:
        problems: list[str] = []
        check_account(problems, "platform_account", props.platform_account)
        if not props.targets:
            problems.append(f"targets: environment {props.environment!r} has no deploy target")
        if ":repository/" not in props.repository_arn:
            problems.append(f"repository_arn: expected an ECR repository ARN, got {props.repository_arn!r}")
        raise_if_any("WorkloadDeployRole", problems)


class WorkloadStack(Stack):
    """Every environment role of one workload account and region, and the gate roles (:mod:`infra.stage_gates`) the
    teams' pipelines read those environments' alarms with."""

    def __init__(self, scope: Construct, id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        platform = config.platform
        watched: dict[tuple[str, str], list[str]] = {}
        for team, service in config.services():
            for environment in service.environments:
                if (environment.account, environment.region or platform.region) != (self.account, self.region):
                    continue
                if environment is not service.environments[-1]:  # the next environment's entry reads its alarms
                    alarms = [a for target in environment.targets() for a in target.strategy.alarms]
                    watched.setdefault((team.name, environment.name), []).extend(alarms)
                name = service_repository_name(team.name, service.name)
                WorkloadDeployRole(
                    self,
                    f"{team.name}-{service.name}-{environment.name}",
                    WorkloadDeployRoleProps(
                        team=team.name,
                        service=service.name,
                        environment=environment.name,
                        platform_account=platform.account,
                        # In another region than the platform's: the replica there (pipeline.replication).
                        repository_arn=f"arn:{self.partition}:ecr:{self.region}:{platform.account}:repository/{name}",
                        targets=environment.targets(),
                    ),
                )
        for (team_name, environment_name), alarms in watched.items():
            if alarms:
                GateRole(self, f"{team_name}-gate-{environment_name}", GateRoleProps(
                    team=team_name, environment=environment_name, platform_account=platform.account,
                    alarms=tuple(dict.fromkeys(alarms)),
                ))  # fmt: skip


def workload_places(config: PlatformConfig) -> list[tuple[str, str]]:
    """``(account, region)`` of every environment, in config order, each once."""
    places = (
        (environment.account, environment.region or config.platform.region)
        for _, service in config.services()
        for environment in service.environments
    )
    return list(dict.fromkeys(places))
