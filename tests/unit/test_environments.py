"""Environments: one release promoted through workload accounts -- config, pipeline shape, workload roles, policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.blueprint import blueprint
from pipeline import config
from pipeline.naming import workload_role_name
from tests.conftest import EXAMPLE
from tests.fakes import aws_out_of_reach
from tests.unit.test_config import problems
from tests.unit.test_service_pipeline import projects, projects_all, role_statements

PAYMENTS = "Slipway-Acme-Pipelines-payments-1"
DEV, PROD = "222222222222", "555555555555"


def _api(raw: dict[str, Any]) -> dict[str, Any]:
    return dict(raw["teams"][0]["services"][0])


def test_the_example_promotes_payments_api_from_dev_to_prod_with_an_approval() -> None:
    loaded = config.load(EXAMPLE)
    team, api = loaded.find_service("payments/api")
    assert [(e.name, e.account, e.approval) for e in api.environments] == [("dev", DEV, False), ("prod", PROD, True)]
    assert api.deploy.targets() == ()
    stages = blueprint(team, api, "payments/api", "eu-west-1").stages
    assert [(s.name, s.approval, [d.kind for d in s.steps]) for s in stages] == [
        ("Deploy-dev", False, ["lambda", "ecs"]),
        ("Deploy-prod", True, ["lambda", "ecs"]),
    ]
    assert [(s.name, {d.region for d in s.steps}) for s in stages] == [
        ("Deploy-dev", {"eu-west-1"}), ("Deploy-prod", {"eu-central-1"})  # prod runs the replica there
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda api: api["environments"][1].update(account="999999999999"),
         "teams[0].services[0].environments[1].account: '999999999999' is not one of the team's workload_accounts "
         "(222222222222, 555555555555)"),
        (lambda api: api["environments"][1].update(name="dev"),
         "teams[0].services[0].environments[1].name: duplicate environment name 'dev'"),
        (lambda api: [api["environments"][0].pop(k) for k in ("lambda", "ecs")],
         "teams[0].services[0].environments[0]: expected at least one deploy target (lambda, ecs or eks)"),
        (lambda api: api.update(deploy={"eks": {"cluster": "c", "namespace": "n", "deployment": "d",
                                                "container": "c"}}),
         "teams[0].services[0].deploy: a service with environments deploys only through them; move its targets into "
         "an environment"),
        (lambda api: api.update(deploy={"approval": True}),
         "teams[0].services[0].deploy.approval: set approval on the environment it precedes instead"),
        (lambda api: api.update(platforms=["linux/amd64"]),
         "teams[0].services[0].environments[0].lambda.architecture: 'arm64' needs platform 'linux/arm64', which the "
         "service does not build (platforms: ['linux/amd64'])"),
        (lambda api: api["environments"][0].update(name="Dev"),
         "teams[0].services[0].environments[0].name: expected a lowercase name of 2-40 letters, digits and '-', got "
         "'Dev'"),
    ],
)  # fmt: skip
def test_bad_environments_are_named_by_file_and_field(example_raw: dict[str, Any], change: Any, expected: str) -> None:
    api = example_raw["teams"][0]["services"][0]
    change(api)
    assert expected in problems(example_raw)


def test_one_function_in_one_account_has_one_owner_and_another_account_is_another_place(
    example_raw: dict[str, Any],
) -> None:
    api = example_raw["teams"][0]["services"][0]
    api["environments"][1]["account"] = DEV  # prod's function is now dev's function
    api["environments"][1]["region"] = ""  # ... in dev's region (in another, it is another place)
    assert problems(example_raw) == [
        "teams[0].services[0].environments[1].ecs.service: ECS service payments/api in account 222222222222 is "
        "already the target of payments/api (dev)",
        "teams[0].services[0].environments[1].lambda.function_name: Lambda function 'payments-api' in account "
        "222222222222 is already the target of payments/api (dev)",
    ]


def test_a_workload_role_name_fits_iam_and_stays_stable() -> None:
    assert workload_role_name("payments", "api", "prod") == "slipway-deploy-payments-api-prod"
    long = workload_role_name("t" * 40, "s" * 40, "e" * 40)
    assert len(long) == 64 and long == workload_role_name("t" * 40, "s" * 40, "e" * 40)
    assert long != workload_role_name("t" * 40, "s" * 40, "e" * 39 + "f")


# The synthesized shape.


@pytest.fixture(scope="module")
def payments(synthesized: dict[str, Any]) -> Template:
    return synthesized["templates"][PAYMENTS]


def _pipeline(template: Template, name: str) -> dict[str, Any]:
    for resource in template.find_resources("AWS::CodePipeline::Pipeline").values():
        if resource["Properties"]["Name"] == name:
            return dict(resource["Properties"])
    raise AssertionError(name)


def _sequential_codebuild_actions(pipeline: dict[str, Any]) -> int:
    """What a push waits for in runner start-ups: per stage, one per run order that holds a CodeBuild action."""
    total = 0
    for stage in pipeline["Stages"]:
        orders = {a.get("RunOrder", 1) for a in stage["Actions"] if a["ActionTypeId"]["Provider"] == "CodeBuild"}
        total += len(orders)
    return total


def test_a_push_waits_for_at_most_two_plus_one_codebuild_action_per_environment(payments: Template) -> None:
    pipeline = _pipeline(payments, "slipway-payments-api")
    stages = [(s["Name"], sorted(a["Name"] for a in s["Actions"])) for s in pipeline["Stages"]]
    assert stages == [
        ("Source", ["Source"]),
        ("Build", ["Build-amd64", "Build-arm64", "Lint"]),
        ("Stitch", ["Stitch"]),
        ("Deploy-dev", ["Deploy-ecs", "Deploy-lambda"]),
        ("Deploy-prod", ["Approve", "Deploy-ecs", "Deploy-lambda"]),
    ]
    assert _sequential_codebuild_actions(pipeline) == 2 + 2


def test_every_environment_deploys_the_one_stitched_image_as_its_workload_role(payments: Template) -> None:
    pipeline = _pipeline(payments, "slipway-payments-api")
    inputs = {
        a["Name"]: a["InputArtifacts"] for s in pipeline["Stages"][3:] for a in s["Actions"] if "Deploy-" in a["Name"]
    }
    assert inputs and all(i == [{"Name": "image"}] for i in inputs.values())
    commands = [
        json.loads(p["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
        for p in payments.find_resources("AWS::CodeBuild::Project").values()
    ]
    for environment, account, region in (("dev", DEV, "eu-west-1"), ("prod", PROD, "eu-central-1")):
        role = f"arn:aws:iam::{account}:role/slipway-deploy-payments-api-{environment}"
        deploys = [c for c in commands if f"--environment {environment} " in c]
        assert len(deploys) == 2, commands
        assert all(c.startswith(f"slipway deploy {c.split()[2]} --image-json image.json --environment {environment} "
                                f"--role-arn {role} --region {region} ") for c in deploys)  # fmt: skip
        assert all(c.endswith(f"--out deployed-{environment}-{c.split()[2]}.json") for c in deploys)


def test_an_environments_deploy_job_may_only_read_the_release_and_assume_its_workload_role(
    payments: Template,
) -> None:
    roles = payments.find_resources("AWS::IAM::Role", {"Properties": {"Path": "/slipway/deploy/payments/prod/"}})
    assert len(roles) == 1  # the team's prod deploy role: lambda and ecs jobs alike
    statements = [
        s
        for policy in payments.find_resources("AWS::IAM::Policy").values()
        if any(r.get("Ref") in roles for r in policy["Properties"]["Roles"])
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith(("lambda:", "ecs:", "iam:"))}
    assume = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert {json.dumps(s["Resource"]) for s in assume} == {
        json.dumps(f"arn:aws:iam::{PROD}:role/slipway-deploy-payments-api-prod")
    }


@pytest.mark.parametrize(
    ("account", "environment", "region"), [(DEV, "dev", "eu-west-1"), (PROD, "prod", "eu-central-1")]
)
def test_the_workload_stack_trusts_only_that_environments_deploy_jobs(
    synthesized: dict[str, Any], account: str, environment: str, region: str
) -> None:
    workload = synthesized["templates"][f"Slipway-Acme-Workload-{account}-{region}"]
    # One deploy role; dev, which prod's entry condition reads, also has its gate role (test_stage_gates.py).
    workload.resource_count_is("AWS::IAM::Role", 2 if environment == "dev" else 1)
    principal = f":iam::111111111111:role/slipway/deploy/payments/{environment}/*"
    workload.has_resource_properties("AWS::IAM::Role", {
        "RoleName": f"slipway-deploy-payments-api-{environment}",
        "AssumeRolePolicyDocument": {"Statement": [{
            "Action": "sts:AssumeRole", "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:root"]]}},
            "Condition": {"ArnLike": {"aws:PrincipalArn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                                               principal]]}}},
        }]},
    })  # fmt: skip
    text = json.dumps(workload.to_json())
    assert f":lambda:{region}:{account}:function:payments-api" in text
    assert f":ecs:{region}:{account}:service/payments/api" in text
    # The release, read from the platform's registry in the environment's region (prod: the replica there).
    assert f":ecr:{region}:111111111111:repository/payments/api" in text
    assert ":ecr:" not in text.replace(f":ecr:{region}:", "")
    workload.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "iam:PassRole", "Resource": Match.array_with([
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:role/payments-api-task"]]}])}),
    ])}})  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "region", "account"),
    [("Slipway-Acme-Registry-payments-1", "eu-west-1", DEV),
     ("Slipway-Acme-Replicas-eu-central-1-payments-1", "eu-central-1", PROD)],
)  # fmt: skip
def test_each_region_lets_exactly_its_environments_accounts_and_functions_pull(
    synthesized: dict[str, Any], stack: str, region: str, account: str
) -> None:
    """The platform's repository: dev's account and function (eu-west-1); its replica in eu-central-1: prod's."""
    registry = synthesized["templates"][stack]
    repositories = registry.find_resources("AWS::ECR::Repository", {"Properties": {"RepositoryName": "payments/api"}})
    [repository] = repositories.values()
    statements = {s["Sid"]: s for s in repository["Properties"]["RepositoryPolicyText"]["Statement"]}
    assert json.dumps(statements["WorkloadAccountsPull"]["Principal"]) == json.dumps(
        {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}}
    )
    function = f"arn:aws:lambda:{region}:{account}:function:payments-api"
    assert statements["LambdaPull"]["Condition"] == {"ArnLike": {"aws:sourceArn": [function, f"{function}:*"]}}


def test_a_deploy_whose_workload_role_cannot_be_assumed_stops_before_anything_changes(tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    from pipeline.deployers.base import DeployError
    from pipeline.deployers.workload import assume

    class Sts:
        def assume_role(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not trusted"}}, "AssumeRole")

    role = f"arn:aws:iam::{PROD}:role/slipway-deploy-payments-api-prod"
    with pytest.raises(DeployError) as raised:
        assume(role, "prod", "eu-west-1", sts=Sts())
    assert str(raised.value) == (
        f"environment prod (account {PROD}): cannot assume {role} (AccessDenied: not trusted); deploy the workload "
        "stack into that account first (README: environments); nothing was deployed"
    )


@pytest.fixture(scope="module")
def dev(synthesized: dict[str, Any]) -> Template:
    """The dev account's workload stack: what payments/api's dev deploys may do there."""
    return synthesized["templates"]["Slipway-Acme-Workload-222222222222-eu-west-1"]


def workload_statements(template: Template) -> list[dict[str, Any]]:
    return [s for p in template.find_resources("AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip


def test_lambda_deploy_is_scoped_to_the_function(dev: Template) -> None:
    statements = [s for s in workload_statements(dev) if "lambda:PublishVersion" in s["Action"]]
    assert len(statements) == 1
    resources = [
        "".join(str(part) for part in r["Fn::Join"][1] if isinstance(part, str)) for r in statements[0]["Resource"]
    ]
    assert resources == [
        "arn::lambda:eu-west-1:222222222222:function:payments-api",
        "arn::lambda:eu-west-1:222222222222:function:payments-api:*",
    ]


def test_lambda_deploy_may_create_the_alias_it_moves(dev: Template) -> None:
    statements = workload_statements(dev)
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert {"lambda:CreateAlias", "lambda:UpdateAlias", "lambda:PublishVersion"} <= set(actions)


def test_ecs_deploy_may_pass_only_the_tasks_own_roles(dev: Template, synthesized: dict[str, Any]) -> None:
    """PassRole on role/* with an ecs-tasks condition would let a deploy attach any role to the service."""
    [statement] = [s for s in workload_statements(dev) if s["Action"] == "iam:PassRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert [r["Fn::Join"][1][-1] for r in statement["Resource"]] == [
        ":iam::222222222222:role/payments-api-task",
        ":iam::222222222222:role/payments-api-execution",
    ]
    search = synthesized["templates"]["Slipway-Acme-Pipelines-search-1"]
    [platform] = [s for s in role_statements(search, "slipway deploy ecs") if s["Action"] == "iam:PassRole"]
    resources = platform["Resource"] if isinstance(platform["Resource"], list) else [platform["Resource"]]
    assert [r["Fn::Join"][1][-1] for r in resources] == [":iam::111111111111:role/search-indexer-execution"]


def test_the_deploy_session_carries_the_workload_roles_credentials_and_region_not_the_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3's default session caches the job's credentials on first use: clients made from it afterwards act in the
    platform account whatever the environment says. The deploy's clients come from an explicit session instead."""
    import boto3

    from pipeline.deployers.workload import SESSION, account_of, environment_of, session

    asked: list[dict[str, str]] = []

    class Sts:
        def assume_role(self, **kwargs: str) -> Any:
            asked.append(kwargs)
            return {"Credentials": {"AccessKeyId": "AKIA-DEV", "SecretAccessKey": "secret", "SessionToken": "token"}}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-JOB")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "job-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    boto3.client("sts")  # the default session now holds the job's credentials, as in a CodeBuild job
    role = f"arn:aws:iam::{DEV}:role/slipway-deploy-payments-api-dev"
    acting = session(role, "dev", "eu-central-1", sts=Sts())
    assert asked == [{"RoleArn": role, "RoleSessionName": SESSION}]
    lam = acting.client("lambda")
    keys = lam._request_signer._credentials.get_frozen_credentials()
    assert (keys.access_key, keys.token, lam.meta.region_name) == ("AKIA-DEV", "token", "eu-central-1")
    assert environment_of(acting) == {"AWS_ACCESS_KEY_ID": "AKIA-DEV", "AWS_SECRET_ACCESS_KEY": "secret",
                                      "AWS_SESSION_TOKEN": "token", "AWS_REGION": "eu-central-1",
                                      "AWS_DEFAULT_REGION": "eu-central-1"}  # fmt: skip
    assert session(role, "dev", "", sts=Sts()).region_name == "eu-west-1"  # no region named: the job's own
    own = session("", "", "")  # no environment: the job's own credentials, never an assumed role
    assert own.get_credentials().get_frozen_credentials().access_key == "AKIA-JOB" and len(asked) == 2
    assert (account_of(role), account_of(""), account_of("not-an-arn")) == (DEV, "", "")


def test_acting_as_gives_the_process_environment_back_whatever_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from pipeline.deployers.workload import acting_as

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-JOB")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with acting_as({"AWS_ACCESS_KEY_ID": "AKIA-DEV", "AWS_SESSION_TOKEN": "token"}):
        assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SESSION_TOKEN"]) == ("AKIA-DEV", "token")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIA-JOB" and "AWS_SESSION_TOKEN" not in os.environ
    with pytest.raises(RuntimeError), acting_as({"AWS_ACCESS_KEY_ID": "AKIA-DEV"}):
        raise RuntimeError("the deploy failed")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIA-JOB"  # given back whatever happened inside


def test_a_failure_to_reach_sts_at_all_is_the_same_clear_preflight_error() -> None:
    from botocore.exceptions import EndpointConnectionError

    from pipeline.deployers.base import DeployError
    from pipeline.deployers.workload import assume

    class Offline:
        def assume_role(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")

    with pytest.raises(DeployError, match=r"^environment \? \(account \?\): cannot assume role \(Could not connect to "
                                          r"the endpoint URL: \"https://sts.amazonaws.com\"\); deploy the workload"):  # fmt: skip
        assume("role", "", "", sts=Offline())


def test_without_an_injected_client_the_preflight_asks_sts_where_the_job_points_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.deployers.base import DeployError
    from pipeline.deployers.workload import assume

    aws_out_of_reach(monkeypatch, "STS")
    role = f"arn:aws:iam::{PROD}:role/slipway-deploy"
    with pytest.raises(DeployError, match=rf"cannot assume {role} \(Could not connect to the endpoint URL: "
                                          r'"http://127.0.0.1:9/"\)'):  # fmt: skip
        assume(role, "prod", "eu-west-1")


def test_a_service_release_is_its_commit_and_its_bases_and_a_base_rebuild_counts_up(
    payments: Template, synthesized: dict[str, Any]
) -> None:
    """Same commit + same pinned bases -> same tag (stitch still refuses other bytes under it); the same commit on
    newer bases is another release, not a collision."""
    from pipeline.commands.stitch import release_tag

    assert release_tag("c0ffee", "") == "c0ffee"
    x, y = (f'{{"BASE_DEBIAN": "team/bases/debian:c1@sha256:{d * 64}"}}' for d in "ab")
    assert release_tag("c0ffee", x) == release_tag("c0ffee", x)
    assert release_tag("c0ffee", x) != release_tag("c0ffee", y)
    assert len(release_tag("c0ffee", "{}")) == len("c0ffee-") + 8
    stitch = projects(payments)["slipway stitch"]
    command = json.loads(stitch["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
    assert command.endswith(" --bases-from-builds --out image.json") and "--rebuilds" not in command
    assert "SLIPWAY_BASE_LOCK" not in [v["Name"] for v in stitch["Environment"]["EnvironmentVariables"]]
    bases = synthesized["templates"]["Slipway-Acme-Bases-payments-1"]
    for props in projects_all(bases):
        spec = json.loads(props["Source"]["BuildSpec"])["phases"]["build"]["commands"][0]
        if spec.startswith("slipway stitch"):
            assert spec.endswith(" --rebuilds --out image.json"), spec
