"""The AWS stand-in enforces IAM as AWS does: the action on the resource the request names, what it implies, trust.

moto's own enforcement checks every non-S3 action against ``Resource "*"`` (so these least-privilege grants would all
be denied); ``pipeline.local.iam_enforcement`` evaluates them as IAM does. Each case has its allowed and denied side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.local import services
from pipeline.local.aws import client
from pipeline.local.lifecycle import ADMIN, create_admin

pytestmark = pytest.mark.integration
ACCOUNT = "111122223333"
REGION = "eu-west-1"
ECS = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/payments/"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payments/api"


def _statement(actions: str | list[str], resources: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


# fmt: off
GRANTS = [
    _statement("ecs:DescribeServices", f"{ECS}api"),
    _statement("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pip-token-??????"),
    _statement("ecs:RegisterTaskDefinition", "*"),
    _statement("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/api-task",
               Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
    _statement(["lambda:GetFunction", "lambda:UpdateFunctionCode"], f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"),
    _statement(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
               f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/payments/api"),
    {"Effect": "Deny", "Action": "lambda:*", "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:prod-*"},
    _statement("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:api-errors"),
]
# fmt: on


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    state: Path = tmp_path_factory.mktemp("iam")
    port = services.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with services.running(services.moto_service(state, port, enforce_iam=True)):
        admin = create_admin(endpoint, ACCOUNT)
        iam = client("iam", endpoint, admin)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN}"}}]}  # fmt: skip
        for name in ("deploy", "api-task", "other-task"):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        document = {"Version": "2012-10-17", "Statement": GRANTS}
        iam.put_role_policy(RoleName="deploy", PolicyName="deploy", PolicyDocument=json.dumps(document))
        secrets = client("secretsmanager", endpoint, admin)
        for name in ("pip-token", "prod-db"):
            secrets.create_secret(Name=name, SecretString="s3cr3t")
        ecs = client("ecs", endpoint, admin)
        ecs.create_cluster(clusterName="payments")
        lam = client("lambda", endpoint, admin)
        role = f"arn:aws:iam::{ACCOUNT}:role/api-task"
        for name in ("dev-api", "prod-api"):
            lam.create_function(FunctionName=name, Role=role, PackageType="Image",
                                Code={"ImageUri": f"{REPOSITORY}@sha256:{'0' * 64}"})  # fmt: skip
        cloudwatch = client("cloudwatch", endpoint, admin)
        for name in ("api-errors", "billing-errors"):
            cloudwatch.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                                        Period=60, EvaluationPeriods=1, Threshold=1,
                                        ComparisonOperator="GreaterThanThreshold")  # fmt: skip
        yield endpoint, admin


@pytest.fixture(scope="module")
def deploy_role(stand_in: tuple[str, dict[str, str]]) -> dict[str, str]:
    endpoint, admin = stand_in
    sts = client("sts", endpoint, admin)
    return dict(sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/deploy", RoleSessionName="job")["Credentials"])


def _denied(call: Any, resource: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    assert f"on resource: {resource}" in error["Message"]


def test_a_grant_on_one_arn_allows_that_resource_and_no_other(stand_in: Any, deploy_role: dict[str, str]) -> None:
    ecs = client("ecs", stand_in[0], deploy_role)
    assert ecs.describe_services(cluster="payments", services=["api"])["failures"][0]["reason"] == "MISSING"
    _denied(lambda: ecs.describe_services(cluster="payments", services=["worker"]), f"{ECS}worker")


def test_a_traffic_shift_reads_exactly_the_alarms_it_was_granted(stand_in: Any, deploy_role: Any) -> None:
    """#29: the deploy role may DescribeAlarms on its strategy's alarms, each authorized by its own ARN."""
    cloudwatch = client("cloudwatch", stand_in[0], deploy_role)
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["api-errors"])["MetricAlarms"]
    assert alarm["AlarmName"] == "api-errors"
    _denied(lambda: cloudwatch.describe_alarms(AlarmNames=["api-errors", "billing-errors"]),
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:billing-errors")  # fmt: skip


def test_secrets_manager_suffix_patterns_match_the_secret_they_name(stand_in: Any, deploy_role: Any) -> None:
    secrets = client("secretsmanager", stand_in[0], deploy_role)
    assert secrets.get_secret_value(SecretId="pip-token")["SecretString"] == "s3cr3t"
    with pytest.raises(ClientError, match=r"secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:.*"
                                          r":secret:prod-db-\w{6}"):  # fmt: skip
        secrets.get_secret_value(SecretId="prod-db")


def test_an_explicit_deny_wins_over_an_allow(stand_in: Any, deploy_role: Any) -> None:
    lam = client("lambda", stand_in[0], deploy_role)
    assert lam.get_function(FunctionName="dev-api")["Configuration"]["FunctionName"] == "dev-api"
    _denied(lambda: lam.get_function(FunctionName="prod-api"), f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:prod-api")


def test_a_lambda_image_update_needs_the_pull_on_its_repository(stand_in: Any, deploy_role: Any) -> None:
    lam = client("lambda", stand_in[0], deploy_role)
    lam.update_function_code(FunctionName="dev-api", ImageUri=f"{REPOSITORY}@sha256:{'1' * 64}")
    other = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/payments/worker@sha256:{'1' * 64}"
    _denied(lambda: lam.update_function_code(FunctionName="dev-api", ImageUri=other),
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/payments/worker")  # fmt: skip


def test_registering_a_task_definition_passes_only_the_granted_role(stand_in: Any, deploy_role: Any) -> None:
    ecs = client("ecs", stand_in[0], deploy_role)

    def register(role: str) -> Any:
        return ecs.register_task_definition(family="api", taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                                            containerDefinitions=[{"name": "api", "image": REPOSITORY, "memory": 512}])  # fmt: skip

    assert register("api-task")["taskDefinition"]["family"] == "api"
    _denied(lambda: register("other-task"), f"arn:aws:iam::{ACCOUNT}:role/other-task")


def test_a_role_is_assumed_only_by_what_its_trust_policy_names(stand_in: Any, deploy_role: Any) -> None:
    sts = client("sts", stand_in[0], deploy_role)
    _denied(lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/api-task", RoleSessionName="hop"),
            f"arn:aws:iam::{ACCOUNT}:role/api-task")  # fmt: skip


def test_requests_without_valid_credentials_are_refused(stand_in: Any) -> None:
    with pytest.raises(ClientError, match=r"InvalidClientTokenId|security token"):
        client("ecs", stand_in[0], {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "x"}).list_clusters()


def test_a_workload_account_is_its_own_and_reached_through_its_organization_role(stand_in: Any) -> None:
    endpoint, admin = stand_in
    org = "arn:aws:iam::999988887777:role/OrganizationAccountAccessRole"
    there = dict(client("sts", endpoint, admin).assume_role(RoleArn=org, RoleSessionName="setup")["Credentials"])
    assert client("sts", endpoint, there).get_caller_identity()["Account"] == "999988887777"
    client("iam", endpoint, there).create_role(RoleName="made-there", AssumeRolePolicyDocument="{}")
    assert "made-there" not in [r["RoleName"] for r in client("iam", endpoint, admin).list_roles()["Roles"]]
