"""The CloudFormation stand-in (issue #25, item 1): it deploys as the CDK CLI does -- through each account's bootstrap
deploy role, assumed with the caller's own credentials -- so a deploy job whose role may not assume it is refused
and nothing is deployed; a created pipeline starts (as CodePipeline starts one it creates), an updated one does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import platform_deploy
from pipeline.config import load
from pipeline.local import aws, services
from pipeline.local.cloudformation_standin import StandInCloudFormation
from pipeline.local.lifecycle import ADMIN, create_admin
from pipeline.platform_deploy import bootstrap_role
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.integration
PLATFORM = "111111111111"
WORKLOAD = ("222222222222", "555555555555")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    state: Path = tmp_path_factory.mktemp("cloudformation")
    port = services.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with services.running(services.moto_service(state, port, enforce_iam=True)):
        admin = create_admin(endpoint, PLATFORM)
        yield endpoint, admin, state


def acting(monkeypatch: pytest.MonkeyPatch, endpoint: str, keys: dict[str, str]) -> None:
    """This process calls the stand-in with ``keys``, as a job's shell does with its role's."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", keys.get("SessionToken", ""))


def job_role(endpoint: str, admin: dict[str, str], name: str, accounts: tuple[str, ...]) -> dict[str, str]:
    """A job's session: a role trusting the admin (who plays CodeBuild), allowed to assume the deploy roles of
    ``accounts`` only."""
    iam = aws.client("iam", endpoint, admin)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{PLATFORM}:user/{ADMIN}"}}]}  # fmt: skip
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    places = platform_deploy.environments(load(EXAMPLE))  # prod and its replica are in eu-central-1
    allowed = [bootstrap_role("deploy", account, region) for account, region in places if account in accounts]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": allowed}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="deploy", PolicyDocument=json.dumps(policy))
    arn = f"arn:aws:iam::{PLATFORM}:role/{name}"
    return dict(aws.client("sts", endpoint, admin).assume_role(RoleArn=arn, RoleSessionName="job")["Credentials"])


def deploying(
    stand_in: tuple[str, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch, role: str, accounts: tuple[str, ...]
) -> StandInCloudFormation:
    """The platform bootstrapped, and this process acting as a deploy job whose role may assume the deploy roles of
    ``accounts``."""
    endpoint, admin, state = stand_in
    acting(monkeypatch, endpoint, admin)
    aws.bootstrap(load(EXAMPLE), endpoint)
    acting(monkeypatch, endpoint, job_role(endpoint, admin, role, accounts))
    return StandInCloudFormation(state / role, endpoint, f"arn:aws:iam::{PLATFORM}:user/{ADMIN}", PLATFORM)


def executions(endpoint: str, admin: dict[str, str]) -> dict[str, int]:
    codepipeline = aws.client("codepipeline", endpoint, admin)
    names = [p["name"] for p in codepipeline.list_pipelines()["pipelines"]]
    return {n: len(codepipeline.list_pipeline_executions(pipelineName=n)["pipelineExecutionSummaries"]) for n in names}


def test_a_job_that_may_not_assume_a_deploy_role_deploys_nothing(
    stand_in: tuple[str, dict[str, str], Path], synthesized: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, admin, _ = stand_in
    standin = deploying(stand_in, monkeypatch, "platform-only", (PLATFORM,))
    with pytest.raises(ClientError, match="AccessDenied"):
        standin.deploy(Path(synthesized["assembly"].directory))
    assert not standin.location.exists()
    assert executions(endpoint, admin) == {}
    roles = aws.client("iam", endpoint, admin).list_roles(PathPrefix="/slipway/")["Roles"]
    assert roles == []  # every deploy role is assumed before anything changes: nothing is half-deployed


def test_a_deploy_creates_and_starts_each_pipeline_once_and_an_update_starts_none(
    stand_in: tuple[str, dict[str, str], Path], synthesized: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, admin, _ = stand_in
    standin = deploying(stand_in, monkeypatch, "platform-deploy", (PLATFORM, *WORKLOAD))
    source = Path(synthesized["assembly"].directory)
    standin.deploy(source)
    created = executions(endpoint, admin)
    assert {"slipway-platform", "slipway-payments-api", "slipway-search-indexer"} <= set(created)
    assert set(created.values()) == {1}
    assert (standin.location / "manifest.json").read_bytes() == (source / "manifest.json").read_bytes()
    roles = aws.client("iam", endpoint, aws.organization_credentials(endpoint, WORKLOAD[0], admin)).list_roles()
    assert "slipway-deploy-payments-api-dev" in {r["RoleName"] for r in roles["Roles"]}  # in the workload account
    standin.deploy(source)
    assert executions(endpoint, admin) == created
