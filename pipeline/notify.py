"""What a deploy job tells its team (``slipway deploy --notify-topic``, ``slipway rollback --notify-topic``): one SNS
message per deploy or rollback, saying service, environment, target, release and digest, and what to do.

The job publishes as itself (its role may publish to its team's topic, nothing else); a message that cannot be sent
is reported on stderr and never changes the deploy's outcome: the deploy record is the truth, the message a courtesy.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.deployers.base import DeployRecord
from pipeline.records import ImageRecord

SUBJECT_LIMIT = 100  # SNS: a subject is at most 100 ASCII characters


def deployed(record: DeployRecord, image: ImageRecord, service: str, *, next_approval: str = "",
             approval_link: str = "") -> tuple[str, str]:  # fmt: skip
    """``(subject, message)`` of a deploy that answered. ``next_approval``: the environment whose approval this
    release goes to next (the approval's own message can name only the commit): what to do is to review it there."""
    where = record.environment or "the platform account"
    verified = f", verified: {record.verified}" if record.verified else ""
    state = "deployed" if record.changed else "already serving (nothing changed)"
    subject = f"Slipway: {service} {'deployed to' if record.changed else 'unchanged in'} {where}"
    todo = "Nothing to do; to undo: slipway rollback with this deploy's record."
    if next_approval:
        subject += f"; {next_approval} awaits approval"
        todo = (f"What to do: once every target of {where} answered, approve release {image.tag} "
                f"({image.index_digest}) for {next_approval}: {approval_link}")  # fmt: skip
    return (
        subject,
        f"{service}: release {image.tag} ({_digest(record.image)}) {state} to {where}: {record.target}{verified}. "
        f"Before: {record.previous_image or 'nothing recorded'}. {todo}",
    )


def pipeline_link(pipeline: str, region: str) -> str:
    """The pipeline in the CodePipeline console, where its waiting approval is reviewed."""
    host = "console.amazonaws.cn" if region.startswith("cn-") else "console.aws.amazon.com"
    return f"https://{region}.{host}/codesuite/codepipeline/pipelines/{pipeline}/view?region={region}"


def failed(target: str, image: ImageRecord, service: str, environment: str, error: str) -> tuple[str, str]:
    """``(subject, message)`` of a deploy that did not finish."""
    where = environment or "the platform account"
    return (
        f"Slipway: {service} FAILED in {where}",
        f"{service}: release {image.tag} ({image.index_digest}) did not deploy to {where}: {target}: {error}. The "
        "previous release keeps serving. What to do: read the deploy action's log; retry the stage (a retry finishes "
        "the deploy or keeps the previous release), or push a fix.",
    )


def rolled_back(record: DeployRecord, service: str) -> tuple[str, str]:
    where = record.environment or "the platform account"
    return (
        f"Slipway: {service} rolled back in {where}",
        f"{service}: {record.target} in {where} rolled back to {record.image} (from {record.previous_image}). What to "
        "do: find why the release failed before deploying it again.",
    )


def publish(topic_arn: str, subject: str, message: str, *, sns: Any = None) -> bool:
    """Send one message; False (and a line on stderr) when it could not be sent."""
    if not topic_arn:
        return False
    attributes = {"slipway": {"DataType": "String", "StringValue": json.dumps({"subject": subject})}}
    try:
        client = sns or boto3.client("sns", region_name=topic_arn.split(":")[3])
        client.publish(TopicArn=topic_arn, Subject=_ascii(subject)[:SUBJECT_LIMIT], Message=message,
                       MessageAttributes=attributes)  # fmt: skip
    except (BotoCoreError, ClientError) as exc:
        print(f"notification to {topic_arn} not sent ({exc}); the deploy's outcome stands", file=sys.stderr)
        return False
    return True


def _digest(image: str) -> str:
    return image.rpartition("@")[2]


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode().replace("\n", " ")
