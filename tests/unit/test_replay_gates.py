"""The replay's stage gates (#29), as CodePipeline runs them: a stage whose entry condition fails runs nothing and ends
the execution; a deploy stage that fails rolls back -- a new execution of that stage alone, with the artifacts of the
last execution that succeeded in it -- and one that never succeeded has nothing to roll back to."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline import assembly
from pipeline.assembly import Action, Pipeline, Rule, Stage
from pipeline.local.replay import executor, sources
from tests.unit.test_replay import _context, _project

GATE = "arn:aws:iam::222222222222:role/slipway-gate-payments-dev"
ALARM = Rule("dev-alarm-1", "CloudWatchAlarm", {"AlarmName": "errors"}, "eu-west-1", GATE)


def _gated(*, entry: bool = False) -> Pipeline:
    """Source → Build (the commit and app.txt) → Deploy, which refuses a build whose app.txt says ``bad``."""
    build = _project({"build": {"commands": ['cp app.txt built.txt', 'echo "$COMMIT" >> built.txt']}},
                     artifacts={"files": ["built.txt"]})  # fmt: skip
    deploy = _project({"build": {"commands": ["! grep -q bad built.txt", "cp built.txt deployed.txt"]}},
                      artifacts={"files": ["deployed.txt"]})  # fmt: skip
    env = json.dumps([{"name": "COMMIT", "type": "PLAINTEXT", "value": "#{Source_NS.CommitId}"}])
    source = Action("Source", "CodeStarSourceConnection", 1, (), ("source",),
                    {"FullRepositoryId": "acme/svc", "BranchName": "main"}, "arn:aws:iam::1:role/p", "Source_NS")  # fmt: skip
    stages = (
        Stage("Source", (source,)),
        Stage("Build", (Action("Build", "CodeBuild", 1, ("source",), ("built",),
                               {"ProjectName": "build", "EnvironmentVariables": env}, "arn:aws:iam::1:role/b"),)),
        Stage("Deploy", (Action("Deploy", "CodeBuild", 1, ("built",), ("deployed",), {"ProjectName": "deploy"},
                                "arn:aws:iam::1:role/d"),),
              before_entry=(("FAIL", (ALARM,)),) if entry else (), on_failure="ROLLBACK"),
    )  # fmt: skip
    return Pipeline("gated", "Stack", "arn:aws:iam::1:role/pipeline", stages,
                    projects={"build": build, "deploy": deploy})  # fmt: skip


def _push(tmp_path: Path, content: str) -> sources.Revision:
    folder = tmp_path / "checkout" / "svc"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.txt").write_text(content)
    return sources.seed_repository(tmp_path / "git", "acme/svc", "main", tmp_path / "checkout", "svc")


@pytest.fixture(autouse=True)
def _tracked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "_tracked_files", lambda checkout, name: ["app.txt"])


def test_a_failed_deploy_stage_rolls_back_to_the_last_release_that_succeeded_there(tmp_path: Path) -> None:
    context = _context(tmp_path, approve=True)
    good = _push(tmp_path, "v1")
    assert executor.execute(_gated(), good, context).succeeded
    bad = _push(tmp_path, "bad")
    run = executor.execute(_gated(), bad, context)
    assert [(r.stage, r.action, r.status) for r in run.results][-1] == ("Deploy", "Deploy", "Failed")
    assert run.rollback is not None
    assert [(r.stage, r.action, r.status) for r in run.rollback.results] == [("Deploy", "Deploy", "Succeeded")]
    assert run.rollback.revision == good and run.rollback.directory.name.endswith("-rollback")
    # The previous release went out again: the build of the good commit, not a rebuild.
    assert (run.rollback.artifacts["deployed"] / "deployed.txt").read_text() == f"v1{good.commit}\n"


def test_a_stage_that_never_succeeded_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    run = executor.execute(_gated(), _push(tmp_path, "bad"), _context(tmp_path, approve=True))
    assert not run.succeeded and run.rollback is None


def test_a_stage_whose_entry_condition_fails_runs_nothing_and_ends_the_execution(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def enter(pipeline: Pipeline, stage: Stage) -> str:
        asked.append((pipeline.name, stage.name))
        return "rule dev-alarm-1: alarm errors in eu-west-1 is in ALARM"

    context = replace(_context(tmp_path, approve=True), enter=enter)
    run = executor.execute(_gated(entry=True), _push(tmp_path, "v1"), context)
    assert asked == [("gated", "Deploy")]  # only a stage with conditions is asked about
    last = run.results[-1]
    assert (last.stage, last.action, last.status, last.role) == ("Deploy", "BeforeEntry", "Failed", "pipeline")
    assert "errors in eu-west-1 is in ALARM" in last.detail
    assert "deployed" not in run.artifacts and run.rollback is None  # nothing ran, nothing to roll back


def test_entry_conditions_nobody_evaluates_keep_the_stage_shut(tmp_path: Path) -> None:
    run = executor.execute(_gated(entry=True), _push(tmp_path, "v1"), _context(tmp_path, approve=True))
    assert run.results[-1].detail == "its entry conditions are not evaluated here"
    assert "deployed" not in run.artifacts


def test_the_assembly_carries_the_stage_gates(synthesized: dict[str, Any]) -> None:
    pipelines = {p.name: p for p in assembly.load(Path(synthesized["assembly"].directory))}
    stages = {s.name: s for s in pipelines["slipway-payments-api"].stages}
    assert stages["Deploy-prod"].before_entry == (
        (
            "FAIL",
            (Rule("dev-alarm-1", "CloudWatchAlarm", {"AlarmName": "payments-api-dev-errors"}, "eu-west-1", GATE),),
        ),
    )
    assert stages["Deploy-dev"].before_entry == ()
    assert (stages["Deploy-dev"].on_failure, stages["Deploy-prod"].on_failure, stages["Build"].on_failure) == (
        "ROLLBACK", "ROLLBACK", ""
    )  # fmt: skip


def test_the_report_shows_what_a_failed_deploy_wrote_and_what_the_rollback_deployed(tmp_path: Path) -> None:
    from pipeline.deployers.base import DeployRecord
    from pipeline.local.replay.report import deployments
    from pipeline.records import reserve, write

    good = f"acme/api@sha256:{'a' * 64}"
    stopped = {"kind": "canary", "steps": [{"percent": 10, "seconds": 20, "alarm_state": "ALARM"}],
               "outcome": "rolled back", "reason": "rolled back at 10 %: alarm e in ALARM"}  # fmt: skip
    pipeline = Pipeline("slipway-team-api", "S", "arn:aws:iam::1:role/p", ())
    run = executor.Execution(pipeline, _push(tmp_path, "v1"), tmp_path / "runs" / "one")
    workspace = run.directory / "Deploy-dev" / "Deploy-lambda" / "src"
    workspace.mkdir(parents=True)
    write(workspace / "deployed-dev-lambda.json",
          DeployRecord("fn", good, good, changed=False, environment="dev", account="2", strategy=stopped))  # fmt: skip
    run.results.append(executor.ActionResult(pipeline.name, "Deploy-dev", "Deploy-lambda", "d", "Failed", 1.0))
    # A deploy that failed before it changed anything (its version never answered) left only its placeholder.
    unfinished = run.directory / "Deploy-dev" / "Deploy-ecs" / "src"
    unfinished.mkdir(parents=True)
    reserve(unfinished / "deployed-dev-ecs.json", "deploy of ecs:payments/api")
    run.results.append(executor.ActionResult(pipeline.name, "Deploy-dev", "Deploy-ecs", "d", "Failed", 1.0))
    run.rollback = executor.Execution(pipeline, run.revision, tmp_path / "runs" / "one-rollback")
    artifact = tmp_path / "runs" / "one-rollback" / "out"
    artifact.mkdir(parents=True)
    write(artifact / "deployed-dev-lambda.json", DeployRecord("fn", good, good, changed=False, environment="dev",
                                                              account="2"))  # fmt: skip
    run.rollback.artifacts["deployed_dev_lambda"] = artifact
    rows = deployments(pipeline, run, tmp_path)
    assert [(r["image"], r["strategy"], r["via"]) for r in rows] == [
        (good, stopped, "failed deploy"), (good, None, "stage rollback")
    ]  # fmt: skip
    # Only what an action handed on is kept as the service's last record: the rollback's, not the failed one's.
    assert json.loads((tmp_path / "runs" / "team-api" / "deployed-dev-lambda.json").read_text())["strategy"] is None
