"""End to end on the example config: local up → seed → run → down, then check the deployed digests against the
registry with plain HTTP GETs. Slow (debootstrap, arm64 under QEMU); `make test` runs it."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline.commands.local import run
from pipeline.local.aws import client
from pipeline.local.state import LocalState
from tests.conftest import EXAMPLE
from tests.e2e.conftest import get

pytestmark = pytest.mark.e2e


def image_json(state: LocalState, service: str) -> dict:
    return json.loads((state.directory / "runs" / service / "image.json").read_text())


def test_lambda_runs_the_arm64_child_the_registry_serves(local: LocalState) -> None:
    image = image_json(local, "payments-api")
    index = get(
        f"http://{local.registry}/v2/payments/api/manifests/{image['index_digest']}",
        "application/vnd.oci.image.index.v1+json",
    )
    assert "sha256:" + hashlib.sha256(index).hexdigest() == image["index_digest"]
    arm = next(m for m in json.loads(index)["manifests"] if m["platform"]["architecture"] == "arm64")
    function = client("lambda", local.aws_endpoint).get_function(FunctionName="payments-api")
    assert function["Code"]["ImageUri"] == f"{local.registry}/payments/api@{arm['digest']}"
    assert function["Configuration"]["Architectures"] == ["arm64"]


def test_ecs_services_run_the_index_digest(local: LocalState) -> None:
    ecs = client("ecs", local.aws_endpoint)
    for cluster, service, path in (
        ("payments", "api", "payments/api"),
        ("search", "indexer", "search/indexer"),
    ):
        image = image_json(local, f"{cluster}-{service}" if cluster == "payments" else "search-indexer")
        described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        definition = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])["taskDefinition"]
        assert definition["containerDefinitions"][0]["image"] == f"{local.registry}/{path}@{image['index_digest']}"
        served = get(
            f"http://{local.registry}/v2/{path}/manifests/{image['index_digest']}",
            "application/vnd.oci.image.index.v1+json",
        )
        assert "sha256:" + hashlib.sha256(served).hexdigest() == image["index_digest"]


def test_eks_manifest_names_the_index_digest(local: LocalState) -> None:
    image = image_json(local, "search-indexer")
    manifest = json.loads((local.directory / "runs" / "search-indexer" / "deployment.json").read_text())
    assert (
        manifest["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"{local.registry}/search/indexer@{image['index_digest']}"
    )


def test_static_service_is_tiny_and_both_platforms_are_built(local: LocalState) -> None:
    image = image_json(local, "search-indexer")
    assert set(image["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert all(p["size"] <= 2_000_000 for p in image["platforms"].values()), image["platforms"]


def test_second_run_is_a_no_op_deploy(local: LocalState, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(state_dir=local.directory, config_path=EXAMPLE, service="payments/api") == 0
    progress = capsys.readouterr().err
    assert "already released" in progress and "unchanged lambda:payments-api" in progress


def test_second_seed_reuses_every_base(local: LocalState, capsys: pytest.CaptureFixture[str]) -> None:
    """A second `make demo` must not fail: seeded upstreams and unchanged curated bases are reused, not rebuilt."""
    from pipeline import bases
    from pipeline.commands.local import seed

    before = bases.load(local.lock_path)
    assert seed(state_dir=local.directory, config_path=EXAMPLE) == 0
    assert bases.load(local.lock_path) == before
    assert "building" not in capsys.readouterr().err


def deployed(state: LocalState, service: str, kind: str) -> dict:
    return json.loads((state.directory / "runs" / service / f"deployed-{kind}.json").read_text())


def test_every_deployment_answered_on_its_own_architecture(local: LocalState) -> None:
    """The deployed digests themselves: the Lambda child invoked under QEMU as arm64, the ECS images asked for their
    health path (or run, for the indexer that serves no HTTP), the EKS Deployment schema-checked and its image run."""
    checks = {
        ("payments-api", "lambda"): {"ok": True, "check": "invoke", "status": 200, "machine": "aarch64"},
        ("payments-api", "ecs"): {"ok": True, "check": "GET /health", "status": 200, "machine": "x86_64"},
        ("search-indexer", "ecs"): {"ok": True, "check": "run", "status": 0, "machine": "aarch64"},
        ("search-indexer", "eks"): {"ok": True, "check": "run", "status": 0, "machine": "x86_64"},
    }
    assert {key: deployed(local, *key)["verified"] for key in checks} == checks
