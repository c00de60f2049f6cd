"""Slipway's own IAM evaluation in the replay (what moto cannot check): the evaluator's rules with an allowing and a
denying case each, and the deploy jobs of the synthesized app checked against their roles and repository policies."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline import assembly
from pipeline.local.replay import authorize
from pipeline.local.replay.policy import ALLOW, DENY, IMPLICIT_DENY, Request, evaluate

FUNCTION = "arn:aws:lambda:eu-west-1:111111111111:function:payments-api"
DEV_FUNCTION = "arn:aws:lambda:eu-west-1:222222222222:function:payments-api"
DEV_ROLE = "arn:aws:iam::222222222222:role/slipway-deploy-payments-api-dev"
REPO = "arn:aws:ecr:eu-west-1:111111111111:repository/payments/api"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_an_allow_on_the_resource_or_a_wildcard_allows_and_nothing_else_does() -> None:
    policy = doc(
        {"Effect": "Allow", "Action": ["lambda:UpdateAlias", "lambda:Get*"], "Resource": [FUNCTION, f"{FUNCTION}:*"]}
    )
    assert evaluate([policy], Request("lambda:UpdateAlias", f"{FUNCTION}:live")) == ALLOW
    assert evaluate([policy], Request("Lambda:GetFunction", FUNCTION)) == ALLOW  # actions are case-insensitive
    assert evaluate([policy], Request("lambda:UpdateAlias", FUNCTION.replace("payments-api", "other"))) == IMPLICIT_DENY
    assert evaluate([policy], Request("lambda:CreateAlias", FUNCTION)) == IMPLICIT_DENY


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    allow = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    deny = doc({"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"})
    assert evaluate([allow], Request("ecs:UpdateService", "arn:x")) == ALLOW
    assert evaluate([allow], Request("iam:PassRole", "arn:x")) == IMPLICIT_DENY
    assert evaluate([allow, deny], Request("ecs:UpdateService", "arn:x")) == DENY


def test_lambda_pulls_only_for_functions_the_condition_names() -> None:
    repository = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                      "Action": ["ecr:BatchGetImage"],
                      "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:eu-west-1:111111111111:function:*"}}})  # fmt: skip
    pull = Request("ecr:BatchGetImage", REPO, "service:lambda.amazonaws.com", {"aws:SourceArn": FUNCTION})
    assert evaluate([repository], pull, resource_policy=True) == ALLOW
    elsewhere = Request(
        pull.action, REPO, pull.principal, {"aws:sourceArn": FUNCTION.replace("111111111111", "9" * 12)}
    )
    assert evaluate([repository], elsewhere, resource_policy=True) == IMPLICIT_DENY
    assert evaluate([repository], Request(pull.action, REPO, pull.principal), resource_policy=True) == IMPLICIT_DENY
    other_service = Request(pull.action, REPO, "service:ecs-tasks.amazonaws.com", pull.context)
    assert evaluate([repository], other_service, resource_policy=True) == IMPLICIT_DENY


def test_only_the_teams_build_roles_may_push() -> None:
    repository = doc(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "ecr:PutImage"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "ecr:PutImage",
         "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/slipway/build/payments/*"}}},
    )  # fmt: skip
    build = "arn:aws:iam::111111111111:role/slipway/build/payments/Build"
    other = "arn:aws:iam::111111111111:role/slipway/build/search/Build"
    assert (
        evaluate([repository], Request("ecr:PutImage", REPO, build, {"aws:PrincipalArn": build}), resource_policy=True)
        == ALLOW
    )
    assert (
        evaluate([repository], Request("ecr:PutImage", REPO, other, {"aws:PrincipalArn": other}), resource_policy=True)
        == DENY
    )
    # A negated operator with the key absent holds: the deny applies.
    assert evaluate([repository], Request("ecr:PutImage", REPO, build), resource_policy=True) == DENY


@pytest.fixture(scope="module")
def deploys(synthesized: dict[str, Any]) -> tuple[authorize.Policies, list[assembly.Project]]:
    directory = Path(synthesized["assembly"].directory)
    projects = [
        project for pipeline in assembly.load(directory) for project in pipeline.projects.values()
        if "slipway deploy" in str(project.buildspec)
    ]  # fmt: skip
    return authorize.collect(directory), projects


def variables(project: assembly.Project) -> dict[str, str]:
    return {v.name: v.value for v in project.variables if v.type == "PLAINTEXT"}


def test_every_deploy_job_of_the_app_may_do_what_its_deployer_needs(deploys: Any) -> None:
    policies, projects = deploys
    assert len(projects) == 6  # lambda and ecs for payments in dev and prod, ecs and eks for search
    assert {p.name: authorize.deploy_problems(policies, p, variables(p)) for p in projects} == {
        p.name: [] for p in projects
    }


def test_a_grant_missing_from_the_role_is_access_denied(deploys: Any) -> None:
    """An environment's deploy acts as its workload role: that role's policies are what must allow it."""
    policies, projects = deploys
    lambda_job = next(
        p for p in projects if "deploy lambda" in str(p.buildspec) and "--environment dev" in str(p.buildspec)
    )
    narrowed = copy.deepcopy(policies)
    for document in narrowed.roles[DEV_ROLE]:
        for statement in document["Statement"]:
            actions = statement.get("Action")
            if isinstance(actions, list) and "lambda:CreateAlias" in actions:
                actions.remove("lambda:CreateAlias")
    problems = authorize.deploy_problems(narrowed, lambda_job, variables(lambda_job))
    assert problems == [f"AccessDenied: {DEV_ROLE} is not authorized to perform lambda:CreateAlias on "
                        f"{resource} (ImplicitDeny by the synthesized policies)"
                        for resource in (DEV_FUNCTION, f"{DEV_FUNCTION}:*")]  # fmt: skip


def test_a_repository_policy_without_the_lambda_pull_is_access_denied(deploys: Any) -> None:
    policies, projects = deploys
    lambda_job = next(
        p for p in projects if "deploy lambda" in str(p.buildspec) and "--environment dev" in str(p.buildspec)
    )
    narrowed = copy.deepcopy(policies)
    narrowed.repositories["payments/api"]["Statement"] = [
        s for s in narrowed.repositories["payments/api"]["Statement"] if s.get("Sid") != "LambdaPull"
    ]
    assert authorize.deploy_problems(narrowed, lambda_job, variables(lambda_job)) == [
        f"AccessDenied: the policy of repository payments/api does not let lambda.amazonaws.com pull for {DEV_FUNCTION}"
    ]
