"""Deploy to AWS Lambda: the single-platform child matching the function's architecture, then version and alias.

Lambda does not run multi-architecture images, and the Lambda API (and moto) will accept an index digest or the wrong
architecture's child and only fail at invoke time -- so both are checked here, before anything changes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config.model import LambdaTarget
from pipeline.config.strategy import Strategy
from pipeline.deployers import shift
from pipeline.deployers.base import (
    DeployError,
    DeployRecord,
    Grant,
    Invocation,
    Invoke,
    Permission,
    PullImages,
    Serving,
    Verification,
    platform_image,
    wait_until,
)
from pipeline.platforms import architecture_names
from pipeline.records import ImageRecord

FUNCTION_ARN = "arn:{partition}:lambda:{region}:{account}:function:%s"
# The deploy's intent and rollback target, kept on the function itself (a CodeBuild retry starts from a clean workspace).
IMAGE_TAG = "slipway:image"
PREVIOUS_TAG = "slipway:previous-image"
VERIFIED_TAG = "slipway:verified"  # what proved the last deployed image answers (``slipway status``)


def _error(exc: ClientError) -> str:
    return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"


def judge(outcome: Invocation, smoke_expect: str) -> tuple[Verification, str]:
    """The smoke test's verdict on one invocation: its Verification, and why it failed ("" when it passed)."""
    expected = json.loads(smoke_expect)
    answer = outcome.answer if isinstance(outcome.answer, dict) else {}
    wrong = {k: answer.get(k) for k, v in expected.items() if answer.get(k) != v}
    why = (
        ""
        if outcome.ok and not wrong
        else outcome.error or (f"answered {json.dumps(wrong)[:200]}, expected {json.dumps(expected)[:200]}")
    )
    return Verification(not why, "invoke", outcome.status, str(answer.get("machine", ""))), why


class LambdaDeployer:
    kind: ClassVar[str] = LambdaTarget.kind
    help: ClassVar[str] = "the child manifest of the function's architecture, then a version and the alias"

    def __init__(
        self, client: Any = None, *, poll_seconds: float = 2.0, invoke: Invoke | None = None,
        alarms: shift.Alarms | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        """``invoke``: how a published version is smoke-tested (default: the Lambda Invoke API on that version;
        local mode runs the version's image under a Runtime API emulator instead). ``alarms``: what a shift's bakes
        read (default: CloudWatch, with the Lambda client's session); ``clock``, ``sleep``: how they wait."""
        self._lambda = client or boto3.Session().client("lambda")
        self._poll = poll_seconds
        self._invoke = invoke or self.invoke_version
        self._alarms = alarms
        self._clock, self._sleep = clock, sleep

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> LambdaDeployer:
        where = f"Lambda function {getattr(args, 'function_name', '')}"  # status makes one with no target options
        return cls(session.client("lambda"), alarms=shift.CloudWatchAlarms(session, where))

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--function-name", required=True)
        parser.add_argument("--architecture", required=True, choices=architecture_names())
        parser.add_argument("--alias", default="live")
        parser.add_argument("--smoke-event", default="{}", help="JSON event the new version is invoked with")
        parser.add_argument("--smoke-expect", default="{}", help="JSON object the answer must contain")
        shift.add_arguments(parser)

    @staticmethod
    def target_from_args(args: argparse.Namespace) -> LambdaTarget:
        return LambdaTarget(
            function_name=args.function_name, architecture=args.architecture, alias=args.alias,
            smoke_event=args.smoke_event, smoke_expect=args.smoke_expect, strategy=shift.from_args(args),
        )  # fmt: skip

    @staticmethod
    def permissions(target: LambdaTarget) -> Sequence[Permission]:
        arn = FUNCTION_ARN % target.function_name
        return (
            Grant(
                actions=("lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                         "lambda:PublishVersion", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:CreateAlias",
                         "lambda:TagResource", "lambda:ListTags", "lambda:InvokeFunction"),
                resources=(arn, f"{arn}:*"),
                reason="Versions and aliases of the one named function (publish_version, update_alias)",
            ),
            PullImages(),
            *shift.alarm_grants(target.strategy),
        )  # fmt: skip

    def deploy(self, record: ImageRecord, target: LambdaTarget, *, timeout: float = 300) -> DeployRecord:
        """The child of the function's architecture (never the index): Lambda runs single-platform images only."""
        what = f"Lambda function {target.function_name} ({target.architecture})"
        return self.deploy_ref(platform_image(record, target.platform, what), target, timeout=timeout)

    def deploy_ref(self, image: str, target: LambdaTarget, *, timeout: float = 300) -> DeployRecord:
        """Retry-safe: what serves is what the *alias* names, not ``$LATEST``. A retry after any partial failure (the
        code updated but no version published, a version published but the alias not moved) finishes the job; the
        rollback target is recorded on the function itself (tags) before anything changes, so no retry loses it."""
        function_name, architecture, alias = target.function_name, target.architecture, target.alias
        what = f"Lambda function {function_name} ({architecture})"
        try:
            function = self._lambda.get_function(FunctionName=function_name)
        except ClientError as exc:
            raise DeployError(f"{what}: cannot read the function ({_error(exc)})") from exc
        configuration = function["Configuration"]
        if configuration.get("PackageType") != "Image":
            raise DeployError(f"{what}: PackageType is {configuration.get('PackageType')!r}, expected 'Image'")
        actual = configuration.get("Architectures") or ["x86_64"]
        if actual != [architecture]:
            raise DeployError(f"{what}: the function is configured for {actual}, not [{architecture!r}]")
        arn = configuration["FunctionArn"]
        latest = function.get("Code", {}).get("ImageUri", "")
        version, serving = self._alias_image(function_name, alias)
        before = version  # the version the alias names now (the previous one, during a shift)
        tags = self._tags(arn)
        # The rollback target: recorded on the function before an earlier attempt at this image changed anything;
        # otherwise what the alias serves now (or $LATEST before the first alias).
        recorded = tags.get(PREVIOUS_TAG) if tags.get(IMAGE_TAG) == image else None
        if serving == image:
            return DeployRecord(target.label, image, recorded or "", changed=False, revision=version)
        previous = recorded if recorded is not None else serving or latest
        try:
            self._lambda.tag_resource(Resource=arn, Tags={IMAGE_TAG: image, PREVIOUS_TAG: previous})
            if latest != image:
                self._lambda.update_function_code(FunctionName=function_name, ImageUri=image)
            wait_until(
                lambda: self._update_done(function_name, what),
                timeout=timeout,
                interval=self._poll,
                what=f"{what}: waiting for LastUpdateStatus Successful",
            )
            # PublishVersion returns the existing version when $LATEST has not changed since it was published.
            version = self._lambda.publish_version(FunctionName=function_name, Description=image)["Version"]
            verified = self._smoke_test(target, version, image, what)
            moved = self._move(target, before, version, what)
        except shift.RolledBackError as exc:
            exc.record = DeployRecord(target.label, serving, previous, changed=False, revision=before,
                                      strategy=exc.shift.json())  # fmt: skip
            raise
        except (ClientError, BotoCoreError) as exc:
            why = _error(exc) if isinstance(exc, ClientError) else str(exc)
            raise DeployError(
                f"{what}: {why}; {self._live(function_name, alias)} (a retry finishes the deploy)"
            ) from exc
        return DeployRecord(target.label, image, previous, changed=True, revision=version, waited=True,
                            verified=verified, strategy=moved)  # fmt: skip

    def _move(self, target: LambdaTarget, before: str, version: str, what: str) -> dict[str, Any] | None:
        """The alias onto ``version``: at once (the default, or the first deploy: nothing to shift from), or step by
        step by its weights, from where a retry finds it, every bake's alarms watched (:mod:`pipeline.deployers.shift`).
        """
        strategy = target.strategy
        if strategy.kind == "all-at-once" or not before or before == version:
            self._point_alias(target.function_name, target.alias, version)
            return None if strategy == Strategy() else shift.Shift(strategy.kind, (shift.Step(100, 0),)).json()

        def move(percent: int) -> None:
            weights = {version: percent / 100} if 0 < percent < 100 else {}
            self._lambda.update_alias(FunctionName=target.function_name, Name=target.alias,
                                      FunctionVersion=version if percent == 100 else before,
                                      RoutingConfig={"AdditionalVersionWeights": weights})  # fmt: skip

        alias = self._lambda.get_alias(FunctionName=target.function_name, Name=target.alias)
        weight = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}).get(version, 0.0)
        alarms = shift.watched(self._alarms, what)
        done = shift.shift(strategy, move, alarms, what, on_now=round(float(weight) * 100), clock=self._clock,
                           sleep=self._sleep)  # fmt: skip
        return done.json()

    def serving(self, target: LambdaTarget) -> Serving:
        """The image of the version the alias names, and the image Slipway's last deploy tagged the function with."""
        try:
            version, image = self._alias_image(target.function_name, target.alias)
            configuration = self._lambda.get_function(FunctionName=target.function_name)["Configuration"]
            since, shifting = "", ""
            if version:
                found = self._lambda.get_function_configuration(FunctionName=target.function_name, Qualifier=version)
                since = str(found.get("LastModified", ""))
                alias = self._lambda.get_alias(FunctionName=target.function_name, Name=target.alias)
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
                shifting = ", ".join(f"{round(float(w) * 100)} % on version {v}" for v, w in sorted(weights.items()))
        except ClientError as exc:
            raise DeployError(f"Lambda function {target.function_name}: {_error(exc)}") from exc
        tags = self._tags(configuration["FunctionArn"])
        return Serving(image, tags.get(IMAGE_TAG, ""), version, since, tags.get(PREVIOUS_TAG, ""),
                       tags.get(VERIFIED_TAG, ""), shifting)  # fmt: skip

    def record_verified(self, target: LambdaTarget, image: str, verified: str) -> None:
        arn = self._lambda.get_function(FunctionName=target.function_name)["Configuration"]["FunctionArn"]
        self._lambda.tag_resource(Resource=arn, Tags={VERIFIED_TAG: verified})

    def _smoke_test(self, target: LambdaTarget, version: str, image: str, what: str) -> Verification:
        """Invoke *that version* with the smoke event; the alias moves only when its answer holds what is expected."""
        outcome = self._invoke(target.function_name, version, image, json.loads(target.smoke_event))
        verified, why = judge(outcome, target.smoke_expect)
        if why:
            raise DeployError(
                f"{what}: version {version} ({image}) failed its smoke test: {why}; alias {target.alias} still names "
                "the previous version"
            )
        return verified

    def invoke_version(self, function_name: str, version: str, image: str, event: dict[str, Any]) -> Invocation:
        response = self._lambda.invoke(
            FunctionName=function_name, Qualifier=version, Payload=json.dumps(event).encode()
        )
        payload = response["Payload"].read()
        try:
            answer = json.loads(payload or b"null")
        except ValueError:
            answer = None
        error = response.get("FunctionError", "")
        status = int(response.get("StatusCode", 0))
        return Invocation(status == 200 and not error, status, answer, f"{error}: {payload[:200]!r}" if error else "")

    def _alias_image(self, function_name: str, alias: str) -> tuple[str, str]:
        """(version, image) the alias serves; ("", "") before the first deploy made the alias."""
        try:
            version = str(self._lambda.get_alias(FunctionName=function_name, Name=alias)["FunctionVersion"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise DeployError(f"Lambda function {function_name}: alias {alias}: {_error(exc)}") from exc
            return "", ""
        try:
            # Slipway publishes each version with its image as the description; a version published otherwise is read.
            description = str(
                self._lambda.get_function_configuration(FunctionName=function_name, Qualifier=version).get(
                    "Description", ""
                )
            )
            if "@sha256:" in description:
                return version, description
            found = self._lambda.get_function(FunctionName=function_name, Qualifier=version)
        except ClientError as exc:
            raise DeployError(f"Lambda function {function_name}: version {version}: {_error(exc)}") from exc
        return version, str(found.get("Code", {}).get("ImageUri", ""))

    def _live(self, function_name: str, alias: str) -> str:
        """What the alias serves now, read back from Lambda (an answer lost after the change must not be reported as
        "nothing changed")."""
        try:
            version, image = self._alias_image(function_name, alias)
        except (ClientError, BotoCoreError, DeployError) as exc:
            return f"what alias {alias} serves now could not be read back ({exc})"
        return f"alias {alias} names version {version} ({image})" if version else f"alias {alias} does not exist yet"

    def _tags(self, arn: str) -> dict[str, str]:
        try:
            return dict(self._lambda.list_tags(Resource=arn).get("Tags", {}))
        except ClientError:
            return {}

    def _update_done(self, function_name: str, what: str) -> bool:
        status = self._lambda.get_function_configuration(FunctionName=function_name).get(
            "LastUpdateStatus", "Successful"
        )
        if status == "Failed":
            raise DeployError(f"{what}: update failed; alias still names the previous version")
        return bool(status == "Successful")

    def _point_alias(self, function_name: str, alias: str, version: str) -> None:
        try:
            # No split left behind (an update without RoutingConfig keeps the alias's weights as they were).
            self._lambda.update_alias(FunctionName=function_name, Name=alias, FunctionVersion=version,
                                      RoutingConfig={"AdditionalVersionWeights": {}})  # fmt: skip
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self._lambda.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
