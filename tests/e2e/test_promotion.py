"""Promotion stops at the first environment whose check fails: a release that does not answer in dev never reaches
prod, which keeps serving the digest it had (issue #18); nor does one that answers its smoke event but fails under
traffic, which dev's canary catches and the stage's rollback undoes (#29)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from pipeline.commands.local import run
from pipeline.local.replay import sources
from pipeline.local.state import LocalState
from tests.conftest import EXAMPLE
from tests.e2e.test_local_pipeline import DEV, PROD, alias_image, in_account

pytestmark = pytest.mark.e2e
SERVICE = "app/service.py"


def _serving(local: LocalState) -> dict[str, tuple[str, str]]:
    """What each environment serves: the Lambda alias's image and the ECS service's task image."""
    found = {}
    for account in (DEV, PROD):
        image = alias_image(in_account(local, "lambda", account))
        ecs = in_account(local, "ecs", account)
        service = ecs.describe_services(cluster="payments", services=["api"])["services"][0]
        task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        found[account] = (image, task["containerDefinitions"][0]["image"])
    return found


def _commit(local: LocalState, content: str, message: str, file: str = SERVICE) -> None:
    path = sources.repository_path(local.git_root, "acme/payments-api")
    (path / file).write_text(content)
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost"}  # fmt: skip
    subprocess.run(["git", "commit", "--quiet", "--all", "-m", message], cwd=path, check=True,
                   env={**os.environ, **identity})  # fmt: skip


def test_a_release_failing_its_dev_check_never_reaches_prod(local: LocalState, capsys: Any) -> None:
    before = _serving(local)
    path = sources.repository_path(local.git_root, "acme/payments-api") / SERVICE
    original = path.read_text()
    _commit(local, original.replace("return 200, {", "return 500, {"), "health answers 500")
    try:
        assert run(state_dir=local.directory, config_path=EXAMPLE, service="payments/api", approve=True,
                   as_json=True) == 1  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        # The execution's own actions (the stage's rollback runs in an execution of its own).
        statuses = {(a["stage"], a["action"]): a["status"] for a in report["actions"]
                    if not a["execution"].endswith("-rollback")}  # fmt: skip
        assert statuses[("Stitch", "Stitch")] == "Succeeded"  # a new release was published...
        assert statuses[("Deploy-dev", "Deploy-lambda")] == "Failed"  # ...and did not answer in dev
        assert not [key for key in statuses if key[0] == "Deploy-prod"], statuses  # prod never started
        # The stage's rollback finds the previous release serving, and its check invokes the alias: the previous
        # version's image answers, not the failed release's (a version keeps its code; moto's did not).
        back = {
            (a["stage"], a["action"]): a["status"] for a in report["actions"] if a["execution"].endswith("-rollback")
        }
        assert back == {("Deploy-dev", "Deploy-ecs"): "Succeeded", ("Deploy-dev", "Deploy-lambda"): "Succeeded"}, back
        after = _serving(local)
        assert after[PROD] == before[PROD]
        assert after[DEV][0] == before[DEV][0]  # the alias only moves once the new version answered
    finally:
        _commit(local, original, "health answers 200 again")


HANDLER = "app/handler.py"
FAILING_OFF_HEALTH = """    if event.get("path") != "/health":  # a release that fails on every path but its smoke event's
        raise RuntimeError("payments are down")
    status, body = health()
"""


def test_a_release_failing_under_traffic_is_caught_at_the_canary_and_the_stage_rolls_back(
    local: LocalState, capsys: Any
) -> None:
    """Its smoke event (/health) passes; the traffic stand-in's first request to the 10 % canary (/) fails, CloudWatch
    (the stand-in) sets dev's alarm off, the bake reads it: all traffic back on the previous version, the deploy
    fails saying so, prod is never touched, and the stage's rollback deploys the previous release to dev again --
    ECS too, which had taken the bad release."""
    before = _serving(local)
    path = sources.repository_path(local.git_root, "acme/payments-api") / HANDLER
    original = path.read_text()
    assert "    status, body = health()\n" in original
    _commit(local, original.replace("    status, body = health()\n", FAILING_OFF_HEALTH), "fail off /health", HANDLER)
    try:
        assert run(state_dir=local.directory, config_path=EXAMPLE, service="payments/api", approve=True,
                   as_json=True) == 1  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        forward = [a for a in report["actions"] if not a["execution"].endswith("-rollback")]
        back = [a for a in report["actions"] if a["execution"].endswith("-rollback")]
        statuses = {(a["stage"], a["action"]): a["status"] for a in forward}
        assert statuses[("Stitch", "Stitch")] == "Succeeded"
        assert statuses[("Deploy-dev", "Deploy-lambda")] == "Failed"
        assert statuses[("Deploy-dev", "Deploy-ecs")] == "Succeeded"  # ECS took the bad release...
        assert not [key for key in statuses if key[0] == "Deploy-prod"], statuses  # prod never started
        # ...and the stage's rollback (CodePipeline's OnFailure ROLLBACK) put the previous release back on both.
        assert sorted((a["stage"], a["action"], a["status"]) for a in back) == [
            ("Deploy-dev", "Deploy-ecs", "Succeeded"), ("Deploy-dev", "Deploy-lambda", "Succeeded"),
        ]  # fmt: skip
        assert _serving(local) == before
        lam = in_account(local, "lambda", DEV)
        alias = lam.get_alias(FunctionName="payments-api", Name="live")
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")  # 100 % on the previous one
        # What the failed deploy wrote: what serves now, and why.
        execution = next(a["execution"] for a in forward if a["action"] == "Deploy-lambda")
        workspace = local.directory / "executions" / "slipway-payments-api" / execution / "Deploy-dev" / "Deploy-lambda"
        (written,) = workspace.rglob("deployed-dev-lambda.json")
        record = json.loads(written.read_text())
        assert (record["image"], record["changed"]) == (before[DEV][0], False)
        assert record["strategy"]["outcome"] == "rolled back"
        assert record["strategy"]["reason"] == "rolled back at 10 %: alarm payments-api-dev-errors in ALARM"
        assert record["strategy"]["steps"][0]["percent"] == 10
        assert record["strategy"]["steps"][0]["alarm_state"] == "ALARM"
    finally:
        _commit(local, original, "every path answers again", HANDLER)
