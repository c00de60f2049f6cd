"""Deploy to AWS Lambda: the single-platform child matching the function's architecture, then version and alias.

Lambda does not run multi-architecture images, and the Lambda API (and moto) will accept an index digest or the wrong
architecture's child and only fail at invoke time -- so both are checked here, before anything changes.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipeline.deployers.base import DeployError, DeployRecord, platform_image, wait_until
from pipeline.records import ImageRecord

PLATFORM_FOR = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


def _error(exc: ClientError) -> str:
    return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"


class LambdaDeployer:
    def __init__(self, client: Any = None, *, poll_seconds: float = 2.0) -> None:
        self._lambda = client or boto3.client("lambda")
        self._poll = poll_seconds

    def deploy(
        self, record: ImageRecord, *, function_name: str, architecture: str, alias: str, timeout: float = 300
    ) -> DeployRecord:
        target = f"Lambda function {function_name} ({architecture})"
        if architecture not in PLATFORM_FOR:
            raise DeployError(f"{target}: architecture must be one of {', '.join(PLATFORM_FOR)}")
        image = platform_image(record, PLATFORM_FOR[architecture], target)
        try:
            function = self._lambda.get_function(FunctionName=function_name)
        except ClientError as exc:
            raise DeployError(f"{target}: cannot read the function ({_error(exc)})") from exc
        configuration = function["Configuration"]
        if configuration.get("PackageType") != "Image":
            raise DeployError(f"{target}: PackageType is {configuration.get('PackageType')!r}, expected 'Image'")
        actual = configuration.get("Architectures") or ["x86_64"]
        if actual != [architecture]:
            raise DeployError(f"{target}: the function is configured for {actual}, not [{architecture!r}]")
        previous = function.get("Code", {}).get("ImageUri", "")
        if previous == image:
            return DeployRecord(
                f"lambda:{function_name}",
                image,
                previous,
                changed=False,
                revision=self._alias_version(function_name, alias),
            )
        try:
            self._lambda.update_function_code(FunctionName=function_name, ImageUri=image)
            wait_until(
                lambda: self._update_done(function_name, target),
                timeout=timeout,
                interval=self._poll,
                what=f"{target}: waiting for LastUpdateStatus Successful",
            )
            version = self._lambda.publish_version(FunctionName=function_name, Description=image)["Version"]
            self._point_alias(function_name, alias, version)
        except ClientError as exc:
            raise DeployError(f"{target}: {_error(exc)}; alias {alias} still names the previous version") from exc
        return DeployRecord(f"lambda:{function_name}", image, previous, changed=True, revision=version, waited=True)

    def _update_done(self, function_name: str, target: str) -> bool:
        status = self._lambda.get_function_configuration(FunctionName=function_name).get(
            "LastUpdateStatus", "Successful"
        )
        if status == "Failed":
            raise DeployError(f"{target}: update failed; alias still names the previous version")
        return bool(status == "Successful")

    def _alias_version(self, function_name: str, alias: str) -> str:
        try:
            return str(self._lambda.get_alias(FunctionName=function_name, Name=alias)["FunctionVersion"])
        except ClientError:
            return ""

    def _point_alias(self, function_name: str, alias: str, version: str) -> None:
        try:
            self._lambda.update_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self._lambda.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
