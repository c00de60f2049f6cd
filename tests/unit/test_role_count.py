"""Roles against IAM's per-account quota (issue #26, part): a pipeline holds one role per CodeBuild job, its own role
and its Source role -- never one per action (CDK's default), which doubled the count."""

from __future__ import annotations

from typing import Any


def test_a_pipeline_holds_one_role_per_job_and_none_per_action(synthesized: dict[str, Any]) -> None:
    template = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    roles = template.find_resources("AWS::IAM::Role")
    # payments/api: the pipeline, Source, Lint, two builds, Stitch, four deploys (Lambda and ECS in dev and prod).
    assert len(roles) == 10, sorted(roles)
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    actions = [a for stage in pipeline["Properties"]["Stages"] for a in stage["Actions"]]
    with_roles = [a["Name"] for a in actions if "RoleArn" in a]
    assert with_roles == ["Source"]  # the approval and every CodeBuild action act as the pipeline's role
