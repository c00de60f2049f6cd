"""A team's notifications: the SNS topic its pipelines tell, the EventBridge rule that says when one failed, and an
optional AWS Chatbot Slack channel on the topic.

What reaches the topic, and from where (:mod:`pipeline.notify` writes the messages the jobs send):

- **a stage failed** (any of the team's pipelines, services and curated bases): an EventBridge rule on CodePipeline's
  ``Stage Execution State Change`` to ``FAILED``, its message made by an input transformer -- the pipeline, the
  stage, the execution, the console link, and what to do;
- **an approval waits**: CodePipeline publishes it itself (the approval action's notification topic), with the
  release the pipeline stitched and what it answered in the environment before;
- **a deploy** finished or failed, and **a rollback**: the deploy job itself, which knows the target, the release and
  digest, and what now serves.

One rule for up to :data:`PIPELINES_PER_RULE` pipelines (an explicit list: a team's name may prefix another's), so a
500-service platform of 50 teams adds 50 of EventBridge's 300 rules per bus.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.nag import acknowledge
from infra.validation import raise_if_any
from pipeline.naming import partition_for

PIPELINES_PER_RULE = 50
FAILED = "CodePipeline Stage Execution State Change"


def topic_name(team: str) -> str:
    return f"slipway-{team}"


def topic_arn(stack: Stack, team: str, given: str = "") -> str:
    """The team's topic: the one platform.toml gives, else the platform's own ``slipway-<team>``. Literal (the
    region's partition): the deploy buildspecs name it, and a buildspec is text."""
    return given or f"arn:{partition_for(stack.region)}:sns:{stack.region}:{stack.account}:{topic_name(team)}"


@dataclass(frozen=True, kw_only=True)
class TeamNotificationsProps:
    team: str
    pipelines: tuple[str, ...]
    """The names of every pipeline of the team whose failures are told."""
    topic_arn: str = ""
    """A topic the team has; empty: this construct creates ``slipway-<team>``."""
    slack_workspace_id: str = ""
    slack_channel_id: str = ""


class TeamNotifications(Construct):
    def __init__(self, scope: Construct, id: str, props: TeamNotificationsProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        if props.topic_arn:
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "Topic", props.topic_arn)
        else:
            created = sns.Topic(self, "Topic", topic_name=topic_name(props.team), enforce_ssl=True,
                                display_name=f"Slipway: team {props.team}")  # fmt: skip
            # No server-side encryption: EventBridge and CodePipeline cannot publish to a topic under the AWS managed
            # key, and a customer key per team is a monthly cost for messages that carry names, digests and links.
            acknowledge(created, "SNS2", "Messages carry names, digests and links only; EventBridge and CodePipeline "
                        "cannot publish under the AWS managed key")  # fmt: skip
            self.topic = created
        failed = targets.SnsTopic(self.topic, message=events.RuleTargetInput.from_text(failure_message()))
        for n, start in enumerate(range(0, len(props.pipelines), PIPELINES_PER_RULE), start=1):
            rule = events.Rule(
                self, f"Failed{n}",
                description=f"Slipway: a stage of team {props.team}'s pipelines failed",
                event_pattern=events.EventPattern(
                    source=["aws.codepipeline"], detail_type=[FAILED],
                    detail={"state": ["FAILED"], "pipeline": list(props.pipelines[start : start + PIPELINES_PER_RULE])},
                ),
            )  # fmt: skip
            rule.add_target(failed)
        if props.slack_channel_id:
            chatbot.SlackChannelConfiguration(
                self, "Slack", slack_channel_configuration_name=topic_name(props.team),
                slack_workspace_id=props.slack_workspace_id, slack_channel_id=props.slack_channel_id,
                notification_topics=[self.topic],
                guardrail_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")],
            )  # fmt: skip

    @staticmethod
    def _validate(props: TeamNotificationsProps) -> None:
        problems = []
        if not props.pipelines:
            problems.append(f"pipelines: team {props.team!r} has no pipeline to tell about")
        if bool(props.slack_channel_id) != bool(props.slack_workspace_id):
            problems.append("slack_channel_id, slack_workspace_id: a Slack channel needs both")
        raise_if_any("TeamNotifications", problems)

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        self.topic.grant_publish(grantee)


def failure_message() -> str:
    """What a failed stage's notification says (EventBridge fills the fields in)."""
    pipeline, stage = events.EventField.from_path("$.detail.pipeline"), events.EventField.from_path("$.detail.stage")
    execution, region = events.EventField.from_path("$.detail.execution-id"), events.EventField.from_path("$.region")
    return (
        f"Slipway: {pipeline} failed at stage {stage} (execution {execution}). Nothing after it ran; an environment "
        f"whose deploy failed keeps the release it had. What to do: read the failed action's log at "
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/executions/{execution}"
        f"/timeline -- then push a fix, or retry the stage (a deploy retry finishes the job or keeps the previous "
        f"release)."
    )
