"""Stage gates (#29): what CodePipeline itself does around each environment's deploy stage.

- **On failure, roll back.** Every deploy stage has CodePipeline V2's ``OnFailure`` result ``ROLLBACK``: CodePipeline
  runs the stage again with the artifacts of the last execution that succeeded in it, so an environment where one
  target took the release and another refused it (or rolled its own shift back) serves the previous release on every
  target again. A stage that never succeeded has nothing to roll back to, and stays failed.
- **Do not enter while the previous environment is alarming.** The stage after an environment whose traffic shifts
  watch alarms has a ``BeforeEntry`` condition: one ``CloudWatchAlarm`` rule per alarm, result ``FAIL``. A release
  that sets off an alarm where it already runs does not move on, even if that environment's deploy had finished.

The alarms live in the previous environment's workload account. CodePipeline evaluates a rule as the rule's
``RoleArn``, assumed through the pipeline's role as it assumes an action's role in another account; so each workload
account holds one :class:`GateRole` per team and environment that watches alarms. It may only read the states of
those alarms, and only the team's pipeline role may assume it: a pipeline never holds the deploy role's rights.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.blueprint import DeployStage
from infra.nag import acknowledge
from infra.team_roles import PIPELINE_ROLE_PATH
from infra.validation import check_account, raise_if_any
from pipeline.deployers.shift import ALARM_ARN
from pipeline.naming import gate_role_name, partition_for

EXACT_ALARMS = 50
"""Up to this many alarms a gate role names each one (about 4 KB of ARNs); past it (a team of hundreds of services in
one environment) the ARNs would pass IAM's 10,240 characters of inline policy per role, and it reads the account's."""


@dataclass(frozen=True, kw_only=True)
class GateRoleProps:
    team: str
    environment: str
    platform_account: str
    """The account of the team's pipelines: only their role may assume this one."""
    alarms: tuple[str, ...]
    """The alarms the environment's traffic shifts watch, every service of the team together."""


class GateRole(Construct):
    """The role a team's pipelines read one environment's alarms with, in that environment's workload account."""

    def __init__(self, scope: Construct, id: str, props: GateRoleProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        stack = Stack.of(self)
        pipelines = f"arn:{stack.partition}:iam::{props.platform_account}:role"
        pipelines += PIPELINE_ROLE_PATH.format(team=props.team) + "*"
        self.role = iam.Role(
            self, "Role", role_name=gate_role_name(props.team, props.environment),
            assumed_by=iam.AccountPrincipal(props.platform_account).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": pipelines}}
            ),
            description=f"Slipway: the pipelines of team {props.team} read {props.environment}'s alarms to promote",
        )  # fmt: skip
        where = {"partition": stack.partition, "region": stack.region, "account": stack.account}
        names = sorted(set(props.alarms)) if len(set(props.alarms)) <= EXACT_ALARMS else ["*"]
        resources = [ALARM_ARN.format(**where) % name for name in names]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=resources)
        )
        if names == ["*"]:
            acknowledge(
                self.role, "IAM5", "Reads alarm states only; past EXACT_ALARMS alarms their ARNs exceed IAM's policy size",
                applies_to="Resource::" + ALARM_ARN.format(**{**where, "partition": "<AWS::Partition>"}) % "*",
            )  # fmt: skip

    @staticmethod
    def _validate(props: GateRoleProps) -> None:
        problems: list[str] = []
        check_account(problems, "platform_account", props.platform_account)
        if not props.alarms:
            problems.append(f"alarms: environment {props.environment!r} of team {props.team!r} watches no alarm")
        raise_if_any("GateRole", problems)


def on_failure() -> codepipeline.FailureConditions:
    """Every deploy stage: a failure rolls the stage back to the last execution that succeeded in it."""
    return codepipeline.FailureConditions(result=codepipeline.Result.ROLLBACK)


def gate_role_arn(team: str, stage: DeployStage) -> str:
    return f"arn:{partition_for(stage.region)}:iam::{stage.account}:role/{gate_role_name(team, stage.environment)}"


def before_entry(previous: DeployStage) -> codepipeline.Conditions | None:
    """The next stage's entry condition: every alarm ``previous``'s shifts watch, read in its account and region (the
    rules' ``RoleArn`` is set by :func:`assume_gate_roles`: CDK's rule takes only a role of this stack)."""
    if not previous.alarms:
        return None
    name, where = previous.environment or "deploy", previous.region or None
    rules = [
        codepipeline.Rule(
            name=f"{name}-alarm-{i}",
            provider="CloudWatchAlarm",
            version="1",
            configuration={"AlarmName": alarm},
            region=where,
        )
        for i, alarm in enumerate(previous.alarms, start=1)
    ]
    return codepipeline.Conditions(conditions=[codepipeline.Condition(result=codepipeline.Result.FAIL, rules=rules)])


def assume_gate_roles(
    pipeline: codepipeline.Pipeline, role: iam.IRole, index: int, team: str, previous: DeployStage
) -> None:
    """Stage ``index``'s rules read as ``previous``'s gate role in its workload account, which the pipeline's
    ``role`` may assume (no environment: the alarms are in the platform's account, read as the pipeline's role)."""
    if not previous.environment or not previous.alarms:
        return
    arn = gate_role_arn(team, previous)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[arn]))
    cfn = pipeline.node.default_child
    assert isinstance(cfn, codepipeline.CfnPipeline)
    for i in range(len(previous.alarms)):
        cfn.add_property_override(f"Stages.{index}.BeforeEntry.Conditions.0.Rules.{i}.RoleArn", arn)
