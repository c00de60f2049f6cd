"""A stage's entry conditions, evaluated as CodePipeline evaluates them (:mod:`infra.stage_gates`).

Each rule runs as its ``RoleArn``: CodePipeline acts as the pipeline's role, and from it assumes the rule's role --
here the gate role in the previous environment's workload account, whose trust policy and the pipeline role's
``sts:AssumeRole`` the AWS stand-in enforces -- then reads the alarm with ``DescribeAlarms`` in the rule's region. A
rule passes when its alarm exists and is not in ``ALARM``. A missing alarm or a refused call fails it: a gate that
cannot read its alarm does not open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline.assembly import Pipeline, Rule, Stage
from pipeline.local import aws
from pipeline.local.replay import iam

SESSION = "codepipeline-rule"
Assume = Callable[[str], dict[str, str]]
"""``role ARN → AWS_* variables`` of that role's credentials, assumed for CodePipeline (:func:`replay.iam.assumer`)."""


def evaluator(endpoint: str, assume: Assume) -> Callable[[Pipeline, Stage], str]:
    """The executor's ``enter``: empty when every entry condition of the stage holds, else why it may not start."""

    def enter(pipeline: Pipeline, stage: Stage) -> str:
        problems = []
        for result, rules in stage.before_entry:
            if result != "FAIL":
                problems.append(f"condition result {result}: not replayed (Slipway's stages only FAIL)")
                continue
            problems += [
                f"rule {rule.name}: {why}" for rule in rules if (why := _evaluate(endpoint, assume, pipeline, rule))
            ]
        return "; ".join(problems)

    return enter


def _evaluate(endpoint: str, assume: Assume, pipeline: Pipeline, rule: Rule) -> str:
    if rule.provider != "CloudWatchAlarm":
        return f"provider {rule.provider} is not replayed"
    name, region = str(rule.configuration.get("AlarmName", "")), rule.region or aws.REGION
    try:
        keys = iam.keys(assume(pipeline.role))
        if rule.role != pipeline.role:
            keys = aws.client("sts", endpoint, keys).assume_role(RoleArn=rule.role, RoleSessionName=SESSION)[
                "Credentials"
            ]
        found: list[dict[str, Any]] = aws.client("cloudwatch", endpoint, keys, region).describe_alarms(
            AlarmNames=[name]
        )["MetricAlarms"]
    except ClientError as exc:
        return f"alarm {name} in {region}, read as {rule.role}: {exc.response['Error'].get('Message', exc)}"
    if not found:
        return f"alarm {name} does not exist in {region}"
    if found[0]["StateValue"] == "ALARM":
        return f"alarm {name} in {region} is in ALARM ({found[0].get('StateReason', '')})"
    return ""
