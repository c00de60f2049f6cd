"""Deploys that are safe to retry and prove they serve: partial failures finished by a retry, the rollback target kept
on the target itself, smoke tests before an alias moves, the registry checked before any change, rollbacks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import EcsTarget, LambdaTarget
from pipeline.deployers.base import DeployError, Invocation
from pipeline.deployers.ecs import EcsDeployer
from pipeline.deployers.lambda_ import LambdaDeployer
from pipeline.errors import InputError, SlipwayError
from pipeline.records import ImageRecord, write
from tests.fakes import health_endpoint
from tests.integration.deploys import (
    ARM,
    INVOKED,
    OLD,
    REGISTRY,
    RELEASE,
    REPO,
    SECOND,
    FailOnce,
    RollingOut,
    answers,
    deploy_fn,
    fresh_function,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("operation", ["publish_version", "update_alias", "create_alias"])
def test_lambda_retry_after_a_partial_failure_finishes_the_deploy(
    lambda_client: Any, image_json: Path, tmp_path: Path, operation: str
) -> None:
    name = f"retry-{operation.replace('_', '-')}"
    fresh_function(lambda_client, name)
    if operation == "update_alias":  # a first deploy made the alias: the second one fails to move it
        lambda_client.publish_version(FunctionName=name, Description=OLD)  # as Slipway publishes versions
        lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    out = tmp_path / "deployed.json"
    # What the alias serves is read back after the failure, never assumed.
    serving = (
        rf"alias live names version 1 \({OLD}\)" if operation == "update_alias" else "alias live does not exist yet"
    )
    with pytest.raises(DeployError, match=rf"injected; {serving} \(a retry finishes the deploy\)"):
        deploy_fn(FailOnce(lambda_client, operation), image_json, out, name)
    assert json.loads(out.read_text())["status"] == "in progress"  # claimed before the change, never a record
    deploy_fn(lambda_client, image_json, out, name)
    record = json.loads(out.read_text())
    assert record["changed"] is True, "a retry finishes the job; it never says 'nothing changed' over a stale alias"
    assert record["previous_image"] == OLD and record["image"] == f"{REPO}@{ARM}"
    version = lambda_client.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    assert lambda_client.get_function(FunctionName=name, Qualifier=version)["Code"]["ImageUri"] == f"{REPO}@{ARM}"


def test_lambda_retry_after_success_keeps_the_rollback_target(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    """The record was lost (a fresh CodeBuild workspace): the retry reads the rollback target from the function."""
    fresh_function(lambda_client, "retry-record")
    deploy_fn(lambda_client, image_json, tmp_path / "first.json", "retry-record")
    deploy_fn(lambda_client, image_json, tmp_path / "second.json", "retry-record")
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["changed"] is False and second["previous_image"] == OLD, "previous is never overwritten by a retry"


def test_deploy_refuses_an_out_it_cannot_write_before_changing_anything(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    fresh_function(lambda_client, "retry-out")
    with pytest.raises(InputError, match=r"--out .*/missing/deployed.json: cannot write \(No such file or directory\); "
                                         r"nothing was deployed"):  # fmt: skip
        deploy_fn(lambda_client, image_json, tmp_path / "missing" / "deployed.json", "retry-out")
    assert lambda_client.get_function(FunctionName="retry-out")["Code"]["ImageUri"] == OLD


def test_ecs_retry_after_a_timeout_waits_for_and_judges_the_rollout(
    ecs_client: Any, image_json: Path, tmp_path: Path
) -> None:
    target = EcsTarget(cluster="payments", service="worker", container="worker")
    with pytest.raises(DeployError, match=r"ECS service payments/worker: waiting for steady state on .* timed out"):
        deploy(EcsDeployer(RollingOut(ecs_client, rolling=10**6), poll_seconds=0.1), target,
               image_json=image_json, out=tmp_path / "first.json", timeout=0.5, registry=REGISTRY)  # fmt: skip
    out = tmp_path / "retry.json"
    deploy(EcsDeployer(RollingOut(ecs_client, rolling=3), poll_seconds=0.1), target, image_json=image_json, out=out,
           timeout=30, registry=REGISTRY)  # fmt: skip
    record = json.loads(out.read_text())
    assert record["changed"] is True and record["waited"] is True, "the retry watched the rollout to its end"
    assert record["previous_image"] == OLD, "the rollback target came from the revision's tags"


def test_deploy_refuses_a_child_labelled_with_another_platform(lambda_client: Any, tmp_path: Path) -> None:
    """image.json says arm64, the child's config says amd64: nothing is deployed."""
    lying = ImageRecord(REPO, RELEASE.tag, RELEASE.index_digest, {
        "linux/amd64": RELEASE.platforms["linux/arm64"], "linux/arm64": RELEASE.platforms["linux/amd64"],
    })  # fmt: skip
    path = tmp_path / "image.json"
    write(path, lying)
    fresh_function(lambda_client, "lying-label")
    with pytest.raises(SlipwayError, match=r"index names sha256:\w+, image.json says sha256:\w+"):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "lying-label")
    assert lambda_client.get_function(FunctionName="lying-label")["Code"]["ImageUri"] == OLD


def test_deploy_refuses_an_index_whose_child_is_another_architecture(lambda_client: Any, tmp_path: Path) -> None:
    """The index itself lies (an amd64 child listed as arm64): the child's config says so, and nothing is deployed."""
    from pipeline.oci import OCI_MANIFEST, Descriptor, Platform, build_index
    from pipeline.records import PlatformImage
    from pipeline.registry.base import RepositoryRef

    amd = RELEASE.platforms["linux/amd64"]
    index = build_index([Descriptor(OCI_MANIFEST, amd.digest, 500, Platform("linux", "arm64"))])
    REGISTRY.put_manifest(RepositoryRef.parse(REPO), "lying-index", index)
    path = tmp_path / "image.json"
    write(
        path,
        ImageRecord(REPO, "lying-index", index.digest, {"linux/arm64": PlatformImage(amd.digest, 1, OCI_MANIFEST)}),
    )
    fresh_function(lambda_client, "lying-index")
    with pytest.raises(SlipwayError, match=r"\(linux/arm64\): image config says linux/amd64, expected linux/arm64"):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "lying-index")
    assert lambda_client.get_function(FunctionName="lying-index")["Code"]["ImageUri"] == OLD


def test_lambda_alias_moves_only_after_the_new_version_answers_its_smoke_event(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    fresh_function(lambda_client, "smoke-test")
    INVOKED.clear()
    deploy_fn(lambda_client, image_json, tmp_path / "o.json", "smoke-test")
    record = json.loads((tmp_path / "o.json").read_text())
    assert [("smoke-test", record["revision"], f"{REPO}@{ARM}")] == INVOKED, "that version, before the alias moved"
    assert record["verified"] == {"ok": True, "check": "invoke", "status": 200, "machine": "aarch64"}


def test_a_failed_smoke_test_leaves_the_previous_version_serving(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    fresh_function(lambda_client, "smoke-fail")
    lambda_client.publish_version(FunctionName="smoke-fail", Description=OLD)
    lambda_client.create_alias(FunctionName="smoke-fail", Name="live", FunctionVersion="1")
    broken = LambdaDeployer(lambda_client, poll_seconds=0.2,
                            invoke=lambda *_: Invocation(True, 200, {"statusCode": 500, "machine": "aarch64"}))  # fmt: skip
    target = LambdaTarget(function_name="smoke-fail", architecture="arm64", smoke_expect='{"statusCode": 200}')
    with pytest.raises(DeployError, match=r"version 2 .* failed its smoke test: answered \{\"statusCode\": 500\}, "
                                          r"expected \{\"statusCode\": 200\}; alias live still names the previous"):  # fmt: skip
        deploy(broken, target, image_json=image_json, out=tmp_path / "o.json", registry=REGISTRY)
    assert lambda_client.get_alias(FunctionName="smoke-fail", Name="live")["FunctionVersion"] == "1"


def test_rollback_returns_lambda_to_the_recorded_previous_digest(lambda_client: Any, tmp_path: Path) -> None:
    from pipeline.commands.rollback import run as rollback

    fresh_function(lambda_client, "roll-back")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write(first, RELEASE)
    write(second, SECOND)
    deploy_fn(lambda_client, first, tmp_path / "deployed-1.json", "roll-back")
    deploy_fn(lambda_client, second, tmp_path / "deployed-2.json", "roll-back")
    record = json.loads((tmp_path / "deployed-2.json").read_text())
    assert record["previous_image"] == f"{REPO}@{ARM}"
    target = LambdaTarget(function_name="roll-back", architecture="arm64")
    deployer = LambdaDeployer(lambda_client, poll_seconds=0.2, invoke=answers)
    assert rollback(deployer, target, record_path=tmp_path / "deployed-2.json", out=tmp_path / "rolled.json",
                    timeout=30, registry=REGISTRY) == 0  # fmt: skip
    rolled = json.loads((tmp_path / "rolled.json").read_text())
    assert rolled["image"] == f"{REPO}@{ARM}" and rolled["verified"]["check"] == "invoke"
    version = lambda_client.get_alias(FunctionName="roll-back", Name="live")["FunctionVersion"]
    assert lambda_client.get_function_configuration(FunctionName="roll-back", Qualifier=version)["Description"] == (
        f"{REPO}@{ARM}"
    )


def test_rollback_refuses_a_record_of_another_target(lambda_client: Any, tmp_path: Path) -> None:
    from pipeline.commands.rollback import run as rollback

    record = tmp_path / "deployed.json"
    record.write_text(json.dumps({"target": "lambda:other", "image": f"{REPO}@{ARM}", "previous_image": OLD,
                                  "changed": True}))  # fmt: skip
    with pytest.raises(DeployError, match=r"rollback of lambda:payments-api: the record is of lambda:other"):
        rollback(LambdaDeployer(lambda_client), LambdaTarget(function_name="payments-api", architecture="arm64"),
                 record_path=record, out=tmp_path / "o.json", timeout=1, registry=REGISTRY)  # fmt: skip


@pytest.fixture
def health() -> Iterator[tuple[str, list[int]]]:
    with health_endpoint() as served:
        yield served


@pytest.mark.parametrize("status", [200, 503])
def test_ecs_health_url_after_steady_state_keeps_or_rolls_back(
    ecs_client: Any,
    image_json: Path,
    tmp_path: Path,
    health: tuple[str, list[int]],
    status: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.deployers import ecs as ecs_module

    url, statuses = health
    statuses[0] = status
    monkeypatch.setattr(ecs_module, "HEALTH_SECONDS", 1.0)
    # The service back on the old image first (moto's server lives for the session).
    current = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    definition = ecs_client.describe_task_definition(taskDefinition=current)["taskDefinition"]
    keys = ("family", "networkMode", "requiresCompatibilities", "cpu", "memory", "runtimePlatform")
    before = ecs_client.register_task_definition(
        **{k: definition[k] for k in keys},
        containerDefinitions=[
            {**c, "image": OLD} if c["name"] == "api" else c for c in definition["containerDefinitions"]
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs_client.update_service(cluster="payments", service="api", taskDefinition=before)
    target = EcsTarget(cluster="payments", service="api", container="api", health_url=url)
    deployer = EcsDeployer(RollingOut(ecs_client, rolling=1), poll_seconds=0.1)
    if status == 200:
        deploy(deployer, target, image_json=image_json, out=tmp_path / "o.json", timeout=30, registry=REGISTRY)
        assert json.loads((tmp_path / "o.json").read_text())["verified"]["check"] == f"GET {url}"
        return
    with pytest.raises(DeployError, match=rf"is steady but GET {url} answered 503; the service is back on {before}"):
        deploy(deployer, target, image_json=image_json, out=tmp_path / "o.json", timeout=30, registry=REGISTRY)
    after = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    assert after == before
