"""Issue #33: a deploy never lies about where or what it deployed. Options are checked as platform.toml's values are
before anything changes; the record is claimed before the change; after a change, an error says what is live,
read back from the target; no AWS or kubectl error is a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from pipeline import records
from pipeline.cli import main
from pipeline.commands.deploy import deploy
from pipeline.config import EcsTarget
from pipeline.deployers import ecs as ecs_module
from pipeline.deployers.base import DeployError, DeployRecord
from pipeline.deployers.ecs import EcsDeployer
from pipeline.deployers.eks import EksDeployer
from pipeline.deployers.lambda_ import LambdaDeployer
from pipeline.records import RecordError
from tests.unit.test_deploy_base import PREVIOUS, RELEASE, REPO
from tests.unit.test_ecs_deployer import TASK, FakeEcs
from tests.unit.test_eks_deploy import RECORD, TARGET
from tests.unit.test_eks_deployer import FakeCluster
from tests.unit.test_lambda_deployer import HEALTHY, NEW, FakeLambda, answering
from tests.unit.test_lambda_deployer import TARGET as LAMBDA

LAMBDA_ARGS = ["--function-name", "payments-api", "--architecture", "arm64"]


def _deploy(capsys: Any, *argv: str) -> tuple[int, str]:
    code = main(["deploy", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--smoke-event", "not json"], "--smoke-event: expected a JSON object, got 'not json'"),
        (["--smoke-event", "[1]"], "--smoke-event: expected a JSON object, got '[1]'"),
        (["--smoke-expect", "[1]"], "--smoke-expect: expected a JSON object, got '[1]'"),
        (["--smoke-expect", "null"], "--smoke-expect: expected a JSON object, got 'null'"),
        (["--smoke-expect", "{"], "--smoke-expect: expected a JSON object, got '{'"),
        (["--alias", "123"], "--alias: expected a Lambda alias name (not all digits), got '123'"),
        (["--environment", "prod"], "--environment prod: needs --role-arn (the environment's workload role)"),
        (["--role-arn", "arn:aws:iam::1:role/x"], "--role-arn: expected an IAM role ARN"),
        (["--region", "mars-1"], "--region: expected an AWS region such as 'eu-west-1', got 'mars-1'"),
    ],
)
def test_lambda_options_are_checked_like_platform_toml_before_anything_changes(
    options: list[str], message: str, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "deployed.json"
    code, err = _deploy(capsys, "lambda", *LAMBDA_ARGS, *options, "--image-json", str(tmp_path / "none.json"),
                        "--out", str(out))  # fmt: skip
    assert code == 2 and message in err and err.rstrip().endswith("nothing was changed"), err
    assert not out.exists()  # refused before the record was even claimed


def test_an_ecs_health_url_that_is_not_http_is_refused_as_platform_toml_refuses_it(tmp_path: Path, capsys: Any) -> None:
    code, err = _deploy(capsys, "ecs", "--cluster", "payments", "--service", "api", "--container", "api",
                        "--health-url", "file:///etc/hostname", "--out", str(tmp_path / "d.json"))  # fmt: skip
    assert code == 2 and "--health-url: expected an http(s) URL, got 'file:///etc/hostname'" in err
    assert ecs_module.http_status("file:///etc/hostname") == 0  # and never read as a file if it got that far


@pytest.mark.parametrize("where", ["directory", "/dev/full", "missing/deployed.json"])
def test_an_out_that_cannot_be_written_stops_deploy_and_rollback_before_any_change(
    where: str, tmp_path: Path, capsys: Any
) -> None:
    out = {"directory": str(tmp_path), "/dev/full": "/dev/full"}.get(where, str(tmp_path / where))
    code, err = _deploy(capsys, "lambda", *LAMBDA_ARGS, "--image-json", str(tmp_path / "none.json"), "--out", out)
    assert code == 2 and f"--out {out}: cannot write (" in err and "nothing was deployed" in err, err
    record = tmp_path / "record.json"
    records.write(record, DeployRecord("lambda:payments-api", NEW, PREVIOUS, changed=True))
    code = main(["rollback", "lambda", *LAMBDA_ARGS, "--record", str(record), "--out", out])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {out}: cannot write (" in err and "nothing was rolled back" in err, err


def test_stitch_claims_its_out_before_pushing_and_refuses_a_bases_value_that_is_no_lock(
    tmp_path: Path, capsys: Any
) -> None:
    build = tmp_path / "build.json"
    build.write_text("{}")
    base = ["stitch", "--repository", REPO, "--tag", "c0ffee", "--build", str(build)]
    assert main([*base, "--out", str(tmp_path / "nodir" / "image.json")]) == 2
    assert "--out " in capsys.readouterr().err  # before the build record is even read: nothing pushed
    assert main([*base, "--bases", "nope.json", "--out", str(tmp_path / "image.json")]) == 2
    assert "--bases: not JSON" in capsys.readouterr().err


def test_lint_refuses_a_lock_it_was_given_that_does_not_exist(tmp_path: Path, capsys: Any) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert main(["lint", "--lock", str(tmp_path / "nope.json"), str(dockerfile)]) == 2
    assert f"{tmp_path / 'nope.json'}: no such lock file" in capsys.readouterr().err


def test_synth_refuses_an_outdir_it_cannot_write_with_one_line(capsys: Any) -> None:
    assert main(["synth", "--outdir", "/dev/null/out"]) == 2
    assert (
        capsys.readouterr().err.strip() == "slipway synth: --outdir /dev/null/out: cannot write there (Not a directory)"
    )


def test_a_region_of_the_european_sovereign_cloud_is_a_region_with_its_partition_and_suffix() -> None:
    from pipeline.config.model import is_region
    from pipeline.naming import partition_for
    from pipeline.references import ecr_registry
    from pipeline.registry.base import ecr_account_region

    assert is_region("eusc-de-east-1") and partition_for("eusc-de-east-1") == "aws-eusc"
    host = ecr_registry("111111111111", "eusc-de-east-1")
    assert host == "111111111111.dkr.ecr.eusc-de-east-1.amazonaws.eu"
    assert ecr_account_region(host) == ("111111111111", "eusc-de-east-1")
    assert (partition_for("cn-north-1"), partition_for("us-gov-west-1"), partition_for("eu-west-1")) == (
        "aws-cn", "aws-us-gov", "aws")  # fmt: skip
    assert not is_region("eu-west") and not is_region("xx-west-1") and not is_region("eu-west-1\n")


def test_a_record_that_cannot_be_written_after_the_change_says_what_changed_and_how_to_finish(tmp_path: Path) -> None:
    image_json, out = tmp_path / "image.json", tmp_path / "gone" / "deployed.json"
    records.write(image_json, RELEASE)
    out.parent.mkdir()

    class Vanishing:
        """Deploys, and the record's directory disappears meanwhile (a full disk, a cleaned workspace)."""

        def deploy(self, record: Any, target: Any, *, timeout: float) -> DeployRecord:
            out.unlink()
            out.parent.rmdir()
            return DeployRecord(target.label, NEW, PREVIOUS, changed=True)

    from tests.fakes import released

    registry, release = released(REPO)
    records.write(image_json, release)
    with pytest.raises(DeployError) as raised:
        deploy(Vanishing(), LAMBDA, image_json=image_json, out=out, registry=registry)  # type: ignore[arg-type]
    assert str(raised.value).startswith(f"lambda:payments-api: now serves {NEW} (before: {PREVIOUS}), but the record")
    assert "run the same deploy again" in str(raised.value)


def test_a_claimed_record_of_a_deploy_that_never_finished_is_no_rollback_target(tmp_path: Path) -> None:
    out = tmp_path / "deployed.json"
    records.reserve(out, "deploy of lambda:payments-api")
    with pytest.raises(RecordError, match="the deploy of lambda:payments-api that writes it did not finish"):
        DeployRecord.load(out)


class LostAnswerEcs(FakeEcs):
    """UpdateService is applied, then its answer is lost (a timeout after the change); ``refuse_back``: the second
    UpdateService (the switch back after a failed health check) is denied."""

    def __init__(self, *, lose: bool = True, refuse_back: bool = False) -> None:
        super().__init__()
        self.lose, self.refuse_back, self.updates = lose, refuse_back, 0

    def update_service(self, cluster: str, service: str, **kwargs: Any) -> None:
        self.updates += 1
        if self.refuse_back and self.updates > 1:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "expired"}}, "UpdateService")
        super().update_service(cluster, service, **kwargs)
        if self.lose and self.updates == 1:
            raise ReadTimeoutError(endpoint_url="https://ecs.eu-west-1.amazonaws.com/")


def test_an_ecs_update_applied_but_unanswered_is_judged_by_what_the_service_names_not_called_a_failure() -> None:
    fake = LostAnswerEcs()
    record = EcsDeployer(fake, poll_seconds=0).deploy(RELEASE, EcsTarget(cluster="payments", service="api",
                         container="api", task_roles=("payments-api-task",)), timeout=5)  # fmt: skip
    assert (record.changed, record.revision, record.waited) == (True, TASK.format(2), True)


def test_a_denied_switch_back_after_a_failed_health_check_says_what_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ecs_module, "http_status", lambda url: 503)
    fake = LostAnswerEcs(lose=False, refuse_back=True)
    target = EcsTarget(cluster="payments", service="api", container="api", task_roles=("payments-api-task",),
                       health_url="https://api.example/health")  # fmt: skip
    with pytest.raises(DeployError) as raised:
        EcsDeployer(fake, poll_seconds=0).deploy(RELEASE, target, timeout=0.05)
    assert str(raised.value) == (
        f"ECS service payments/api: {TASK.format(2)} is steady but GET https://api.example/health answered 503; "
        f"switching back to {TASK.format(1)} failed (AccessDeniedException: expired); the service names "
        f"{TASK.format(2)} now: roll back by hand or run the deploy again"
    )


def test_a_denied_task_definition_read_is_a_clear_error_before_any_change() -> None:
    fake = FakeEcs()
    fake.fail["describe_task_definition"] = "AccessDeniedException"
    with pytest.raises(DeployError, match=r"^ECS service payments/api: cannot read task definition .*api:1 "
                                          r"\(AccessDeniedException: no\); nothing was changed$"):  # fmt: skip
        EcsDeployer(fake, poll_seconds=0).deploy(RELEASE, EcsTarget(cluster="payments", service="api",
                                                 container="api"), timeout=5)  # fmt: skip
    assert not [op for op, _ in fake.calls if op in ("register_task_definition", "update_service")]


def test_a_lambda_alias_moved_but_unanswered_is_reported_as_moved() -> None:
    class LostAlias(FakeLambda):
        def update_alias(self, FunctionName: str, Name: str, FunctionVersion: str, RoutingConfig: Any = None) -> None:
            super().update_alias(FunctionName=FunctionName, Name=Name, FunctionVersion=FunctionVersion,
                                 RoutingConfig=RoutingConfig)  # fmt: skip
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "lost"}}, "UpdateAlias")

    fake = LostAlias()
    fake.aliases, fake.versions = {"live": "0"}, {"0": (PREVIOUS, PREVIOUS)}
    with pytest.raises(DeployError) as raised:
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, LAMBDA, timeout=5)
    assert str(raised.value) == (
        f"Lambda function payments-api (arm64): ServiceException: lost; alias live names version 2 ({NEW}) "
        "(a retry finishes the deploy)"
    )


@pytest.mark.parametrize(("timeout", "waits"), [(0, []), (0.5, ["1s"]), (120, ["120s"]), (1.2, ["2s"])])
def test_eks_timeouts_mean_what_the_help_says(timeout: float, waits: list[str]) -> None:
    """0 does not wait; anything else waits at least a second (kubectl reads --timeout=0s as "wait forever")."""
    cluster = FakeCluster()
    record = EksDeployer(cluster).deploy(RECORD, TARGET, timeout=timeout)
    assert cluster.timeouts == waits and record.waited == bool(waits)


def test_an_eks_deploy_keeps_its_rollback_target_on_the_deployment() -> None:
    cluster = FakeCluster()
    record = EksDeployer(cluster).deploy(RECORD, TARGET, timeout=5)
    annotations = cluster.deployments["search", "indexer"]["metadata"]["annotations"]
    assert (annotations["slipway.dev/image"], annotations["slipway.dev/previous-image"]) == (
        record.image, record.previous_image)  # fmt: skip


def test_kubectl_answering_no_json_is_a_clear_error() -> None:
    with pytest.raises(DeployError, match=r"^EKS deployment search/search/indexer: kubectl get answered no JSON"):
        EksDeployer(lambda args: "error: You must be logged in").deploy(RECORD, TARGET, timeout=5)


def test_an_ecr_token_is_fetched_with_the_credentials_the_process_has_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's default session keeps the first credentials it saw: after acting as one role, an ECR login as the next
    would still carry the first role's identity (make bench's second stitch was refused for exactly that)."""
    import boto3

    from pipeline.registry.ecr_auth import ecr_basic_auth

    signed: list[str] = []

    def record(request: Any, **_: Any) -> None:
        signed.append(request.headers["Authorization"].decode().split("Credential=")[1].split("/")[0])
        raise RuntimeError("stop before sending")

    original = boto3.Session.client

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.register("before-send", record)
        return made

    monkeypatch.setattr(boto3.Session, "client", client)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    for key in ("AKIAFIRSTROLE", "AKIASECONDROLE"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        with pytest.raises(RuntimeError):
            ecr_basic_auth("eu-west-1")
    assert signed == ["AKIAFIRSTROLE", "AKIASECONDROLE"]


def test_an_aws_error_no_step_expected_is_one_line_never_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import argparse

    def unexpected(args: Any) -> int:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeStacks")

    parsed = argparse.Namespace(command="validate", run=unexpected)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", lambda self, argv=None: parsed)
    assert main(["validate"]) == 1
    assert capsys.readouterr().err.strip() == (
        "slipway validate: AWS: An error occurred (ThrottlingException) when calling the DescribeStacks operation: "
        "Rate exceeded"
    )
