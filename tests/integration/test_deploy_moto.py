"""Deploys against moto (server mode): Lambda gets the child of its architecture, ECS the index, both idempotent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import EcsTarget
from pipeline.deployers.base import DeployError
from pipeline.deployers.ecs import EcsDeployer
from pipeline.records import ImageRecord, RecordError
from tests.integration.deploys import (
    ARM,
    INDEX,
    OLD,
    REGISTRY,
    REPO,
    RollingOut,
    deploy_fn,
    image_record,
)

pytestmark = pytest.mark.integration


def test_lambda_arm64_gets_the_arm64_child_then_is_idempotent(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deployed.json"
    deploy_fn(lambda_client, image_json, out, "payments-api")
    assert lambda_client.get_function(FunctionName="payments-api")["Code"]["ImageUri"] == f"{REPO}@{ARM}"
    first = json.loads(out.read_text())
    assert first["changed"] is True and first["previous_image"] == OLD and first["image"] == f"{REPO}@{ARM}"
    assert lambda_client.get_alias(FunctionName="payments-api", Name="live")["FunctionVersion"] == first["revision"]
    deploy_fn(lambda_client, image_json, out, "payments-api")
    second = json.loads(out.read_text())
    assert second["changed"] is False and second["revision"] == first["revision"]


def test_lambda_refuses_architecture_mismatch_with_the_function(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        DeployError,
        match=r"Lambda function payments-x86 \(arm64\): the function is configured for \['x86_64'\], not \['arm64'\]",
    ):
        deploy_fn(lambda_client, image_json, tmp_path / "o.json", "payments-x86")
    assert lambda_client.get_function(FunctionName="payments-x86")["Code"]["ImageUri"] == OLD


def test_lambda_refuses_image_lacking_its_architecture(lambda_client: Any, amd64_only: Path, tmp_path: Path) -> None:
    path = amd64_only
    with pytest.raises(
        DeployError,
        match=r"lacks platform linux/arm64 needed by Lambda function payments-api \(arm64\) \(has linux/amd64\)",
    ):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "payments-api")


def test_lambda_unknown_function(lambda_client: Any, image_json: Path, tmp_path: Path) -> None:
    with pytest.raises(
        DeployError,
        match=r"Lambda function nope \(arm64\): cannot read the function \(ResourceNotFoundException",
    ):
        deploy_fn(lambda_client, image_json, tmp_path / "o.json", "nope")


def test_tag_instead_of_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.write_text(
        json.dumps(
            {
                **json.loads(json.dumps(image_record().__dict__, default=lambda o: o.__dict__)),
                "index_digest": "latest",
            }
        )
    )
    with pytest.raises(RecordError, match=r"field 'index_digest': expected a digest 'sha256:<64 hex>', got 'latest'"):
        ImageRecord.load(path)


def test_ecs_gets_the_index_digest_in_a_revision_differing_only_in_image(
    ecs_client: Any, image_json: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deployed.json"
    before = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    deploy(
        EcsDeployer(ecs_client),
        EcsTarget(cluster="payments", service="api", container="api"),
        image_json=image_json,
        out=out,
        timeout=0,
        registry=REGISTRY,
    )
    service = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]
    after = ecs_client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    old = ecs_client.describe_task_definition(taskDefinition=before)["taskDefinition"]
    assert [c["image"] for c in after["containerDefinitions"]] == [
        f"{REPO}@{INDEX}",
        "sidecar@sha256:" + "9" * 64,
    ]
    for key in ("family", "cpu", "memory", "networkMode", "runtimePlatform", "requiresCompatibilities"):
        assert after[key] == old[key], key
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    record = json.loads(out.read_text())
    assert record["changed"] is True and record["previous_image"] == OLD
    deploy(
        EcsDeployer(ecs_client),
        EcsTarget(cluster="payments", service="api", container="api"),
        image_json=image_json,
        out=out,
        timeout=0,
        registry=REGISTRY,
    )
    # The second run registers nothing: the service already runs a revision with this image. (moto's deployment
    # stays IN_PROGRESS forever, so the run reports it as a rollout in flight rather than "nothing changed".)
    again = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    assert again == service["taskDefinition"]
    assert json.loads(out.read_text())["previous_image"] == OLD, "previous is never overwritten by a re-run"


def test_ecs_refuses_architecture_the_index_lacks(ecs_client: Any, amd64_only: Path, tmp_path: Path) -> None:
    path = amd64_only
    with pytest.raises(
        DeployError,
        match=r"ECS service payments/worker: runtimePlatform.cpuArchitecture ARM64 needs linux/arm64",
    ):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="worker", container="worker"),
            image_json=path,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )


def test_ecs_unknown_service_and_container(ecs_client: Any, image_json: Path, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"ECS service payments/nope: service not found"):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="nope", container="x"),
            image_json=image_json,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )
    with pytest.raises(DeployError, match=r"task definition has no container 'web' \(has \['worker', 'sidecar'\]\)"):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="worker", container="web"),
            image_json=image_json,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )


def test_ecs_steady_state_wait_is_bounded(ecs_client: Any) -> None:
    """A rollout that never completes (the view of moto says IN_PROGRESS forever): the wait ends, with a clear error."""
    with pytest.raises(
        DeployError, match=r"ECS service payments/worker: waiting for steady state on .* timed out after 1s"
    ):
        EcsDeployer(RollingOut(ecs_client, rolling=10**6), poll_seconds=0.2).deploy(
            image_record(), EcsTarget(cluster="payments", service="worker", container="worker"), timeout=1
        )
