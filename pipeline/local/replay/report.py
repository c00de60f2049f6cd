"""What a replay did: the actions' results, the deployments the deploy actions recorded, and its run times."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import assembly, records
from pipeline.deployers.base import DeployRecord
from pipeline.local.replay import authorize, executor


@dataclass
class Report:
    actions: list[executor.ActionResult] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    assembly: Path = Path()
    notifications: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """What each team's topic delivered during the run: ``topic name -> [{subject, message}]``."""
    latest: dict[str, bool] = field(default_factory=dict)
    """Whether each pipeline's latest execution succeeded: an execution that failed waiting for a base and then
    succeeded when the base's publication started it again is not a failure of the run."""

    @property
    def failed(self) -> list[executor.ActionResult]:
        return [a for a in self.actions if a.status != "Succeeded" and not self.latest.get(a.pipeline, False)]

    def json(self) -> dict[str, Any]:
        return {"actions": [a.row() for a in self.actions], "deployments": self.deployments,
                "notifications": self.notifications}  # fmt: skip


def deployments(
    pipeline: assembly.Pipeline, execution: executor.Execution, state: Path, via: str = ""
) -> list[dict[str, Any]]:
    """What the deploy actions wrote, kept under ``runs/<team>-<service>/`` next to image.json; also what a failed
    deploy wrote before it failed (a shift rolled back: what serves, and why), and what the stage's rollback deployed
    (``via`` says which)."""
    kept = state / "runs" / pipeline.name.removeprefix("slipway-")
    found = []
    written = [(name, path) for name, directory in execution.artifacts.items() if name.startswith("deployed_")
               for path in sorted(directory.glob("deployed-*.json"))]  # fmt: skip
    failed = [r for r in execution.results if r.status == "Failed" and r.action.startswith("Deploy-")]
    written += [
        ("", path)
        for r in failed
        for path in sorted((execution.directory / r.stage / r.action).rglob("deployed-*.json"))
        if records.finished(path)  # a deploy that failed before it changed anything has nothing to say
    ]
    if "image" in execution.artifacts:
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy2(execution.artifacts["image"] / "image.json", kept / "image.json")
    for name, path in written:
        record = DeployRecord.load(path)
        if name:
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, kept / path.name)
        verified = asdict(record.verified) if record.verified else None
        account = record.account or authorize.current(state / "cdk.out").account
        found.append({"service": pipeline.name.removeprefix("slipway-"), "environment": record.environment,
                      "account": account, "target": record.target, "image": record.image, "verified": verified,
                      "strategy": record.strategy, "via": via if name else "failed deploy"})  # fmt: skip
    rendered = list(execution.directory.glob("*/*/src/deployment.json"))
    for path in rendered:
        shutil.copy2(path, kept / "deployment.json")
    if execution.rollback is not None:  # the stage's rollback: the previous release, deployed again
        found += deployments(pipeline, execution.rollback, state, via="stage rollback")
    return found


def record_timing(state: Path, seconds: float) -> str:
    """Keep run times; describe this run against the first one (the registry cache at work)."""
    path = state / "runs" / "history.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({"seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=2))
    if len(history) == 1:
        return f"run took {seconds:.1f}s (first run: cold cache)"
    first = history[0]["seconds"]
    return f"run took {seconds:.1f}s vs {first:.1f}s the first time ({first / max(seconds, 0.1):.1f}x faster, registry cache reused)"
