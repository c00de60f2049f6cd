"""Roles against IAM's per-account quota (issue #26): a team's pipelines in a stack share one pipeline role, one
build role and one deploy role per environment (infra.team_roles) -- roles grow with teams and environments, never
with services or actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.team_roles import TeamRoles, TeamRolesProps

ENV = {"account": "111111111111", "region": "eu-west-1"}
CONNECTION = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b5d4e2a-6f1c-4a8e-9d3b-2c7f1e8a9b40"


def test_a_teams_pipelines_share_a_pipeline_role_a_build_role_and_a_deploy_role_per_environment(
    synthesized: dict[str, Any],
) -> None:
    template = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    roles = template.find_resources("AWS::IAM::Role")
    paths = sorted(r["Properties"]["Path"] for r in roles.values())
    assert paths == [
        "/slipway/build/payments/", "/slipway/build/payments/stitch/", "/slipway/deploy/payments/dev/",
        "/slipway/deploy/payments/prod/", "/slipway/pipeline/payments/",
    ]  # fmt: skip
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    actions = [a for stage in pipeline["Properties"]["Stages"] for a in stage["Actions"]]
    assert not [a["Name"] for a in actions if "RoleArn" in a], "every action (Source too) acts as the pipeline role"
    # Nothing per project: no CDK statement naming one project's log group or report group.
    text = json.dumps(template.to_json()["Resources"])
    assert "report-group" not in text and "/aws/codebuild/slipway_payments_*" in text


def test_the_pipeline_role_starts_only_the_teams_projects(synthesized: dict[str, Any]) -> None:
    template = synthesized["templates"]["Slipway-Acme-Pipelines-search-1"]
    (role,) = template.find_resources("AWS::IAM::Role", {"Properties": {"Path": "/slipway/pipeline/search/"}})
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (start,) = [s for s in statements if "codebuild:StartBuild" in s["Action"]]
    assert json.dumps(start["Resource"]).endswith(':codebuild:eu-west-1:111111111111:project/slipway_search_*"]]}')
    (use,) = [s for s in statements if "codeconnections:UseConnection" in s["Action"]]
    assert use["Resource"] == CONNECTION


def test_one_eks_access_entry_per_cluster_for_a_shared_deploy_role() -> None:
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from pipeline.deployers.base import NamespaceAccess

    stack = Stack(App(), "Entries", env=Environment(**ENV))
    roles = _team_roles(stack, "search")
    role = roles.deploy()
    for cluster, namespace in (("search", "a"), ("search", "b"), ("other", "a"), ("search", "a")):
        roles.namespace_access(role, NamespaceAccess(cluster, namespace))
    entries = Template.from_stack(stack).find_resources("AWS::EKS::AccessEntry")
    scopes = {
        e["Properties"]["ClusterName"]: e["Properties"]["AccessPolicies"][0]["AccessScope"]["Namespaces"]
        for e in entries.values()
    }
    assert scopes == {"search": ["a", "b"], "other": ["a"]}
    assert isinstance(role, iam.Role)


@pytest.mark.parametrize(
    ("team", "connection", "message"),
    [
        ("pay_ments", CONNECTION, "TeamRoles: team: expected lowercase letters, digits and '-', got 'pay_ments'"),
        ("payments", "not-an-arn", "TeamRoles: connection_arn: expected a connection ARN, got 'not-an-arn'"),
    ],
)
def test_team_roles_name_the_bad_prop(team: str, connection: str, message: str) -> None:
    from aws_cdk import App, Environment, Stack

    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        _team_roles(Stack(App(), "Bad", env=Environment(**ENV)), team, connection)


def _team_roles(stack: Any, team: str, connection: str = CONNECTION) -> TeamRoles:
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

    from infra.jobs import JobSettings

    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Artifacts", encryption_key=key)
    return TeamRoles(stack, "Team", TeamRolesProps(team=team, connection_arn=connection,
                                                   jobs=JobSettings("slipway/runner:t@sha256:" + "0" * 64, key), artifact_bucket=bucket))  # fmt: skip
