"""Issue #33: one deploy path. Each deploy action's own command line from cdk.out, run as its CodeBuild project's role
against the stand-ins *without* any local switch (no ``SLIPWAY_LOCAL_STANDINS``), changes its target in the account
and region of its environment and records them -- the code the cloud runs, unchanged. Before the fix, the dev Lambda
deploy acted with the platform account's job role (boto3's cached default session), so ``--role-arn`` had no effect.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import assembly
from pipeline.config import load
from pipeline.local import runner
from pipeline.local.aws import PLACEHOLDER
from pipeline.local.replay import executor, sources
from pipeline.local.state import LocalState
from tests.conftest import EXAMPLE
from tests.e2e.test_local_pipeline import DEV, PROD, PROD_REGION, REGISTRY_OF, alias_image, in_account

pytestmark = pytest.mark.e2e
PLATFORM = "111111111111"
REGION = "eu-west-1"


def _stitched(local: LocalState, pipeline: str) -> Path:
    """The ``image`` artifact of the pipeline's last Stitch (what every deploy action of it is given)."""
    runs = sorted((local.directory / "executions" / pipeline).glob("*/Stitch/Stitch/output/image.json"))
    assert runs, f"{pipeline}: no stitched release"
    return runs[-1].parent


def _reset(local: LocalState, account: str, function: str) -> str:
    """The function's alias back on the placeholder it was created with, so the cloud command has something to
    change (the function's tags keep the same placeholder as the first deploy's rollback target)."""
    lam = in_account(local, "lambda", account)
    placeholder = f"{REGISTRY_OF[account]}/payments/api@{PLACEHOLDER}"
    lam.update_function_code(FunctionName=function, ImageUri=placeholder)
    version = lam.publish_version(FunctionName=function, Description=placeholder)["Version"]
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion=version)
    assert alias_image(lam) == placeholder
    return placeholder


def _run_deploy_actions(local: LocalState, tmp_path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """Each deploy action of the two service pipelines, run as CodeBuild runs it, without the local switch."""
    context = runner._context(local, approve=True, config=load(EXAMPLE))
    context.environment.pop("SLIPWAY_LOCAL_STANDINS")  # the cloud's command, with nothing local switched on
    context.runs = tmp_path
    before = {account: _reset(local, account, "payments-api") for account in (DEV, PROD)}
    pipelines = {p.name: p for p in assembly.load(local.directory / "cdk.out")}
    ran: dict[str, dict[str, str]] = {}
    for name in ("slipway-payments-api", "slipway-search-indexer"):
        pipeline = pipelines[name]
        run = executor.Execution(pipeline, sources.Revision(name, "main", "0" * 40, "", ""), tmp_path / name)
        run.artifacts["image"] = _stitched(local, name)
        for stage, action in pipeline.actions():
            if not stage.name.startswith("Deploy") or action.provider != "CodeBuild":
                continue
            status, detail = executor._codebuild(run, stage, action, context)
            assert status == "Succeeded", f"{name} {stage.name}/{action.name}: {detail}"
            [record] = (run.directory / stage.name / action.name / "output").glob("deployed-*.json")
            ran[f"{name} {stage.name}/{action.name}"] = json.loads(record.read_text())
    return ran, before


def test_every_deploy_action_runs_its_cloud_command_line_and_acts_in_its_environments_account(
    local: LocalState, tmp_path: Path
) -> None:
    with runner._acting_for(local):  # the replay's process, as `slipway local run` sets it up
        ran, before = _run_deploy_actions(local, tmp_path)
    # Each record names the account its environment is in (the platform's own for services without environments).
    accounts = {key: (record["environment"], record["account"]) for key, record in ran.items()}
    assert accounts == {
        "slipway-payments-api Deploy-dev/Deploy-lambda": ("dev", DEV),
        "slipway-payments-api Deploy-dev/Deploy-ecs": ("dev", DEV),
        "slipway-payments-api Deploy-prod/Deploy-lambda": ("prod", PROD),
        "slipway-payments-api Deploy-prod/Deploy-ecs": ("prod", PROD),
        "slipway-search-indexer Deploy/Deploy-ecs": ("", ""),
        "slipway-search-indexer Deploy/Deploy-eks": ("", ""),
    }
    # ...and the targets changed there: each Lambda alias moved back to the release, verified through Lambda's Invoke
    # (the stand-in runs the version's image), in its own account and region only.
    image = json.loads((_stitched(local, "slipway-payments-api") / "image.json").read_text())
    for account, environment, region in ((DEV, "dev", REGION), (PROD, "prod", PROD_REGION)):
        child = f"{REGISTRY_OF[account]}/payments/api@{image['platforms']['linux/arm64']['digest']}"
        record = ran[f"slipway-payments-api Deploy-{environment}/Deploy-lambda"]
        assert (record["changed"], record["image"], record["previous_image"]) == (True, child, before[account])
        assert record["verified"] == {"ok": True, "check": "invoke", "status": 200, "machine": "aarch64"}
        lam = in_account(local, "lambda", account)
        assert alias_image(lam) == child and lam.meta.region_name == region
    platform_functions = in_account(local, "lambda", PLATFORM).list_functions()["Functions"]
    assert "payments-api" not in {f["FunctionName"] for f in platform_functions}  # nothing landed in the platform
