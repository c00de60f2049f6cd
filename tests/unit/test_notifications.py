"""Issue #31 item 2: each team is told -- a failed stage (EventBridge's rule), an approval waiting (CodePipeline), a
deploy or rollback (the job) -- with service, environment, release, digest and what to do; and the replay tells it
through the same rules."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from pipeline import notify
from pipeline.assembly import Action
from pipeline.deployers.base import DeployRecord, Verification
from pipeline.local.replay import notifications
from tests.fakes import released
from tests.unit.test_config_boundaries import problems

REPO = "111111111111.dkr.ecr.eu-central-1.amazonaws.com/payments/api"
TOPIC = "arn:aws:sns:eu-west-1:111111111111:slipway-payments"


@pytest.mark.parametrize(
    ("notifications_", "message"),
    [
        ({"slack_channel_id": "C0123ABCDEF"},
         "teams[0].notifications.slack_workspace_id: a Slack channel needs both slack_workspace_id and slack_channel_id"),
        ({"topic_arn": "arn:aws:sns:us-east-1:111111111111:ops"},
         "teams[0].notifications.topic_arn: the topic is in 111111111111/us-east-1; the team's pipelines publish from "
         "the platform's 111111111111/eu-west-1: give a topic there"),
        ({"topic_arn": "arn:aws:sqs:eu-west-1:111111111111:ops"}, "teams[0].notifications.topic_arn: expected an SNS topic ARN"),
        ({"slack_channel_id": "#general", "slack_workspace_id": "T0123ABCD"},
         "teams[0].notifications.slack_channel_id: expected a Slack channel ID such as 'C0123ABCDEF'"),
    ],
)  # fmt: skip
def test_bad_notifications_are_named_by_file_and_field(
    example_raw: dict[str, Any], notifications_: dict[str, str], message: str
) -> None:
    example_raw["teams"][0]["notifications"] = notifications_
    assert any(p.startswith(message) for p in problems(example_raw)), problems(example_raw)


def test_each_team_has_a_topic_a_failure_rule_over_its_pipelines_and_search_a_slack_channel(
    synthesized: dict[str, Any],
) -> None:
    payments: Template = synthesized["templates"]["Slipway-Acme-Registry-payments-1"]
    payments.has_resource_properties("AWS::SNS::Topic", {"TopicName": "slipway-payments"})
    payments.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
        "source": ["aws.codepipeline"], "detail-type": ["CodePipeline Stage Execution State Change"],
        "detail": {"state": ["FAILED"], "pipeline": ["slipway-payments-api", "slipway-payments-base-python",
                                                      "slipway-payments-base-python-build",
                                                      "slipway-payments-base-lambda-python",
                                                      "slipway-payments-base-debian"]}},
        "Targets": [Match.object_like({"InputTransformer": Match.object_like({
            "InputTemplate": Match.string_like_regexp("failed at stage <detail-stage>.*What to do")})})]})  # fmt: skip
    payments.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
    search: Template = synthesized["templates"]["Slipway-Acme-Registry-search-1"]
    search.has_resource_properties("AWS::Chatbot::SlackChannelConfiguration", {
        "SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0123ABCDEF",
        "SnsTopicArns": [{"Ref": Match.string_like_regexp("Notifications")}]})  # fmt: skip


def test_the_approval_tells_the_topic_the_commit_and_where_it_answered(synthesized: dict[str, Any]) -> None:
    pipelines: Template = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    [pipeline] = pipelines.find_resources("AWS::CodePipeline::Pipeline").values()
    [approve] = [a for s in pipeline["Properties"]["Stages"] for a in s["Actions"] if a["Name"] == "Approve"]
    assert approve["Configuration"]["CustomData"] == (
        "Deploy payments/api release of commit #{Source_Source_NS.CommitId} to environment prod; it answered in dev "
        "(its deploy messages there name the release tag, digest and check)"
    )
    assert approve["Configuration"]["NotificationArn"] == TOPIC  # literal: the deploy buildspecs name it too
    publish = [s for p in pipelines.find_resources("AWS::IAM::Policy").values()
               for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sns:Publish"]  # fmt: skip
    assert publish and {s["Resource"] if isinstance(s["Resource"], str) else "token" for s in publish} >= {TOPIC}
    # dev's deploys (and only theirs) say where prod's approval of this release is reviewed
    link = "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/slipway-payments-api/view?region=eu-west-1"
    commands = {name: " ".join(json.loads(p["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"])
                for name, p in pipelines.find_resources("AWS::CodeBuild::Project").items()
                if "slipway deploy" in p["Properties"]["Source"].get("BuildSpec", "")}  # fmt: skip
    told = sorted(
        name for name, command in commands.items() if f"--next-approval prod --approval-link '{link}'" in command
    )
    assert len(told) == 2 and all("DeployDev" in name for name in told), told


def test_a_deploy_message_says_service_environment_release_digest_and_what_to_do() -> None:
    _, image = released(REPO)
    child = f"{REPO}@{image.platforms['linux/arm64'].digest}"
    record = DeployRecord("lambda:payments-api", child, f"{REPO}@sha256:{'0' * 64}", True, "7", True,
                          Verification(True, "invoke", 200, "aarch64"), "prod", "555555555555")  # fmt: skip
    subject, message = notify.deployed(record, image, "payments/api")
    assert subject == "Slipway: payments/api deployed to prod"
    assert message.startswith(f"payments/api: release {image.tag} ({image.platforms['linux/arm64'].digest}) deployed "
                              "to prod: lambda:payments-api, verified: invoke 200 aarch64.")  # fmt: skip
    subject, message = notify.deployed(replace(record, environment="dev"), image, "payments/api",
                                       next_approval="prod", approval_link="https://console/approve")  # fmt: skip
    assert subject == "Slipway: payments/api deployed to dev; prod awaits approval"
    assert message.endswith(f"What to do: once every target of dev answered, approve release {image.tag} "
                            f"({image.index_digest}) for prod: https://console/approve")  # fmt: skip
    subject, message = notify.failed("ecs:payments/api", image, "payments/api", "dev", "health 500")
    assert subject == "Slipway: payments/api FAILED in dev"
    assert "The previous release keeps serving. What to do:" in message and "health 500" in message


def test_a_message_that_cannot_be_sent_never_fails_the_deploy(capsys: Any) -> None:
    from botocore.exceptions import ClientError

    class Refusing:
        def publish(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "Publish")

    assert notify.publish(TOPIC, "s", "m", sns=Refusing()) is False
    err = capsys.readouterr().err
    assert f"notification to {TOPIC} not sent" in err and "the deploy's outcome stands" in err


def test_the_replay_evaluates_the_synthesized_rule_as_eventbridge_does(synthesized: dict[str, Any]) -> None:
    rules = notifications.failure_rules(Path(synthesized["assembly"].directory))
    told = notifications.stage_failed(rules, "slipway-payments-api", "Deploy-dev", "20261204T1200-abc", "eu-west-1")
    assert [topic.rsplit(":", 1)[-1] for topic, _ in told] == ["slipway-payments"]
    text = json.loads(told[0][1])
    assert text.startswith("Slipway: slipway-payments-api failed at stage Deploy-dev (execution 20261204T1200-abc).")
    assert "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/slipway-payments-api/" in text
    assert notifications.stage_failed(rules, "slipway-other-api", "Build", "x", "eu-west-1") == []  # not a team's


def test_eventbridge_matching_is_exact() -> None:
    pattern = {"source": ["aws.codepipeline"], "detail": {"state": ["FAILED"], "pipeline": ["a", "b"]}}
    assert notifications.matches(
        pattern, {"source": "aws.codepipeline", "detail": {"state": "FAILED", "pipeline": "b"}}
    )
    assert not notifications.matches(pattern, {"source": "aws.codepipeline", "detail": {"state": "FAILED",
                                                                                          "pipeline": "ab"}})  # fmt: skip
    assert not notifications.matches(pattern, {"source": "aws.codepipeline"})


def test_the_approval_message_is_codepipelines_shape_with_the_review_link() -> None:
    action = Action("Approve", "Manual", 1, (), (), {"NotificationArn": TOPIC, "CustomData": "x"}, "")
    topic, subject, message = notifications.approval("slipway-payments-api", "Deploy-prod", action, "release c0ffee",
                                                     "eu-west-1")  # type: ignore[misc]  # fmt: skip
    body = json.loads(message)
    assert (topic, subject) == (TOPIC, "APPROVAL NEEDED: AWS CodePipeline slipway-payments-api for action Approve")
    assert body["approval"]["customData"] == "release c0ffee"
    assert "/view/slipway-payments-api/Deploy-prod/Approve/approve/" in body["approval"]["approvalReviewLink"]
    assert notifications.approval("p", "s", Action("Approve", "Manual", 1, (), (), {}, ""), "", "eu-west-1") is None
