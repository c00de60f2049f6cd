"""The stand-ins that let the cloud's deploy command run unchanged locally: the job's kubectl against a cluster
stand-in, ECS's UpdateService rolling out, Lambda's Invoke running the image (each as the real service answers)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.deployers.eks import EksDeployer, KubectlCli, deployment_manifest, kubeconfig_for
from pipeline.local import ecs_standin, kubectl_standin, lambda_standin
from tests.unit.test_eks_deploy import INDEX, OLD, RECORD, REPO, TARGET

NEW = f"{REPO}@{INDEX}"


class Eks:
    def describe_cluster(self, name: str) -> dict[str, Any]:
        return {"cluster": {"endpoint": "https://x.eks.example", "certificateAuthority": {"data": "Q0E="}}}


def _kubectl(state: Path, tmp_path: Path) -> KubectlCli:
    """The stand-in as a job runs it: a process, with the kubeconfig the deployer writes."""
    import sys

    config = tmp_path / "kubeconfig.json"
    config.write_text(json.dumps(kubeconfig_for("search", eks=Eks())))
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "kubectl"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH="{root}" exec "{sys.executable}" -m pipeline.local.kubectl_standin "$@"\n'
    )
    script.chmod(0o755)
    return KubectlCli(str(script), config, {kubectl_standin.STATE_ENV: str(state)})


def test_the_cluster_stand_in_takes_the_cloud_deploy_path_and_keeps_history_and_annotations(tmp_path: Path) -> None:
    kubectl_standin.ensure_deployment(tmp_path, "search", deployment_manifest("search", "indexer", "indexer", OLD))
    kubectl = _kubectl(tmp_path, tmp_path)
    record = EksDeployer(kubectl).deploy(RECORD, TARGET, timeout=5)
    assert (record.image, record.previous_image, record.changed, record.waited) == (NEW, OLD, True, True)
    live = json.loads(kubectl(["get", "deployment", "indexer", "--namespace", "search", "--output", "json"]))
    assert live["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "2", "slipway.dev/image": NEW,
                                               "slipway.dev/previous-image": OLD}  # fmt: skip
    kubectl(["rollout", "undo", "deployment/indexer", "--namespace", "search"])
    again = json.loads(kubectl(["get", "deployment", "indexer", "--namespace", "search", "--output", "json"]))
    assert again["spec"]["template"]["spec"]["containers"][0]["image"] == OLD
    assert again["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_the_cluster_stand_in_refuses_what_a_cluster_refuses(tmp_path: Path) -> None:
    from pipeline.deployers.base import DeployError

    kubectl_standin.ensure_deployment(tmp_path, "search", deployment_manifest("search", "indexer", "indexer", OLD))
    kubectl = _kubectl(tmp_path, tmp_path)
    with pytest.raises(DeployError, match=r'deployments\.apps "crawler" not found'):
        kubectl(["get", "deployment", "crawler", "--namespace", "search", "--output", "json"])
    with pytest.raises(DeployError, match="unknown flag: --frobnicate"):
        kubectl(["get", "deployment", "indexer", "--frobnicate"])
    bad = json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "indexer", "image": 7}]}}}})
    with pytest.raises(DeployError, match="The Deployment is invalid"):
        kubectl(["patch", "deployment", "indexer", "--namespace", "search", "--type", "strategic", "--patch", bad])
    with pytest.raises(DeployError, match="no rollout history"):
        kubectl(["rollout", "undo", "deployment/indexer", "--namespace", "search"])
    no_config = KubectlCli(kubectl.binary, None, kubectl.environment)
    with pytest.raises(DeployError, match="no kubeconfig"):
        no_config(["get", "deployment", "indexer", "--namespace", "search", "--output", "json"])


def test_ecs_update_service_rolls_the_new_revision_out_as_one_completed_primary() -> None:
    service = SimpleNamespace(task_definition="arn:td/api:2", desired_count=1, deployments=[
        {"status": "PRIMARY", "taskDefinition": "arn:td/api:1", "rolloutState": "COMPLETED", "launchType": "FARGATE"}
    ])  # fmt: skip
    ecs_standin.rolled_out(service)
    [deployment] = service.deployments
    assert (deployment["status"], deployment["taskDefinition"], deployment["rolloutState"]) == (
        "PRIMARY", "arn:td/api:2", "COMPLETED")  # fmt: skip
    assert deployment["launchType"] == "FARGATE" and deployment["runningCount"] == 1


def test_lambda_invoke_of_an_image_function_runs_its_image_on_its_architecture(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipeline.local import verify

    ran: list[tuple[str, str, str, Any, str]] = []

    def run(name: str, version: str, image: str, event: Any, *, platform: str) -> tuple[bytes, bool]:
        ran.append((name, version, image, event, platform))
        return b'{"statusCode": 500}', True

    monkeypatch.setattr(verify, "run_invocation", run)
    monkeypatch.setenv("SLIPWAY_ECR_ENDPOINT", "127.0.0.1:5000")  # the environment is already known

    function = SimpleNamespace(function_name="payments-api", version="3", architectures=["arm64"],
                               code={"ImageUri": NEW})  # fmt: skip
    assert lambda_standin.invoke(function, '{"path": "/health"}') == (b'{"statusCode": 500}', True)
    assert ran == [("payments-api", "3", NEW, {"path": "/health"}, "linux/arm64")]


GOOD, BAD = (f"{REPO}@sha256:{c * 64}" for c in "ab")


def _released_twice() -> tuple[Any, str, str]:
    """In moto (inside ``mock_aws``): function ``f`` published on GOOD with alias ``live`` on that version, then
    published again on BAD (the alias left behind, as after a release that failed its smoke test)."""
    import boto3

    role = boto3.client("iam", "eu-west-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    lam = boto3.client("lambda", "eu-west-1")
    lam.create_function(FunctionName="f", Role=role["Arn"], PackageType="Image", Code={"ImageUri": GOOD})
    first = lam.publish_version(FunctionName="f")["Version"]
    lam.create_alias(FunctionName="f", Name="live", FunctionVersion=first)
    lam.update_function_code(FunctionName="f", ImageUri=BAD)
    return lam, first, lam.publish_version(FunctionName="f")["Version"]


def test_a_published_version_keeps_its_image_when_latest_moves_on() -> None:
    """As in Lambda (moto shares ``$LATEST``'s code with every version): the alias, still on the previous version
    after a release failed its smoke test, invokes the previous image, not the failed one."""
    from moto import mock_aws
    from moto.awslambda.models import lambda_backends

    lambda_standin.keep_versions_immutable()
    lambda_standin.keep_versions_immutable()  # idempotent
    with mock_aws():
        _, first, second = _released_twice()
        store = lambda_backends["123456789012"]["eu-west-1"]._lambdas
        invoked = {
            q: store.get_function_by_name_with_qualifier("f", q).code["ImageUri"] for q in ("live", first, second)
        }
        assert invoked == {"live": GOOD, first: GOOD, second: BAD}


def test_invoke_runs_the_version_its_qualifier_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Lambda (moto's Invoke ran ``$LATEST`` whatever the ``Qualifier``): a version, an alias, or none."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaFunction

    lambda_standin.keep_invoke_qualifier()
    lambda_standin.keep_invoke_qualifier()  # idempotent
    ran: list[str] = []
    monkeypatch.setattr(LambdaFunction, "invoke", lambda self, *args: ran.append(str(self.version)) or b"{}")
    with mock_aws():
        lam, first, second = _released_twice()
        for qualifier in (second, "live", None):
            lam.invoke(FunctionName="f", **({"Qualifier": qualifier} if qualifier else {}), Payload=b"{}")
    assert ran == [second, first, "$LATEST"]
