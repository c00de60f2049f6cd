"""Stage gates (#29): every deploy stage rolls back on failure, and the stage after an environment whose shifts watch
alarms does not start while one is in ALARM -- read in the environment's account, as a gate role only the team's
pipelines may assume, which may only read those alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.stage_gates import EXACT_ALARMS, GateRole, GateRoleProps
from infra.validation import PropsError

PAYMENTS = "Slipway-Acme-Pipelines-payments-1"
DEV_WORKLOAD = "Slipway-Acme-Workload-222222222222-eu-west-1"
PROD_WORKLOAD = "Slipway-Acme-Workload-555555555555-eu-central-1"
GATE = "arn:aws:iam::222222222222:role/slipway-gate-payments-dev"


def _stages(synthesized: dict[str, Any], stack: str, pipeline: str) -> dict[str, dict[str, Any]]:
    template: Template = synthesized["templates"][stack]
    for resource in template.find_resources("AWS::CodePipeline::Pipeline").values():
        if resource["Properties"]["Name"] == pipeline:
            return {stage["Name"]: stage for stage in resource["Properties"]["Stages"]}
    raise AssertionError(f"no pipeline {pipeline} in {stack}")


def test_every_deploy_stage_of_every_pipeline_rolls_back_on_failure(synthesized: dict[str, Any]) -> None:
    deploy_stages = 0
    for template in synthesized["templates"].values():
        for resource in template.find_resources("AWS::CodePipeline::Pipeline").values():
            if resource["Properties"]["Name"] == "slipway-platform":  # its Deploy is CloudFormation's, which rolls back
                continue
            for stage in resource["Properties"]["Stages"]:
                if stage["Name"].startswith("Deploy"):
                    deploy_stages += 1
                    assert stage.get("OnFailure") == {"Result": "ROLLBACK"}, stage["Name"]
                else:  # a failed build or stitch has nothing deployed to roll back
                    assert "OnFailure" not in stage, stage["Name"]
    assert deploy_stages >= 3


def test_prod_does_not_start_while_devs_alarm_is_in_alarm(synthesized: dict[str, Any]) -> None:
    stages = _stages(synthesized, PAYMENTS, "slipway-payments-api")
    assert "BeforeEntry" not in stages["Deploy-dev"]  # nothing before dev to wait for
    assert stages["Deploy-prod"]["BeforeEntry"] == {"Conditions": [{"Result": "FAIL", "Rules": [{
        "Name": "dev-alarm-1",
        "RuleTypeId": {"Category": "Rule", "Owner": "AWS", "Provider": "CloudWatchAlarm", "Version": "1"},
        "Configuration": {"AlarmName": "payments-api-dev-errors"},
        "Region": "eu-west-1",  # where dev runs, in dev's account, read as its gate role
        "RoleArn": GATE,
    }]}]}  # fmt: skip


def test_the_pipeline_role_may_assume_the_gate_role(synthesized: dict[str, Any]) -> None:
    template: Template = synthesized["templates"][PAYMENTS]
    pipeline = next(
        r for r in template.find_resources("AWS::CodePipeline::Pipeline").values()
        if r["Properties"]["Name"] == "slipway-payments-api"
    )  # fmt: skip
    role = pipeline["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip
    assert {"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": GATE} in statements


def test_the_gate_role_trusts_only_the_teams_pipelines_and_reads_only_devs_alarms(
    synthesized: dict[str, Any],
) -> None:
    template: Template = synthesized["templates"][DEV_WORKLOAD]
    roles = template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": "slipway-gate-payments-dev"}})
    (logical, role), = roles.items()  # fmt: skip
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert json.dumps(trust["Condition"]).endswith(':iam::111111111111:role/slipway/pipeline/payments/*"]]}}}')
    policies = [
        p for p in template.find_resources("AWS::IAM::Policy").values() if {"Ref": logical} in p["Properties"]["Roles"]
    ]
    (statement,) = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    assert json.dumps(statement["Resource"]).endswith(
        ':cloudwatch:eu-west-1:222222222222:alarm:payments-api-dev-errors"]]}'
    )


def test_no_gate_role_for_the_last_environment(synthesized: dict[str, Any]) -> None:
    """prod's alarms gate nothing after it: its account gets no role nobody assumes."""
    template: Template = synthesized["templates"][PROD_WORKLOAD]
    assert not template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": Match.string_like_regexp("gate")}})


def _gate(alarms: tuple[str, ...]) -> Template:
    app = App()
    stack = Stack(app, "Workload", env=Environment(account="222222222222", region="eu-west-1"))
    GateRole(stack, "Gate", GateRoleProps(team="t", environment="dev", platform_account="111111111111", alarms=alarms))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # cdk-nag: the wildcard past the limit is acknowledged, with its reason
    return Template.from_stack(stack)


def test_a_gate_role_names_each_alarm_up_to_the_limit_then_reads_the_accounts() -> None:
    few = _gate(tuple(f"a-{i}" for i in range(EXACT_ALARMS)))
    (policy,) = few.find_resources("AWS::IAM::Policy").values()
    assert len(policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]) == EXACT_ALARMS
    many = _gate(tuple(f"a-{i}" for i in range(EXACT_ALARMS + 1)))  # 500 services of one team in one environment
    (policy,) = many.find_resources("AWS::IAM::Policy").values()
    resource = policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]
    assert json.dumps(resource).endswith(':cloudwatch:eu-west-1:222222222222:alarm:*"]]}')
    assert len(json.dumps(policy["Properties"]["PolicyDocument"])) < 10_240


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alarms": ()}, "GateRole: alarms: environment 'dev' of team 't' watches no alarm"),
        ({"platform_account": "1111"}, "GateRole: platform_account: expected a 12-digit account id, got '1111'"),
    ],
)
def test_a_gate_role_refuses_bad_props_naming_the_prop(change: dict[str, Any], message: str) -> None:
    props = {"team": "t", "environment": "dev", "platform_account": "111111111111", "alarms": ("a",), **change}
    with pytest.raises(PropsError) as raised:
        GateRole(Stack(App(), "S"), "Gate", GateRoleProps(**props))
    assert message in str(raised.value)
