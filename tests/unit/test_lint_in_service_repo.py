"""The Lint action runs in the *service's* repository, which has no platform.toml: the allowed registries must come
with the command the pipeline runs, or every base fails SW001 ("allowed: none configured")."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from tests.conftest import ROOT

PAYMENTS = "Slipway-Acme-Pipelines-payments-1"


def lint_job(template: Any) -> tuple[list[str], dict[str, str]]:
    for resource in template.find_resources("AWS::CodeBuild::Project").values():
        props = resource["Properties"]
        [command] = json.loads(props["Source"]["BuildSpec"])["phases"]["build"]["commands"]
        if command.startswith("slipway lint"):
            env = {
                e["Name"]: e["Value"]
                for e in props["Environment"]["EnvironmentVariables"]
                if isinstance(e.get("Value"), str)
            }
            return shlex.split(command)[1:], env
    raise AssertionError("no lint job")


def test_the_synthesized_lint_job_passes_in_a_checkout_of_the_service_alone(
    synthesized: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, env = lint_job(synthesized["templates"][PAYMENTS])
    checkout = tmp_path / "payments-api"
    shutil.copytree(ROOT / "examples" / "web", checkout)
    monkeypatch.chdir(checkout)
    # The lock as it is once the base pipelines have published and `slipway bases update` has pinned them.
    published = {key: f"payments/bases/{name}:{'c' * 40}@sha256:{'1' * 64}"
                 for key, name in (("BASE_PYTHON_BUILD", "python-build"), ("BASE_LAMBDA_PYTHON", "lambda-python"))}  # fmt: skip
    # (What the job reads from the lock store when it runs; here given as SLIPWAY_BASE_LOCK, the store's path unset.)
    assert env["SLIPWAY_LOCK_PARAMETERS"] == "/slipway/acme/lock/"
    committed = json.loads((ROOT / "images" / "lock.json").read_text())
    monkeypatch.setenv("SLIPWAY_BASE_LOCK", json.dumps(committed | published))
    assert not (checkout / "platform.toml").exists()
    code = main(argv)
    assert code == 0, capsys.readouterr().out
