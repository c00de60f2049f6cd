"""Which IAM requests the AWS stand-in authorizes for one API call (pipeline.local.iam_enforcement)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.local.iam_enforcement import denied, documents, parameters, requests_for
from pipeline.local.replay.policy import Request

PLACE = {"region": "eu-west-1", "account": "111122223333"}
ARN = "arn:aws:{}:eu-west-1:111122223333:"


def _resources(action: str, path: str = "/", resource: str = "*", **params: Any) -> list[tuple[str, str]]:
    found = requests_for(action, resource, path=path, params=params, secret_arn=lambda n: f"{n}-AbCdEf", **PLACE)
    return [(r.action, r.resource) for r in found]


@pytest.mark.parametrize(
    ("action", "path", "params", "expected"),
    [
        ("ecr:GetAuthorizationToken", "/", {}, [("ecr:GetAuthorizationToken", "*")]),
        ("ecr:DescribeImages", "/", {"repositoryName": "payments/api"},
         [("ecr:DescribeImages", ARN.format("ecr") + "repository/payments/api")]),
        ("lambda:GetFunction", "/2015-03-31/functions/payments-api", {},
         [("lambda:GetFunction", ARN.format("lambda") + "function:payments-api")]),
        ("lambda:InvokeFunction", "/2015-03-31/functions/payments-api/invocations", {"Qualifier": "7"},
         [("lambda:InvokeFunction", ARN.format("lambda") + "function:payments-api:7")]),
        # moto names the action after the operation (Invoke); IAM knows it as InvokeFunction.
        ("lambda:Invoke", "/2015-03-31/functions/payments-api/invocations", {"Qualifier": "7"},
         [("lambda:InvokeFunction", ARN.format("lambda") + "function:payments-api:7")]),
        ("lambda:GetAlias", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A9%3Afunction%3Ax/aliases/live", {},
         [("lambda:GetAlias", "arn:aws:lambda:eu-west-1:9:function:x")]),
        ("lambda:ListFunctions", "/2015-03-31/functions/", {}, [("lambda:ListFunctions", "*")]),
        ("lambda:TagResource", "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aeu-west-1%3A111122223333%3Afunction%3Apayments-api",
         {}, [("lambda:TagResource", ARN.format("lambda") + "function:payments-api")]),
        ("ecs:UpdateService", "/", {"cluster": "payments", "service": "api"},
         [("ecs:UpdateService", ARN.format("ecs") + "service/payments/api")]),
        ("ecs:DescribeServices", "/", {"cluster": "arn:aws:ecs:eu-west-1:1:cluster/payments", "services": ["a", "b"]},
         [("ecs:DescribeServices", ARN.format("ecs") + "service/payments/a"),
          ("ecs:DescribeServices", ARN.format("ecs") + "service/payments/b")]),
        ("ecs:DescribeTaskDefinition", "/", {"taskDefinition": "api:3"}, [("ecs:DescribeTaskDefinition", "*")]),
        ("secretsmanager:GetSecretValue", "/", {"SecretId": "pip-token"},
         [("secretsmanager:GetSecretValue", "pip-token-AbCdEf")]),
        ("secretsmanager:GetSecretValue", "/", {"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:x-123456"},
         [("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:1:secret:x-123456")]),
        ("sts:AssumeRole", "/", {"RoleArn": "arn:aws:iam::1:role/deploy"}, [("sts:AssumeRole", "arn:aws:iam::1:role/deploy")]),
        ("eks:DescribeCluster", "/clusters/platform", {}, [("eks:DescribeCluster", ARN.format("eks") + "cluster/platform")]),
        ("iam:CreateRole", "/", {"RoleName": "x"}, [("iam:CreateRole", "*")]),
        ("sns:Publish", "/", {"TopicArn": "arn:aws:sns:eu-west-1:1:slipway-payments"},
         [("sns:Publish", "arn:aws:sns:eu-west-1:1:slipway-payments")]),
        ("ecs:TagResource", "/", {"resourceArn": ARN.format("ecs") + "service/payments/api"},
         [("ecs:TagResource", ARN.format("ecs") + "service/payments/api")]),
        # a traffic shift's bakes (#29): botocore speaks JSON to CloudWatch here, the names in the body
        ("cloudwatch:DescribeAlarms", "/", {"AlarmNames": ["a", "b"]},
         [("cloudwatch:DescribeAlarms", ARN.format("cloudwatch") + "alarm:a"),
          ("cloudwatch:DescribeAlarms", ARN.format("cloudwatch") + "alarm:b")]),
        ("cloudwatch:DescribeAlarms", "/", {}, [("cloudwatch:DescribeAlarms", "*")]),
        # moto names CloudWatch's actions after its endpoint (monitoring); IAM after the service
        ("monitoring:DescribeAlarms", "/", {"AlarmNames": ["a"]},
         [("cloudwatch:DescribeAlarms", ARN.format("cloudwatch") + "alarm:a")]),
    ],
)  # fmt: skip
def test_each_call_is_authorized_on_the_resource_it_names(action: str, path: str, params: Any, expected: Any) -> None:
    assert _resources(action, path, **params) == expected


@pytest.mark.parametrize(
    ("key", "alias"),
    [(ARN.format("kms") + "alias/slipway-acme-releases", "alias/slipway-acme-releases"),
     ("alias/slipway-acme-releases", "alias/slipway-acme-releases"), ("1234abcd", "")],
)  # fmt: skip
def test_a_kms_call_is_authorized_on_the_key_with_the_alias_it_named(key: str, alias: str) -> None:
    """KMS authorizes on the key itself; a request naming the key by an alias carries it as ``kms:RequestAlias``."""
    [found] = requests_for("kms:Sign", "*", path="/", params={"KeyId": key}, kms_key=lambda k: "KEY-ARN", **PLACE)
    assert (found.resource, dict(found.context)) == ("KEY-ARN", {"kms:RequestAlias": alias} if alias else {})


def test_a_resource_the_stand_in_already_knows_is_used_as_it_is() -> None:
    assert _resources("s3:GetObject", resource="arn:aws:s3:::assets/tools.zip") == [
        ("s3:GetObject", "arn:aws:s3:::assets/tools.zip")
    ]


def test_a_lambda_image_update_also_needs_the_pull_from_the_image_repository() -> None:
    image = "999988887777.dkr.ecr.us-east-1.amazonaws.com/payments/api@sha256:" + "1" * 64
    assert _resources("lambda:UpdateFunctionCode", "/2015-03-31/functions/f/code", ImageUri=image)[1:] == [
        ("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:999988887777:repository/payments/api"),
        ("ecr:GetDownloadUrlForLayer", "arn:aws:ecr:us-east-1:999988887777:repository/payments/api"),
    ]
    created = _resources("lambda:CreateFunction", "/2015-03-31/functions/f", Code={"ImageUri": image})
    assert [action for action, _ in created] == [
        "lambda:CreateFunction",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]


def test_registering_a_task_definition_implies_tagging_it_and_passing_its_roles() -> None:
    wanted = requests_for(
        "ecs:RegisterTaskDefinition", "*", path="/", secret_arn=None, **PLACE,
        params={"family": "api", "tags": [{"key": "k", "value": "v"}], "taskRoleArn": "arn:aws:iam::1:role/t",
                "executionRoleArn": "arn:aws:iam::1:role/e"},
    )  # fmt: skip
    assert wanted == [
        Request("ecs:RegisterTaskDefinition", "*"),
        Request("ecs:TagResource", ARN.format("ecs") + "task-definition/api",
                context={"ecs:CreateAction": "RegisterTaskDefinition"}),
        Request("iam:PassRole", "arn:aws:iam::1:role/t", context={"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
        Request("iam:PassRole", "arn:aws:iam::1:role/e", context={"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
    ]  # fmt: skip
    untagged = requests_for("ecs:RegisterTaskDefinition", "*", path="/", params={"family": "api"}, **PLACE)
    assert untagged == [Request("ecs:RegisterTaskDefinition", "*")]


def test_parameters_come_from_the_json_body_the_form_and_the_query() -> None:
    found = parameters({"Action": ["AssumeRole"], "RoleArn": ["arn:r"]}, b'{"cluster": "c"}', "/x?Qualifier=3")
    assert found == {"Action": "AssumeRole", "RoleArn": "arn:r", "cluster": "c", "Qualifier": "3"}
    assert parameters({}, b"{not json", "/") == {}


class _Version:
    def __init__(self, document: str, default: bool) -> None:
        self.document, self.is_default = document, default


class _Managed:
    def __init__(self, *versions: _Version) -> None:
        self.versions = versions


def test_moto_policies_of_every_shape_are_read_and_the_first_refused_request_is_named() -> None:
    allow = {"Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}
    deny = {"Statement": [{"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"}]}
    managed = _Managed(_Version(json.dumps(deny), False), _Version(json.dumps(allow), True))
    assert documents([json.dumps(allow), {"policy_document": json.dumps(deny)}, managed]) == [allow, deny, allow]
    wanted = [Request("ecs:DescribeServices", "*"), Request("ecs:UpdateService", "*"), Request("s3:GetObject", "*")]
    assert denied([json.dumps(allow)], wanted) == wanted[2]
    assert denied([json.dumps(allow), {"policy_document": json.dumps(deny)}], wanted) == wanted[1]
    assert denied([managed], wanted[:2]) is None
