"""The deployer interface's shared parts: the deploy record a rollback returns to, the child a Lambda gets, the
bounded wait every rollout uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import records
from pipeline.deployers import base
from pipeline.deployers.base import DeployError, DeployRecord, Verification, platform_image, wait_until
from pipeline.records import ImageRecord, PlatformImage, RecordError

REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
INDEX, AMD, ARM = ("sha256:" + c * 64 for c in "abc")
PREVIOUS = f"{REPO}@sha256:" + "0" * 64
RELEASE = ImageRecord(REPO, "c0ffee", INDEX, {
    "linux/amd64": PlatformImage(AMD, 10, "application/vnd.oci.image.manifest.v1+json"),
    "linux/arm64": PlatformImage(ARM, 11, "application/vnd.oci.image.manifest.v1+json"),
})  # fmt: skip


def test_a_deploy_record_reads_back_exactly_what_the_deploy_wrote(tmp_path: Path) -> None:
    path = tmp_path / "deployed-dev-lambda.json"
    written = DeployRecord("lambda:payments-api", f"{REPO}@{ARM}", PREVIOUS, True, "7", True,
                           Verification(True, "invoke", 200, "aarch64"), "dev", "222222222222")  # fmt: skip
    records.write(path, written)
    assert DeployRecord.load(path) == written


def test_a_minimal_record_takes_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "deployed.json"
    path.write_text(json.dumps({"target": "ecs:c/s", "image": f"{REPO}@{INDEX}", "previous_image": "",
                                "changed": False}))  # fmt: skip
    assert DeployRecord.load(path) == DeployRecord("ecs:c/s", f"{REPO}@{INDEX}", "", False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"previous_image": f"{REPO}:latest"}, "field 'previous_image': expected 'repo@sha256:<64 hex>', got "),
        ({"previous_image": PREVIOUS + "0"}, "field 'previous_image': expected 'repo@sha256:<64 hex>'"),
        ({"verified": "yes"}, "field 'verified': expected an object or null"),
        ({"verified": {"ok": "true", "check": "invoke", "status": 200}}, "field 'ok': expected bool"),
        ({"verified": {"ok": True, "check": "invoke", "status": "200"}}, "field 'status': expected int"),
        ({"verified": {"ok": True, "status": 200}}, "field 'check': expected str"),
        ({"changed": "no"}, "field 'changed': expected bool"),
        ({"environment": 2}, "field 'environment': expected str"),
        ({"account": None}, "field 'account': expected str"),
        ({"waited": 1}, "field 'waited': expected bool"),
    ],
)
def test_a_tampered_record_is_refused_naming_the_file_and_field(tmp_path: Path, change: dict[str, Any],
                                                                 message: str) -> None:  # fmt: skip
    path = tmp_path / "deployed.json"
    data = {"target": "lambda:f", "image": f"{REPO}@{ARM}", "previous_image": PREVIOUS, "changed": True, **change}
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as raised:
        DeployRecord.load(path)
    assert str(raised.value).startswith(f"{path}: {message}")


def test_a_verification_reads_as_one_line_with_or_without_the_machine(tmp_path: Path) -> None:
    assert str(Verification(True, "GET /health", 200, "x86_64")) == "GET /health 200 x86_64"
    assert str(Verification(False, "run", 1)) == "run 1"
    path = tmp_path / "deployed.json"
    path.write_text(json.dumps({"target": "t", "image": "i", "previous_image": "", "changed": True,
                                "verified": {"ok": False, "check": "run", "status": 1}}))  # fmt: skip
    assert DeployRecord.load(path).verified == Verification(False, "run", 1, "")


def test_a_lambda_gets_the_child_of_its_platform_and_never_the_index() -> None:
    assert platform_image(RELEASE, "linux/arm64", "Lambda function f") == f"{REPO}@{ARM}"
    assert platform_image(RELEASE, "linux/amd64", "Lambda function f") == f"{REPO}@{AMD}"
    one = ImageRecord(REPO, "t", INDEX, {"linux/amd64": RELEASE.platforms["linux/amd64"]})
    with pytest.raises(DeployError) as missing:
        platform_image(one, "linux/arm64", "Lambda function f (arm64)")
    assert str(missing.value) == (
        f"image {REPO}@{INDEX} lacks platform linux/arm64 needed by Lambda function f (arm64) (has linux/amd64)"
    )
    indexed = ImageRecord(REPO, "t", INDEX, {"linux/arm64": PlatformImage(INDEX, 1, "x")})
    with pytest.raises(DeployError, match=rf"^Lambda function f: refusing the index digest {INDEX}; expected the "
                                          r"linux/arm64 child$"):  # fmt: skip
        platform_image(indexed, "linux/arm64", "Lambda function f")


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_wait_polls_at_its_interval_until_the_check_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(base, "time", clock)
    answers = iter([False, False, True])
    wait_until(lambda: next(answers), timeout=10, interval=2.5, what="steady state")
    assert clock.slept == [2.5, 2.5]


def test_a_wait_that_never_holds_ends_at_its_timeout_naming_what_it_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(base, "time", clock)
    calls = []
    with pytest.raises(DeployError) as raised:
        wait_until(lambda: calls.append(clock.now) is not None, timeout=5, interval=2, what="ECS service c/s")
    assert str(raised.value) == "ECS service c/s: timed out after 5s"
    assert calls == [100.0, 102.0, 104.0, 106.0]  # checked once more at the deadline, never after it
    assert clock.slept == [2, 2, 2]


def test_a_check_that_holds_at_once_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(base, "time", clock)
    wait_until(lambda: True, timeout=0, interval=1, what="x")
    assert clock.slept == []


@pytest.mark.parametrize(
    ("kind", "service", "target"),
    [
        ("lambda", "LAMBDA", "lambda:payments-api"),
        ("ecs", "ECS", "ecs:payments/api"),
        ("eks", "EKS", "EKS cluster search"),  # the kubeconfig is made first
    ],
)
def test_an_aws_api_out_of_reach_ends_the_deploy_naming_the_target_not_a_traceback(
    kind: str, service: str, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each deployer's production client (made inside the deploy, as the workload role) goes where the job points it."""
    from pipeline.commands.deploy import deploy
    from pipeline.config import EcsTarget, EksTarget, LambdaTarget
    from pipeline.deployers import DEPLOYERS
    from tests.fakes import aws_out_of_reach, released

    targets = {"lambda": LambdaTarget(function_name="payments-api", architecture="arm64"),
               "ecs": EcsTarget(cluster="payments", service="api", container="api"),
               "eks": EksTarget(cluster="search", namespace="search", deployment="indexer", container="indexer")}  # fmt: skip
    aws_out_of_reach(monkeypatch, service)
    registry, release = released(REPO)
    records.write(tmp_path / "image.json", release)
    with pytest.raises(DeployError, match=rf'^{target}: .*Could not connect to the endpoint URL: "http://127.0.0.1:9/'):
        deploy(
            lambda: DEPLOYERS[kind](),
            targets[kind],
            image_json=tmp_path / "image.json",
            out=tmp_path / "r.json",
            registry=registry,
        )
    # The record was claimed before anything (an "in progress" placeholder), and reading it says the deploy never finished.
    with pytest.raises(records.RecordError, match=r"r\.json: the deploy of .* that writes it did not finish"):
        DeployRecord.load(tmp_path / "r.json")
