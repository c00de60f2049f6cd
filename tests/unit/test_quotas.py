"""Quota checks (issue #26): what the platform's stacks create in its account, counted from the assembly, against
the applied quotas -- IAM's account summary and Service Quotas through moto (moto's Service Quotas knows only VPC
quotas: every other read answers NoSuchResource, which is the documented-default fallback), botocore's Stubber for an
applied value moto cannot hold."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipeline import preflight, quotas
from pipeline.commands.preflight import run
from tests.conftest import EXAMPLE

PLATFORM = "111111111111"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield {name: boto3.client(name, region_name="eu-west-1") for name in ("iam", "service-quotas")}


def test_the_footprint_is_the_platform_accounts_stacks_and_what_they_hold(synthesized: dict[str, Any]) -> None:
    needs = quotas.footprint(Path(synthesized["assembly"].directory), PLATFORM)
    platform = [t for n, t in synthesized["templates"].items() if "-Workload-" not in n]
    assert needs[quotas.STACK] == len(platform) == len(synthesized["templates"]) - 2
    assert needs["AWS::IAM::Role"] == sum(len(t.find_resources("AWS::IAM::Role")) for t in platform)
    assert needs["AWS::CodePipeline::Pipeline"] == 1 + 2 + 5  # the platform's, two services, five bases


def test_roles_count_what_others_hold_and_not_the_platforms_own(clients: dict[str, Any]) -> None:
    iam = clients["iam"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    for i in range(3):
        iam.create_role(RoleName=f"theirs-{i}", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="ours", Path="/slipway/build/payments/", AssumeRolePolicyDocument=trust)
    [found] = quotas.check((quotas.IAM_ROLES,), Counter({"AWS::IAM::Role": 997}), clients.__getitem__, "/slipway/")
    assert (found.needed, found.in_use, found.applied, found.source, found.fits) == (997, 3, 1000, "applied", True)
    [over] = quotas.check((quotas.IAM_ROLES,), Counter({"AWS::IAM::Role": 998}), clients.__getitem__, "/slipway/")
    assert not over.fits
    check = preflight.quota(over)
    assert check.name == "quota IAM roles per account" and not check.ok
    assert (
        check.detail == "needs 998 + 3 in use > 1000 (applied): raise this quota, or split the platform over accounts"
    )


def test_an_unreadable_quota_falls_back_to_its_documented_default(clients: dict[str, Any]) -> None:
    stacks = next(q for q in quotas.QUOTAS if q.quota_code == "L-0485CB21")
    [found] = quotas.check((stacks,), Counter({quotas.STACK: 12}), clients.__getitem__, "/slipway/")
    assert (found.applied, found.fits) == (2_000, True)
    assert found.source == "default (NoSuchResourceException reading cloudformation/L-0485CB21)"
    pipelines = next(q for q in quotas.QUOTAS if q.counts == ("AWS::CodePipeline::Pipeline",))
    [found] = quotas.check((pipelines,), Counter(), clients.__getitem__, "/slipway/")
    assert found.source.startswith("default (not in Service Quotas")


def test_an_applied_value_below_the_need_names_the_quota_to_raise(
    clients: dict[str, Any], synthesized: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stub = Stubber(clients["service-quotas"])
    stub.add_response(
        "get_service_quota",
        {"Quota": {"QuotaCode": "L-0485CB21", "Value": 5.0}},
        {"ServiceCode": "cloudformation", "QuotaCode": "L-0485CB21"},
    )
    stub.activate()
    assembly = Path(synthesized["assembly"].directory)
    needs = quotas.footprint(assembly, PLATFORM)
    checks = {c.name: c for c in preflight.run(_config(), _only_quotas(clients), needs) if c.name.startswith("quota")}
    stacks = checks["quota CloudFormation stacks per Region"]
    assert not stacks.ok and stacks.numbers == {
        "needed": needs[quotas.STACK],
        "in_use": 0,
        "applied": 5,
        "source": "applied",
    }
    assert [c.ok for n, c in checks.items() if n != stacks.name] == [True] * (len(quotas.QUOTAS) - 1)
    report = json.loads(preflight.as_json(list(checks.values())))
    assert report["ok"] is False and {c["name"] for c in report["checks"]} == set(checks)


def test_a_cdk_out_that_is_not_an_assembly_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_path=EXAMPLE, clients=lambda _: None, assembly=tmp_path) == 2
    assert capsys.readouterr().err.startswith(f"slipway preflight: --assembly {tmp_path}: ")


def _config() -> Any:
    from pipeline.config import load

    return load(EXAMPLE)


def _only_quotas(clients: dict[str, Any]) -> Any:
    """The other checks' clients are another test's: here they fail harmlessly, only the quota lines are read."""
    return lambda name: clients[name] if name in clients else boto3.client(name, region_name="eu-west-1")
