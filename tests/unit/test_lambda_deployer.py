"""The Lambda deployer's whole path against a fake of the Lambda API that keeps state as Lambda does (moto-free, so
mutation testing runs it): the child of the function's architecture, tags before changes, version, smoke, alias."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from pipeline.config import LambdaTarget
from pipeline.deployers.base import DeployError, DeployRecord, Invocation, Verification, verified_mark
from pipeline.deployers.lambda_ import IMAGE_TAG, PREVIOUS_TAG, VERIFIED_TAG, LambdaDeployer, judge
from tests.unit.test_deploy_base import ARM, INDEX, PREVIOUS, RELEASE, REPO

ARN = "arn:aws:lambda:eu-west-1:111111111111:function:payments-api"
NEW = f"{REPO}@{ARM}"
TARGET = LambdaTarget(function_name="payments-api", architecture="arm64", alias="live",
                      smoke_event='{"path": "/health"}', smoke_expect='{"statusCode": 200}')  # fmt: skip


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{operation} said no"}}, operation)


class FakeLambda:
    """One function: $LATEST's image and update status, published versions (with descriptions), aliases, tags."""

    def __init__(self, *, package: str = "Image", architectures: list[str] | None = None, latest: str = PREVIOUS,
                 statuses: tuple[str | None, ...] = ("Successful",)) -> None:  # fmt: skip
        self.package, self.latest = package, latest
        self.architectures = ["arm64"] if architectures is None else architectures
        self.statuses = list(statuses)
        self.versions: dict[str, tuple[str, str]] = {}  # version -> (image, description)
        self.aliases: dict[str, str] = {}
        self.weights: dict[str, dict[str, float]] = {}  # alias -> AdditionalVersionWeights
        self.moves: list[tuple[str, dict[str, float]]] = []  # every alias change: (version, weights)
        self.tags: dict[str, str] = {}
        self.calls: list[str] = []
        self.fail: dict[str, str] = {}  # operation -> error code

    def _call(self, operation: str, **names: Any) -> None:
        """Names checked as Lambda checks them: another function (or ARN) is not found, a name must be a string."""
        self.calls.append(operation)
        if operation in self.fail:
            raise _error(self.fail[operation], operation)
        for key, value in names.items():
            if not isinstance(value, str):
                raise ParamValidationError(report=f"Invalid type for parameter {key}, value: {value!r}")
        if names.get("FunctionName", "payments-api") != "payments-api" or names.get("Resource", ARN) != ARN:
            raise _error("ResourceNotFoundException", operation)

    def get_function(self, FunctionName: str, Qualifier: str = "") -> dict[str, Any]:
        self._call("get_function", FunctionName=FunctionName, Qualifier=Qualifier)
        image = self.versions[Qualifier][0] if Qualifier else self.latest
        configuration = {"PackageType": self.package, "Architectures": self.architectures, "FunctionArn": ARN}
        return {"Configuration": configuration, "Code": {"ImageUri": image}}

    def get_function_configuration(self, FunctionName: str, Qualifier: str = "") -> dict[str, Any]:
        self._call("get_function_configuration", FunctionName=FunctionName, Qualifier=Qualifier)
        if Qualifier:
            return {"Description": self.versions[Qualifier][1]}
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"LastUpdateStatus": status} if status else {}  # older answers (and moto's) may carry none

    def get_alias(self, FunctionName: str, Name: str) -> dict[str, Any]:
        self._call("get_alias", FunctionName=FunctionName, Name=Name)
        if Name not in self.aliases:
            raise _error("ResourceNotFoundException", "GetAlias")
        return {"FunctionVersion": self.aliases[Name],
                "RoutingConfig": {"AdditionalVersionWeights": dict(self.weights.get(Name, {}))}}  # fmt: skip

    def list_tags(self, Resource: str) -> dict[str, Any]:
        self._call("list_tags", Resource=Resource)
        return {"Tags": dict(self.tags)}

    def tag_resource(self, Resource: str, Tags: dict[str, str]) -> None:
        self._call("tag_resource", Resource=Resource)
        self.tags.update(Tags)

    def update_function_code(self, FunctionName: str, ImageUri: str) -> None:
        self._call("update_function_code", FunctionName=FunctionName, ImageUri=ImageUri)
        self.latest = ImageUri

    def publish_version(self, FunctionName: str, Description: str) -> dict[str, Any]:
        self._call("publish_version", FunctionName=FunctionName)
        for version, (image, _) in self.versions.items():
            if image == self.latest:
                return {"Version": version}
        version = str(len(self.versions) + 1)
        self.versions[version] = (self.latest, Description)
        return {"Version": version}

    def update_alias(self, FunctionName: str, Name: str, FunctionVersion: str, RoutingConfig: Any = None) -> None:
        self._call("update_alias", FunctionName=FunctionName, Name=Name, FunctionVersion=FunctionVersion)
        if Name not in self.aliases:
            raise _error("ResourceNotFoundException", "UpdateAlias")
        weights = dict((RoutingConfig or {}).get("AdditionalVersionWeights", {}))
        if FunctionVersion in weights or any(v not in self.versions or not 0 < w < 1 for v, w in weights.items()):
            raise _error("InvalidParameterValueException", "UpdateAlias")  # as Lambda refuses such a split
        self.aliases[Name], self.weights[Name] = FunctionVersion, weights
        self.moves.append((FunctionVersion, weights))

    def create_alias(self, FunctionName: str, Name: str, FunctionVersion: str) -> None:
        self._call("create_alias", FunctionName=FunctionName, Name=Name, FunctionVersion=FunctionVersion)
        self.aliases[Name] = FunctionVersion


def answering(answer: Any, *, ok: bool = True, status: int = 200, error: str = "") -> Any:
    seen: list[tuple[str, str, str, dict[str, Any]]] = []

    def invoke(function: str, version: str, image: str, event: dict[str, Any]) -> Invocation:
        seen.append((function, version, image, event))
        return Invocation(ok, status, answer, error)

    invoke.seen = seen  # type: ignore[attr-defined]
    return invoke


HEALTHY = {"statusCode": 200, "machine": "aarch64"}


def test_a_first_deploy_records_the_rollback_target_then_publishes_smokes_and_creates_the_alias() -> None:
    fake, invoke = FakeLambda(), answering(HEALTHY)
    record = LambdaDeployer(fake, poll_seconds=0, invoke=invoke).deploy(RELEASE, TARGET, timeout=5)
    assert record == DeployRecord("lambda:payments-api", NEW, PREVIOUS, changed=True, revision="1", waited=True,
                                  verified=Verification(True, "invoke", 200, "aarch64"))  # fmt: skip
    assert fake.tags == {IMAGE_TAG: NEW, PREVIOUS_TAG: PREVIOUS}
    assert fake.versions == {"1": (NEW, NEW)} and fake.aliases == {"live": "1"}
    assert invoke.seen == [("payments-api", "1", NEW, {"path": "/health"})]
    assert fake.calls.index("tag_resource") < fake.calls.index("update_function_code")  # recorded before changing
    assert fake.calls[-2:] == ["update_alias", "create_alias"]


def test_the_verification_mark_is_a_tag_on_the_function_read_back_for_the_alias_image_only() -> None:
    fake = FakeLambda()
    deployer = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY))
    deployer.deploy(RELEASE, TARGET, timeout=5)
    mark = verified_mark(NEW, Verification(True, "invoke", 200, "aarch64"), datetime(2026, 12, 4, tzinfo=UTC))
    deployer.record_verified(TARGET, NEW, mark)
    assert fake.tags[VERIFIED_TAG] == mark
    assert deployer.serving(TARGET).verification == "invoke 200 aarch64 at 2026-12-04T00:00:00Z"
    fake.tags[VERIFIED_TAG] = mark.replace(ARM.removeprefix("sha256:"), "f" * 64)  # a mark for another digest
    assert deployer.serving(TARGET).verification == ""


def test_a_second_deploy_of_the_serving_image_changes_nothing() -> None:
    fake = FakeLambda()
    LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    fake.calls.clear()
    again = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert again == DeployRecord("lambda:payments-api", NEW, PREVIOUS, changed=False, revision="1")
    assert not {"tag_resource", "update_function_code", "publish_version", "update_alias"} & set(fake.calls)


def test_the_next_release_keeps_the_serving_image_as_its_rollback_target() -> None:
    fake = FakeLambda()
    LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    newer = f"{REPO}@sha256:" + "d" * 64
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy_ref(newer, TARGET, timeout=5)
    assert (record.previous_image, record.revision, fake.aliases) == (NEW, "2", {"live": "2"})
    assert fake.tags == {IMAGE_TAG: newer, PREVIOUS_TAG: NEW}


def test_a_retry_after_the_code_moved_keeps_the_first_attempts_rollback_target() -> None:
    """The first attempt tagged and updated $LATEST, then died: $LATEST is the new image, the alias the old one."""
    fake = FakeLambda(latest=NEW)
    fake.tags = {IMAGE_TAG: NEW, PREVIOUS_TAG: PREVIOUS}
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert record.previous_image == PREVIOUS and record.changed
    assert "update_function_code" not in fake.calls  # $LATEST already holds it


def test_a_tag_for_another_image_is_not_a_rollback_target() -> None:
    fake = FakeLambda()
    fake.tags = {IMAGE_TAG: f"{REPO}@sha256:" + "e" * 64, PREVIOUS_TAG: f"{REPO}@sha256:" + "f" * 64}
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert record.previous_image == PREVIOUS


def test_a_failed_smoke_test_publishes_the_version_but_never_moves_the_alias() -> None:
    fake = FakeLambda()
    fake.aliases = {"live": "0"}
    fake.versions = {"0": (PREVIOUS, PREVIOUS)}
    deployer = LambdaDeployer(fake, poll_seconds=0, invoke=answering({"statusCode": 500}))
    with pytest.raises(DeployError) as raised:
        deployer.deploy(RELEASE, TARGET, timeout=5)
    assert str(raised.value) == (
        f"Lambda function payments-api (arm64): version 2 ({NEW}) failed its smoke test: answered "
        '{"statusCode": 500}, expected {"statusCode": 200}; alias live still names the previous version'
    )
    assert fake.aliases == {"live": "0"}


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"package": "Zip"}, "PackageType is 'Zip', expected 'Image'"),
        ({"architectures": ["x86_64"]}, "the function is configured for ['x86_64'], not ['arm64']"),
        ({"architectures": []}, "the function is configured for ['x86_64'], not ['arm64']"),
    ],
)
def test_a_function_that_cannot_run_the_child_is_refused_before_anything_changes(shape: Any, message: str) -> None:
    fake = FakeLambda(**shape)
    with pytest.raises(DeployError) as raised:
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert str(raised.value) == f"Lambda function payments-api (arm64): {message}"
    assert fake.calls == ["get_function"]


def test_an_unreadable_function_is_named_with_the_apis_answer() -> None:
    fake = FakeLambda()
    fake.fail["get_function"] = "ResourceNotFoundException"
    with pytest.raises(DeployError, match=r"^Lambda function payments-api \(arm64\): cannot read the function "
                                          r"\(ResourceNotFoundException: get_function said no\)$"):  # fmt: skip
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)


def test_an_alias_that_cannot_be_read_stops_the_deploy() -> None:
    fake = FakeLambda()
    fake.fail["get_alias"] = "AccessDeniedException"
    with pytest.raises(DeployError, match=r"^Lambda function payments-api: alias live: AccessDeniedException: "):
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)


def test_unreadable_tags_are_no_rollback_target_and_no_failure() -> None:
    fake = FakeLambda()
    fake.fail["list_tags"] = "AccessDeniedException"
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert record.previous_image == PREVIOUS and record.changed


def test_the_deploy_waits_for_the_update_and_a_failed_update_leaves_the_alias() -> None:
    fake = FakeLambda(statuses=("InProgress", "InProgress", "Successful"))
    LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert fake.calls.count("get_function_configuration") >= 3
    failed = FakeLambda(statuses=("InProgress", "Failed"))
    with pytest.raises(DeployError, match=r"^Lambda function payments-api \(arm64\): update failed; alias still "):
        LambdaDeployer(failed, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert failed.aliases == {}
    stuck = FakeLambda(statuses=("InProgress",))
    with pytest.raises(DeployError, match=r"^Lambda function payments-api \(arm64\): waiting for LastUpdateStatus "
                                          r"Successful: timed out after 0s$"):  # fmt: skip
        LambdaDeployer(stuck, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=0)


def test_a_configuration_without_last_update_status_counts_as_updated() -> None:
    fake = FakeLambda(statuses=(None,))
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=0)
    assert record.changed and fake.aliases == {"live": "1"}


def test_an_alias_already_serving_the_image_without_slipways_tags_has_no_rollback_target_to_claim() -> None:
    fake = FakeLambda(latest=NEW)
    fake.aliases, fake.versions = {"live": "3"}, {"3": (NEW, NEW)}
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert record == DeployRecord("lambda:payments-api", NEW, "", changed=False, revision="3")


def test_an_api_error_mid_deploy_says_what_still_serves_and_that_a_retry_finishes() -> None:
    fake = FakeLambda()
    fake.aliases = {"live": "0"}
    fake.versions = {"0": (PREVIOUS, PREVIOUS)}
    fake.fail["publish_version"] = "TooManyRequestsException"
    with pytest.raises(DeployError) as raised:
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert str(raised.value) == (
        "Lambda function payments-api (arm64): TooManyRequestsException: publish_version said no; alias live names "
        f"version 0 ({PREVIOUS}) (a retry finishes the deploy)"
    )


def test_an_alias_error_other_than_not_found_is_not_answered_by_creating_it() -> None:
    fake = FakeLambda()
    fake.aliases = {"live": "0"}
    fake.versions = {"0": (PREVIOUS, PREVIOUS)}
    fake.fail["update_alias"] = "AccessDeniedException"
    with pytest.raises(DeployError, match="AccessDeniedException: update_alias said no"):
        LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert "create_alias" not in fake.calls


def test_a_version_published_without_its_image_as_description_is_read_from_its_code() -> None:
    fake = FakeLambda()
    fake.aliases, fake.versions = {"live": "3"}, {"3": (NEW, "published by hand")}
    record = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY)).deploy(RELEASE, TARGET, timeout=5)
    assert (record.changed, record.revision) == (False, "3")


def test_the_index_is_never_given_to_a_function() -> None:
    indexed = type(RELEASE)(REPO, "t", INDEX, {"linux/arm64": type(RELEASE.platforms["linux/arm64"])(INDEX, 1, "x")})
    with pytest.raises(DeployError, match="refusing the index digest"):
        LambdaDeployer(FakeLambda(), poll_seconds=0, invoke=answering(HEALTHY)).deploy(indexed, TARGET, timeout=5)


@pytest.mark.parametrize(
    ("outcome", "expect", "verdict", "why"),
    [
        (Invocation(True, 200, {"statusCode": 200, "machine": "aarch64"}), '{"statusCode": 200}',
         Verification(True, "invoke", 200, "aarch64"), ""),
        (Invocation(True, 200, {"statusCode": 200}), "{}", Verification(True, "invoke", 200, ""), ""),
        (Invocation(True, 200, ["not", "an", "object"]), '{"statusCode": 200}', Verification(False, "invoke", 200, ""),
         'answered {"statusCode": null}, expected {"statusCode": 200}'),
        (Invocation(False, 200, {"statusCode": 200}, "Unhandled: boom"), "{}", Verification(False, "invoke", 200, ""),
         "Unhandled: boom"),
        (Invocation(False, 502, None), "{}", Verification(False, "invoke", 502, ""), "answered {}, expected {}"),
    ],
)  # fmt: skip
def test_the_smoke_verdict(outcome: Invocation, expect: str, verdict: Verification, why: str) -> None:
    assert judge(outcome, expect) == (verdict, why)


def test_the_deploy_role_may_touch_only_the_named_function_and_pull() -> None:
    from pipeline.deployers.base import Grant, PullImages

    grant, pull = LambdaDeployer.permissions(TARGET)
    assert isinstance(grant, Grant) and isinstance(pull, PullImages)
    assert grant.resources == ("arn:{partition}:lambda:{region}:{account}:function:payments-api",
                               "arn:{partition}:lambda:{region}:{account}:function:payments-api:*")  # fmt: skip
    assert set(grant.actions) == {
        "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode", "lambda:PublishVersion",
        "lambda:GetAlias", "lambda:UpdateAlias", "lambda:CreateAlias", "lambda:TagResource", "lambda:ListTags",
        "lambda:InvokeFunction",
    }  # fmt: skip
    assert json.loads(TARGET.smoke_event) == {"path": "/health"}
