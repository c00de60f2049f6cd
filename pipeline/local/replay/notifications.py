"""What a team is told in the replay, through the same topics as in AWS (moto's SNS), by whoever tells it in AWS.

- **CodePipeline** publishes an approval that waits to the action's ``NotificationArn``, with its ``CustomData``
  (variables resolved) and the review link, in CodePipeline's message shape (:func:`approval`).
- **EventBridge** matches a failed stage against the synthesized rules (``AWS::Events::Rule`` on CodePipeline's
  ``Stage Execution State Change``) and publishes the rule target's input transformer output (:func:`stage_failed`).
  moto's EventBridge receives no CodePipeline events (its CodePipeline emits none), so the replay evaluates the rule
  -- the pattern and the transformer, as written in the template -- where CodePipeline would have emitted the event.
- **The deploy jobs** publish themselves (``slipway deploy --notify-topic``): nothing here.

Each topic the assembly creates is created in moto (:func:`create_topics`, by the CloudFormation stand-in), and an
SQS queue subscribed to it stands in for the team's inbox (:func:`inboxes`, :func:`read`): moto delivers SNS to SQS.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import assembly
from pipeline.assembly import Action

FAILED = "CodePipeline Stage Execution State Change"
Publish = Callable[[str, str, str], None]
"""``(topic ARN, subject, message)``."""


def approval(pipeline: str, stage: str, action: Action, custom_data: str, region: str) -> tuple[str, str, str] | None:
    """``(topic, subject, message)`` CodePipeline publishes when ``action`` waits; None without a topic."""
    topic = str(action.configuration.get("NotificationArn", ""))
    if not topic:
        return None
    token = str(uuid.uuid4())
    console = f"https://console.aws.amazon.com/codepipeline/home?region={region}#/view/{pipeline}"
    message = {
        "region": region,
        "consoleLink": console,
        "approval": {
            "pipelineName": pipeline, "stageName": stage, "actionName": action.name, "token": token,
            "approvalReviewLink": f"{console}/{stage}/{action.name}/approve/{token}", "customData": custom_data,
        },
    }  # fmt: skip
    return topic, f"APPROVAL NEEDED: AWS CodePipeline {pipeline} for action {action.name}", json.dumps(message)


def failure_rules(directory: Path) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``(pattern, targets)`` of every rule on a failed stage in the assembly."""
    found = []
    for stack in assembly.stacks(directory):
        place = f"arn:aws:sns:{stack.resolve.region}:{stack.resolve.account}"
        topics = {
            logical: f"{place}:{props['TopicName']}" for logical, props in stack.of_type("AWS::SNS::Topic").items()
        }
        for props in stack.of_type("AWS::Events::Rule").values():
            pattern = props.get("EventPattern") or {}
            if FAILED not in pattern.get("detail-type", []):
                continue
            targets = []
            for target in stack.resolve(props.get("Targets", [])):
                arn = target["Arn"]
                logical = arn.get("Ref", "") if isinstance(arn, dict) else str(arn)
                targets.append({**target, "Arn": topics.get(logical, logical)})  # a Ref to a topic: its ARN
            found.append((pattern, targets))
    return found


def stage_failed(
    rules: list[tuple[dict[str, Any], list[dict[str, Any]]]], pipeline: str, stage: str, execution: str, region: str
) -> list[tuple[str, str]]:
    """``(topic, message)`` for each rule target the failed stage's event matches, its input transformed."""
    event = {"source": "aws.codepipeline", "detail-type": FAILED, "region": region,
             "detail": {"pipeline": pipeline, "stage": stage, "execution-id": execution, "state": "FAILED"}}  # fmt: skip
    told = []
    for pattern, targets in rules:
        if not matches(pattern, event):
            continue
        for target in targets:
            transformer = target.get("InputTransformer", {})
            values = {name: str(_path(event, path)) for name, path in transformer.get("InputPathsMap", {}).items()}
            template = str(transformer.get("InputTemplate", json.dumps(event)))
            told.append((str(target["Arn"]), _render(template, values)))
    return told


def _render(template: str, values: dict[str, str]) -> str:
    return re.sub(r"<([A-Za-z0-9_.-]+)>", lambda m: values.get(m[1], m[0]), template)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's exact matching: every pattern key is in the event, its value one of the listed ones (a nested
    object matched the same way)."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        if isinstance(wanted, dict):
            if not isinstance(event[key], dict) or not matches(wanted, event[key]):
                return False
        elif event[key] not in wanted:
            return False
    return True


def _path(event: dict[str, Any], path: str) -> Any:
    found: Any = event
    for part in path.removeprefix("$.").split("."):
        found = found.get(part, "") if isinstance(found, dict) else ""
    return found


def create_topics(directory: Path, sns: Callable[[str], Any]) -> list[str]:
    """The topics the assembly creates (``AWS::SNS::Topic``), in their stack's account; their ARNs."""
    return [str(sns(account).create_topic(Name=name)["TopicArn"]) for account, name in _topics(directory)]


def _topics(directory: Path) -> list[tuple[str, str]]:
    return [
        (stack.resolve.account, str(props["TopicName"]))
        for stack in assembly.stacks(directory)
        for props in stack.of_type("AWS::SNS::Topic").values()
    ]


def told(endpoint: str, directory: Path) -> dict[str, list[dict[str, str]]]:
    """What each team's inbox holds now, taken (the replay's reader, as the stand-in's admin)."""
    from pipeline.local import aws

    sns, sqs = aws.client("sns", endpoint), aws.client("sqs", endpoint)
    topics = [t["TopicArn"] for t in sns.list_topics().get("Topics", [])]
    wanted = {name for _, name in _topics(directory)}
    return read(sqs, inboxes(sns, sqs, [t for t in topics if t.rsplit(":", 1)[-1] in wanted]))


def inboxes(sns: Any, sqs: Any, topics: list[str]) -> dict[str, str]:
    """An SQS queue subscribed to each topic (idempotent): ``topic ARN -> queue URL``."""
    found = {}
    for topic in topics:
        name = "inbox-" + topic.rsplit(":", 1)[-1]
        url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
        subscribed = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
        if arn not in {s.get("Endpoint") for s in subscribed}:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        found[topic] = url
    return found


def read(sqs: Any, queues: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """What each topic delivered since the last read (the messages are taken): ``topic name -> [{subject, message}]``."""
    told: dict[str, list[dict[str, str]]] = {}
    for topic, url in queues.items():
        messages = told.setdefault(topic.rsplit(":", 1)[-1], [])
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                envelope = json.loads(message["Body"])
                messages.append({"subject": str(envelope.get("Subject") or ""), "message": str(envelope["Message"])})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return told


def telling(endpoint: str, directory: Path, region: str) -> dict[str, Any]:
    """The replay executor's ``on_approval`` and ``on_failure``: CodePipeline's and EventBridge's part, publishing to
    moto's SNS as the service would (a message that cannot be sent is said, and never fails the run)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.local import aws
    from pipeline.local.replay.executor import Execution, resolve_variables
    from pipeline.progress import progress

    def publish(topic: str, subject: str, message: str) -> None:
        try:
            aws.client("sns", endpoint).publish(
                TopicArn=topic, Message=message, **({"Subject": subject} if subject else {})
            )
        except (BotoCoreError, ClientError) as exc:
            progress(f"notification to {topic} not sent: {exc}")

    def on_approval(run: Execution, stage: Any, action: Action) -> None:
        custom = resolve_variables(str(action.configuration.get("CustomData", "")), run.variables)
        if made := approval(run.pipeline.name, stage.name, action, custom, region):
            publish(*made)

    def on_failure(run: Execution, stage: Any) -> None:
        for topic, message in stage_failed(failure_rules(directory), run.pipeline.name, stage.name, run.directory.name,
                                           region):  # fmt: skip
            publish(topic, "", message)

    return {"on_approval": on_approval, "on_failure": on_failure}
