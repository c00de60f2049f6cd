"""The replay's entry conditions (#29) against the AWS stand-in with IAM enforced: the pipeline's role assumes the gate
role in the workload account (its trust policy and the pipeline role's grant both checked), which reads the alarm in
the environment's region. The gate opens only on an alarm that exists, is readable, and is not in ALARM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.assembly import Pipeline, Rule, Stage
from pipeline.local import services
from pipeline.local.aws import client
from pipeline.local.lifecycle import ADMIN, create_admin
from pipeline.local.replay import conditions
from pipeline.local.replay import iam as replay_iam

pytestmark = pytest.mark.integration
PLATFORM, WORKLOAD, REGION = "111122223333", "999988887777", "eu-west-1"
PIPELINE_ROLE = f"arn:aws:iam::{PLATFORM}:role/slipway/pipeline/payments/PipelineRole"
OTHER_TEAM = f"arn:aws:iam::{PLATFORM}:role/slipway/pipeline/search/PipelineRole"
GATE = f"arn:aws:iam::{WORKLOAD}:role/slipway-gate-payments-dev"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """The platform account's pipeline roles (payments' may assume the gate role, search's may too but is not
    trusted), and in the workload account the gate role as infra.stage_gates makes it, with dev's two alarms."""
    state: Path = tmp_path_factory.mktemp("gates")
    port = services.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with services.running(services.moto_service(state, port, enforce_iam=True)):
        admin = create_admin(endpoint, PLATFORM)
        iam = client("iam", endpoint, admin)
        admin_trust = _policy({"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"AWS": f"arn:aws:iam::{PLATFORM}:user/{ADMIN}"}})  # fmt: skip
        for name, team in (("PipelineRole", "payments"), ("SearchPipelineRole", "search")):
            iam.create_role(RoleName=name, Path=f"/slipway/pipeline/{team}/", AssumeRolePolicyDocument=admin_trust)
            iam.put_role_policy(RoleName=name, PolicyName="gate", PolicyDocument=_policy(
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": GATE}))  # fmt: skip
        org = f"arn:aws:iam::{WORKLOAD}:role/OrganizationAccountAccessRole"
        there = dict(client("sts", endpoint, admin).assume_role(RoleArn=org, RoleSessionName="setup")["Credentials"])
        trust = _policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{PLATFORM}:root"},
                         "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{PLATFORM}:role/slipway/pipeline/payments/*"}}})  # fmt: skip
        workload_iam = client("iam", endpoint, there)
        workload_iam.create_role(RoleName="slipway-gate-payments-dev", AssumeRolePolicyDocument=trust)
        workload_iam.put_role_policy(RoleName="slipway-gate-payments-dev", PolicyName="read", PolicyDocument=_policy(
            {"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
             "Resource": [f"arn:aws:cloudwatch:{REGION}:{WORKLOAD}:alarm:{n}" for n in ("api-errors", "gone")]}))  # fmt: skip
        cloudwatch = client("cloudwatch", endpoint, there, REGION)
        for name in ("api-errors", "billing-errors"):
            cloudwatch.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                                        Period=60, EvaluationPeriods=1, Threshold=0,
                                        ComparisonOperator="GreaterThanThreshold")  # fmt: skip
        yield endpoint, admin, there


def _enter(stand_in: tuple[str, dict[str, str], dict[str, str]], pipeline_role: str, *alarms: str) -> str:
    """The entry condition of a stage reading ``alarms`` in the workload account as the gate role, evaluated for a
    pipeline running as ``pipeline_role`` (assumed by the replay's admin for CodePipeline, as the runner does)."""
    endpoint, admin, _ = stand_in
    sts = client("sts", endpoint, admin)
    assume = replay_iam.assumer(sts, lambda: {pipeline_role: {replay_iam.CODEPIPELINE}}, replay_iam.CODEPIPELINE)
    rules = tuple(
        Rule(f"dev-alarm-{i}", "CloudWatchAlarm", {"AlarmName": a}, REGION, GATE) for i, a in enumerate(alarms)
    )
    stage = Stage("Deploy-prod", (), before_entry=(("FAIL", rules),))
    return conditions.evaluator(endpoint, assume)(Pipeline("slipway-payments-api", "S", pipeline_role, ()), stage)


def test_the_gate_opens_while_the_alarm_is_ok_and_stays_shut_while_it_is_in_alarm(stand_in: Any) -> None:
    endpoint, _, there = stand_in
    assert _enter(stand_in, PIPELINE_ROLE, "api-errors") == ""
    cloudwatch = client("cloudwatch", endpoint, there, REGION)
    cloudwatch.set_alarm_state(AlarmName="api-errors", StateValue="ALARM", StateReason="3 errors")
    try:
        assert _enter(stand_in, PIPELINE_ROLE, "api-errors") == (
            f"rule dev-alarm-0: alarm api-errors in {REGION} is in ALARM (3 errors)"
        )
    finally:
        cloudwatch.set_alarm_state(AlarmName="api-errors", StateValue="OK", StateReason="quiet")


def test_an_alarm_the_gate_role_may_not_read_or_that_does_not_exist_keeps_it_shut(stand_in: Any) -> None:
    refused = _enter(stand_in, PIPELINE_ROLE, "billing-errors")
    assert refused.startswith(f"rule dev-alarm-0: alarm billing-errors in {REGION}, read as {GATE}: ")
    assert "alarm:billing-errors" in refused
    assert _enter(stand_in, PIPELINE_ROLE, "gone") == f"rule dev-alarm-0: alarm gone does not exist in {REGION}"


def test_another_teams_pipeline_may_not_assume_the_gate_role(stand_in: Any) -> None:
    refused = _enter(stand_in, f"arn:aws:iam::{PLATFORM}:role/slipway/pipeline/search/SearchPipelineRole", "api-errors")
    assert refused.startswith(f"rule dev-alarm-0: alarm api-errors in {REGION}, read as {GATE}: ")
