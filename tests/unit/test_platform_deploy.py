"""The platform deploying itself (issue #25, item 1): what `slipway platform deploy` starts after it deployed -- the
pipelines whose definition changed, once -- and its cloud backend (CloudFormation's templates, the CDK CLI)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import platform_deploy
from pipeline.cdk_cli import CdkCli, CdkDeployError
from pipeline.cli import main

PAYMENTS = "slipway-payments-api"


def templates_only(synthesized: dict[str, Any], into: Path) -> Path:
    """The assembly's manifest and templates (what the definitions are read from), in a directory of its own."""
    source = Path(synthesized["assembly"].directory)
    into.mkdir(parents=True, exist_ok=True)
    for path in [source / "manifest.json", *source.glob("*.template.json")]:
        shutil.copy(path, into / path.name)
    return into


def edit_projects(directory: Path, pipeline_stack: str, change: Any) -> None:
    """Apply ``change`` to the EnvironmentVariables of every CodeBuild project of the stacks named like it."""
    for path in directory.glob(f"{pipeline_stack}*.template.json"):
        template = json.loads(path.read_text())
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::CodeBuild::Project":
                change(resource["Properties"]["Environment"].setdefault("EnvironmentVariables", []))
        path.write_text(json.dumps(template))


def test_every_pipeline_has_a_definition_and_a_new_runner_image_changes_none(
    synthesized: dict[str, Any], tmp_path: Path
) -> None:
    """A new runner reaches each pipeline at its next run: the platform's deploy starts none for it alone."""
    before = platform_deploy.definitions(templates_only(synthesized, tmp_path / "a"))
    assert {"slipway-platform", PAYMENTS, "slipway-search-indexer"} <= set(before)
    moved = templates_only(synthesized, tmp_path / "b")
    for path in moved.glob("Slipway-Acme-*.template.json"):
        template = json.loads(path.read_text())
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::CodeBuild::Project":
                resource["Properties"]["Environment"]["Image"] = (
                    "111111111111.dkr.ecr.eu-west-1.amazonaws.com/slipway/runner@sha256:" + "0" * 64
                )
        path.write_text(json.dumps(template))
    assert platform_deploy.definitions(moved) == before


def test_a_changed_project_changes_only_its_pipeline(synthesized: dict[str, Any], tmp_path: Path) -> None:
    before = platform_deploy.definitions(templates_only(synthesized, tmp_path / "a"))
    changed = templates_only(synthesized, tmp_path / "b")
    edit_projects(changed, "Slipway-Acme-Pipelines-payments", lambda v: v.append({"Name": "NEW", "Value": "1"}))
    outcome = platform_deploy.compare(before, platform_deploy.definitions(changed))
    assert outcome.started == (PAYMENTS,)
    assert outcome.created == () and PAYMENTS not in outcome.unchanged


class FakeStacks:
    def __init__(self, deployed: Path, fail: bool = False) -> None:
        self.location, self.fail, self.calls = deployed, fail, []  # type: ignore[var-annotated]

    def deployed(self, assembly_dir: Path, into: Path) -> Path:
        self.calls.append("deployed")
        return self.location

    def deploy(self, assembly_dir: Path) -> None:
        self.calls.append("deploy")
        if self.fail:
            raise CdkDeployError("cdk deploy --all: exit 1")


class FakeCodePipeline:
    def __init__(self) -> None:
        self.started: list[dict[str, str]] = []

    def start_pipeline_execution(self, **kwargs: str) -> dict[str, str]:
        self.started.append(kwargs)
        return {"pipelineExecutionId": "1"}


def test_the_deploy_starts_each_changed_pipeline_once_after_deploying_and_no_new_one(
    synthesized: dict[str, Any], tmp_path: Path
) -> None:
    deployed = templates_only(synthesized, tmp_path / "deployed")
    edit_projects(deployed, "Slipway-Acme-Pipelines-payments", lambda v: v.append({"Name": "OLD", "Value": "1"}))
    template = next(deployed.glob("Slipway-Acme-Pipelines-search*.template.json"))
    template.write_text(json.dumps({"Resources": {}}))  # the indexer's pipeline is new to this deploy
    stacks, codepipeline = FakeStacks(deployed), FakeCodePipeline()
    outcome = platform_deploy.deploy(Path(synthesized["assembly"].directory), stacks, codepipeline, tmp_path / "s")
    assert stacks.calls == ["deployed", "deploy"]
    assert [s["name"] for s in codepipeline.started] == [PAYMENTS] == list(outcome.started)
    assert codepipeline.started[0]["clientRequestToken"].startswith("definition-")
    assert "slipway-search-indexer" in outcome.created  # CodePipeline starts it on creation
    again = FakeCodePipeline()
    platform_deploy.deploy(Path(synthesized["assembly"].directory), stacks, again, tmp_path / "s")
    assert again.started == codepipeline.started  # a retry carries the same token: CodePipeline starts it once


def test_a_failed_deploy_starts_nothing(synthesized: dict[str, Any], tmp_path: Path) -> None:
    deployed = templates_only(synthesized, tmp_path / "deployed")
    edit_projects(deployed, "Slipway-Acme-Pipelines-payments", lambda v: v.append({"Name": "OLD", "Value": "1"}))
    codepipeline = FakeCodePipeline()
    with pytest.raises(CdkDeployError):
        platform_deploy.deploy(Path(synthesized["assembly"].directory), FakeStacks(deployed, fail=True),
                               codepipeline, tmp_path / "s")  # fmt: skip
    assert codepipeline.started == []


class FakeCloudFormation:
    def __init__(self, templates: dict[str, Any]) -> None:
        self.templates = templates

    def get_template(self, StackName: str, TemplateStage: str) -> dict[str, Any]:
        assert TemplateStage == "Original"
        if StackName not in self.templates:
            error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
            raise ClientError(error, "GetTemplate")  # type: ignore[arg-type]
        return {"TemplateBody": json.dumps(self.templates[StackName])}


def test_the_cloud_reads_each_deployed_template_where_its_stack_lives(
    synthesized: dict[str, Any], tmp_path: Path
) -> None:
    source = Path(synthesized["assembly"].directory)
    registry = json.loads((source / "Slipway-Acme-Platform.template.json").read_text())
    asked: list[tuple[str, str]] = []

    def cloudformation_in(account: str, region: str) -> FakeCloudFormation:
        asked.append((account, region))
        return FakeCloudFormation({"Slipway-Acme-Platform": registry})

    cli = CdkCli(checkout=tmp_path, cloudformation_in=cloudformation_in)
    deployed = platform_deploy.definitions(cli.deployed(source, tmp_path / "deployed"))
    assert set(deployed) == {"slipway-platform"}  # every other stack is not deployed yet
    assert deployed["slipway-platform"] == platform_deploy.definitions(source)["slipway-platform"]
    assert ("222222222222", "eu-west-1") in asked and ("111111111111", "eu-west-1") in asked


def test_the_cloud_deploys_with_the_pinned_cdk_cli_and_names_the_failed_step(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 1 if command[1] == "deploy" else 0)

    with pytest.raises(CdkDeployError, match="cdk deploy --all: exit 1"):
        CdkCli(checkout=tmp_path, cloudformation_in=lambda a, r: None, run=run, cli_home=tmp_path / "none").deploy(
            tmp_path / "cdk.out"
        )
    assert ran[0] == ["npm", "ci", "--no-audit", "--no-fund"]
    assert ran[1][:3] == [str(tmp_path / "node_modules" / ".bin" / "cdk"), "deploy", "--all"]
    assert "--require-approval" in ran[1] and ran[1][ran[1].index("--app") + 1] == str(tmp_path / "cdk.out")


def test_a_bad_platform_toml_stops_the_deploy_before_anything_is_synthesized(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "platform.toml"
    bad.write_text('[platform]\nname = "acme"\n')
    assert main(["platform", "deploy", "--config", str(bad), "--outdir", str(tmp_path / "out")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _cli_home(home: Path, version: str) -> Path:
    (home / "node_modules" / ".bin").mkdir(parents=True)
    (home / "node_modules" / ".bin" / "cdk").write_text("")
    lock = {"packages": {"node_modules/aws-cdk": {"version": version, "integrity": "sha512-x"}}}
    (home / "package-lock.json").write_text(json.dumps(lock))
    return home


def test_in_the_runner_the_cloud_deploys_with_its_cdk_cli_and_fetches_nothing(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    checkout = _cli_home(tmp_path / "checkout", "2.1148.1")
    home = _cli_home(tmp_path / "runner", "2.1148.1")
    CdkCli(checkout=checkout, cloudformation_in=lambda a, r: None, run=run, cli_home=home).deploy(tmp_path / "cdk.out")
    assert [c[:3] for c in ran] == [[str(home / "node_modules" / ".bin" / "cdk"), "deploy", "--all"]]


def test_a_checkout_pinning_another_cdk_cli_than_the_runners_stops_before_deploying(tmp_path: Path) -> None:
    checkout = _cli_home(tmp_path / "checkout", "2.1200.0")
    home = _cli_home(tmp_path / "runner", "2.1148.1")
    cli = CdkCli(checkout=checkout, cloudformation_in=lambda a, r: None, run=lambda *a, **k: None, cli_home=home)
    with pytest.raises(CdkDeployError) as raised:
        cli.deploy(tmp_path / "cdk.out")
    assert str(raised.value) == (
        "package-lock.json pins the CDK CLI 2.1200.0, the runner holds 2.1148.1: bootstrap a runner from this "
        "checkout (`slipway runner bootstrap`) and commit its lock entries first"
    )
