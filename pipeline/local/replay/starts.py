"""CodePipeline's part of the replay: the deployed pipeline definitions in the AWS stand-in, and the executions that
something started through its API (a base's publication, the platform's refresh) for the replay to run.

:func:`apply` is what CloudFormation does with each ``AWS::CodePipeline::Pipeline`` of a deployed stack (create it,
or update its definition -- which starts nothing). :func:`pending` lists the executions started since, each once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.assembly import Pipeline

_CATEGORY = {"CodeStarSourceConnection": "Source", "Manual": "Approval", "CodeBuild": "Build"}


def definition(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as CodePipeline's API holds it: name, role, stages and actions in run order."""
    return {
        "name": pipeline.name,
        "roleArn": pipeline.role,
        "stages": [
            {"name": stage.name, "actions": [
                {"name": a.name, "runOrder": a.run_order,
                 "actionTypeId": {"category": _CATEGORY.get(a.provider, "Build"), "owner": "AWS",
                                  "provider": a.provider, "version": "1"}}
                for a in stage.actions
            ]}
            for stage in pipeline.stages
        ],
    }  # fmt: skip


def apply(pipelines: list[Pipeline], codepipeline: Any) -> None:
    existing = {
        p["name"] for page in codepipeline.get_paginator("list_pipelines").paginate() for p in page["pipelines"]
    }
    for pipeline in pipelines:
        if pipeline.name in existing:
            codepipeline.update_pipeline(pipeline=definition(pipeline))
        else:
            codepipeline.create_pipeline(pipeline=definition(pipeline))


def pending(pipelines: list[Pipeline], codepipeline: Any, handled: Path) -> list[Pipeline]:
    """The pipelines with an execution started through the API that the replay has not run yet (once each, oldest
    start first; several starts of one pipeline are one run, as CodePipeline's superseded mode makes them)."""
    seen = set(json.loads(handled.read_text())) if handled.exists() else set()
    found: list[tuple[str, Pipeline]] = []
    new: set[str] = set()
    for pipeline in pipelines:
        executions = codepipeline.list_pipeline_executions(pipelineName=pipeline.name)["pipelineExecutionSummaries"]
        started = [e for e in executions if e["status"] == "InProgress" and e["pipelineExecutionId"] not in seen]
        if started:
            found.append((min(str(e["startTime"]) for e in started), pipeline))
            new.update(e["pipelineExecutionId"] for e in started)
    handled.parent.mkdir(parents=True, exist_ok=True)
    handled.write_text(json.dumps(sorted(seen | new)))
    return [pipeline for _, pipeline in sorted(found, key=lambda item: item[0])]
