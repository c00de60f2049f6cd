"""The cloud smoke test: the Lambda Invoke API on the new version (moto cannot invoke image functions; Stubber can
answer as Lambda does)."""

from __future__ import annotations

import io
import json

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pipeline.deployers.lambda_ import LambdaDeployer


def stubbed(payload: bytes, **extra: object) -> tuple[LambdaDeployer, Stubber]:
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(payload), len(payload)), **extra},
        {"FunctionName": "payments-api", "Qualifier": "7", "Payload": json.dumps({"path": "/health"}).encode()},
    )
    stub.activate()
    return LambdaDeployer(client), stub


def test_the_new_version_is_invoked_by_its_qualifier() -> None:
    deployer, stub = stubbed(json.dumps({"statusCode": 200, "machine": "aarch64"}).encode())
    outcome = deployer.invoke_version("payments-api", "7", "r@sha256:" + "a" * 64, {"path": "/health"})
    stub.assert_no_pending_responses()
    assert outcome.ok and outcome.status == 200 and outcome.answer["machine"] == "aarch64"


def test_a_function_error_is_a_failed_smoke_test() -> None:
    deployer, _ = stubbed(b'{"errorMessage": "boom"}', FunctionError="Unhandled")
    outcome = deployer.invoke_version("payments-api", "7", "r@sha256:" + "a" * 64, {"path": "/health"})
    assert not outcome.ok and outcome.error.startswith('Unhandled: b\'{"errorMessage": "boom"}\'')


def test_an_answer_that_is_not_json_is_no_answer_and_a_good_one_carries_no_error() -> None:
    deployer, _ = stubbed(b"<html>502</html>")
    outcome = deployer.invoke_version("payments-api", "7", "r@sha256:" + "a" * 64, {"path": "/health"})
    assert (outcome.ok, outcome.answer, outcome.error) == (True, None, "")


def test_a_function_errors_payload_is_quoted_up_to_200_bytes() -> None:
    payload = json.dumps({"errorMessage": "x" * 400}).encode()
    deployer, _ = stubbed(payload, FunctionError="Unhandled")
    outcome = deployer.invoke_version("payments-api", "7", "r@sha256:" + "a" * 64, {"path": "/health"})
    assert outcome.error == f"Unhandled: {payload[:200]!r}"
