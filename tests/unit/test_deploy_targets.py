"""A deploy target is one type: a fourth kind is one module (here, this test's fake) plus its registration, and the
CLI, the pipeline model, the buildspec and the IAM rendering all pick it up without another change."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from infra.blueprint import BuildStep, DeployStep, PipelineBlueprint
from pipeline.cli import main
from pipeline.config.strategy import Strategy
from pipeline.deployers import DEPLOYERS
from pipeline.deployers.base import DeployError, DeployRecord, Grant, Permission, Verification
from pipeline.records import ImageRecord, PlatformImage, write

INDEX = "sha256:" + "1" * 64
RECORD = ImageRecord(
    "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api", "c0ffee1", INDEX,
    {"linux/amd64": PlatformImage("sha256:" + "2" * 64, 10, "application/vnd.oci.image.manifest.v1+json")},
)  # fmt: skip


@dataclass(frozen=True)
class QueueTarget:
    kind: ClassVar[str] = "queue"
    queue: str
    strategy: Strategy = field(default_factory=Strategy)  # every target says how traffic moves to it: all at once

    @property
    def label(self) -> str:
        return f"queue:{self.queue}"

    def cli_args(self) -> tuple[str, ...]:
        return ("--queue", self.queue)


class QueueDeployer:
    kind: ClassVar[str] = "queue"
    help: ClassVar[str] = "announce the index digest on a queue"
    deployed: ClassVar[list[tuple[str, str]]] = []

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--queue", required=True)

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> QueueDeployer:
        return cls()

    @staticmethod
    def target_from_args(args: argparse.Namespace) -> QueueTarget:
        return QueueTarget(args.queue)

    @staticmethod
    def permissions(target: QueueTarget) -> Sequence[Permission]:
        return (Grant(("sqs:SendMessage",), (f"arn:{{partition}}:sqs:{{region}}:{{account}}:{target.queue}",)),)

    def deploy(self, record: ImageRecord, target: QueueTarget, *, timeout: float) -> DeployRecord:
        self.deployed.append((target.queue, record.index_uri))
        return DeployRecord(target.label, record.index_uri, "", changed=True)


@pytest.fixture
def queue_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DEPLOYERS, QueueDeployer.kind, QueueDeployer)
    QueueDeployer.deployed.clear()


def _deploy_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ImageRecord, Path]:
    """``slipway deploy queue`` of a release the registry serves: the release and the deploy record written."""
    from pipeline.commands import deploy as deploy_command
    from tests.fakes import released

    registry, record = released(RECORD.repository)
    monkeypatch.setattr(deploy_command, "client_for", lambda repo: registry)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    image_json, out = tmp_path / "image.json", tmp_path / "deployed.json"
    write(image_json, record)
    assert main(["deploy", "queue", "--queue", "releases", "--image-json", str(image_json), "--out", str(out)]) == 0
    return record, out


def test_a_new_kind_gets_its_cli_subcommand(queue_kind: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, out = _deploy_queue(tmp_path, monkeypatch)
    assert QueueDeployer.deployed == [("releases", record.index_uri)]
    assert json.loads(out.read_text())["target"] == "queue:releases"


class CheckedQueueDeployer(QueueDeployer):
    """A kind whose deploy proves the digest answered: the deploy leaves that mark on the target."""

    marks: ClassVar[list[tuple[str, str, str]]] = []
    refuse_mark: ClassVar[bool] = False

    def deploy(self, record: ImageRecord, target: QueueTarget, *, timeout: float) -> DeployRecord:
        return replace(super().deploy(record, target, timeout=timeout), verified=Verification(True, "received", 200))

    def record_verified(self, target: QueueTarget, image: str, verified: str) -> None:
        if self.refuse_mark:
            raise DeployError(f"{target.label}: AccessDenied")
        self.marks.append((target.queue, image, verified))


@pytest.mark.parametrize("refused", [False, True])
def test_a_verified_deploy_leaves_its_mark_on_the_target_and_stands_when_it_cannot(
    refused: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(DEPLOYERS, "queue", CheckedQueueDeployer)
    monkeypatch.setattr(CheckedQueueDeployer, "marks", [])
    monkeypatch.setattr(CheckedQueueDeployer, "refuse_mark", refused)
    record, out = _deploy_queue(tmp_path, monkeypatch)
    assert json.loads(out.read_text())["verified"]["check"] == "received"
    if refused:
        assert CheckedQueueDeployer.marks == []
        assert (
            "queue:releases: the verification could not be recorded on the target (queue:releases: AccessDenied)"
            in (capsys.readouterr().err)
        )
    else:
        [(queue, image, mark)] = CheckedQueueDeployer.marks
        digest, when, check = mark.split(" ", 2)
        assert (queue, image, digest, check) == ("releases", record.index_uri, record.index_digest, "received 200")
        assert when.endswith("Z")


def test_a_new_kind_renders_its_stage_buildspec_and_grants(queue_kind: None, tmp_path: Path) -> None:
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Match, Template

    from infra.image_repository import ImageRepository, ImageRepositoryProps
    from infra.jobs import JobSettings
    from infra.service_pipeline import ServicePipeline, ServicePipelineProps
    from infra.team_roles import TeamRoles, TeamRolesProps

    stack = Stack(App(), "Queue", env=Environment(account="111111111111", region="eu-west-1"))
    blueprint = PipelineBlueprint(
        team="payments", service="api", repository_name="payments/api", source_repo="acme/api", branch="main",
        dockerfile="Dockerfile", context=".", file_paths=(), secrets=(),
        builds=(BuildStep("linux/amd64", "x86"),), deploys=(DeployStep(QueueTarget("releases"), False),),
    )  # fmt: skip
    key = kms.Key(stack, "Key")
    artifacts = s3.Bucket(stack, "Artifacts", encryption_key=key)
    connection = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b5d4e2a-6f1c-4a8e-9d3b-2c7f1e8a9b40"
    roles = TeamRoles(stack, "Team", TeamRolesProps(team="payments", connection_arn=connection,
                                                   jobs=JobSettings("slipway/runner:t@sha256:" + "0" * 64, key), artifact_bucket=artifacts))  # fmt: skip
    ServicePipeline(
        stack,
        "Pipeline",
        ServicePipelineProps(
            blueprint=blueprint,
            repository=ImageRepository(
                stack, "Repo", ImageRepositoryProps(repository_name="payments/api", team="payments")
            ),
            roles=roles,
        ),
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {"Source": {"BuildSpec": Match.serialized_json(Match.object_like({"phases": Match.object_like({
            "build": {"commands": ["slipway deploy queue --image-json image.json --queue releases --out deployed-queue.json"]}
        })}))}},
    )  # fmt: skip
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sqs:eu-west-1:111111111111:releases"]]},
        })])}},
    )  # fmt: skip
    stages: Any = template.find_resources("AWS::CodePipeline::Pipeline")
    [pipeline] = stages.values()
    assert [s["Name"] for s in pipeline["Properties"]["Stages"]][-1] == "Deploy"


def test_an_unregistered_kind_is_refused_at_construction(tmp_path: Path) -> None:
    from aws_cdk import App, Stack

    from infra.service_pipeline import ServicePipeline

    blueprint = PipelineBlueprint(
        team="payments", service="api", repository_name="payments/api", source_repo="acme/api", branch="main",
        dockerfile="Dockerfile", context=".", file_paths=(), secrets=(),
        builds=(BuildStep("linux/amd64", "x86"),), deploys=(DeployStep(QueueTarget("releases"), False),),
    )  # fmt: skip
    props: Any = type("Props", (), {"blueprint": blueprint})()
    with pytest.raises(ValueError, match=r"blueprint.deploys\[0\].target: kind 'queue' has no deployer"):
        ServicePipeline(Stack(App(), "S"), "Pipeline", props)
