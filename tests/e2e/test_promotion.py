"""Promotion stops at the first environment whose check fails: a release that does not answer in dev never reaches
prod, which keeps serving the digest it had (issue #18)."""

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


def _commit(local: LocalState, content: str, message: str) -> None:
    path = sources.repository_path(local.git_root, "acme/payments-api")
    (path / SERVICE).write_text(content)
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
        statuses = {(a["stage"], a["action"]): a["status"] for a in report["actions"]}
        assert statuses[("Stitch", "Stitch")] == "Succeeded"  # a new release was published...
        assert statuses[("Deploy-dev", "Deploy-lambda")] == "Failed"  # ...and did not answer in dev
        assert not [key for key in statuses if key[0] == "Deploy-prod"], statuses  # prod never started
        after = _serving(local)
        assert after[PROD] == before[PROD]
        assert after[DEV][0] == before[DEV][0]  # the alias only moves once the new version answered
    finally:
        _commit(local, original, "health answers 200 again")
