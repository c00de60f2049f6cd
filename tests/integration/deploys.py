"""Shared parts of the deploy tests: a registry holding the releases, moto clients and targets, fault injection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from pipeline.commands.deploy import deploy
from pipeline.config import LambdaTarget
from pipeline.deployers.base import Invocation
from pipeline.deployers.lambda_ import LambdaDeployer
from pipeline.records import BuildRecord, ImageRecord
from pipeline.stitch import stitch
from tests.fakes import MemoryRegistry

REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
OLD = f"{REPO}@sha256:" + "0" * 64
# A registry the deploys check image.json against before changing anything: real manifests, real digests.
REGISTRY = MemoryRegistry()
RELEASE = stitch(
    REGISTRY,
    [BuildRecord(REPO, p, REGISTRY.add_image(REPO, *p.split("/")), 1000, 1.0, "buildx") for p in ("linux/amd64", "linux/arm64")],
    tag="c0ffee1",
).record  # fmt: skip
AMD64_ONLY = stitch(
    REGISTRY, [BuildRecord(REPO, "linux/amd64", REGISTRY.add_image(REPO, "linux", "amd64", layer=b"x"), 1, 1, "buildx")],
    tag="c0ffee2",
).record  # fmt: skip
INDEX, AMD, ARM = RELEASE.index_digest, RELEASE.platforms["linux/amd64"].digest, RELEASE.platforms["linux/arm64"].digest


def image_record(platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")) -> ImageRecord:
    return RELEASE if len(platforms) == 2 else AMD64_ONLY


def deploy_fn(client: Any, image_json: Path, out: Path, function_name: str = "payments-api") -> int:
    """The arm64 Lambda deploy the tests repeat, with the example's alias."""
    target = LambdaTarget(function_name=function_name, architecture="arm64", alias="live")
    return deploy(
        LambdaDeployer(client, poll_seconds=0.2, invoke=answers), target, image_json=image_json, out=out, timeout=30,
        registry=REGISTRY,
    )  # fmt: skip


INVOKED: list[tuple[str, str, str]] = []


def answers(function_name: str, version: str, image: str, event: dict[str, Any]) -> Invocation:
    """moto cannot invoke image functions (HTTP 500): the version's answer comes from this stand-in; local mode runs
    the real image under a Runtime API emulator, and the e2e test checks that path."""
    INVOKED.append((function_name, version, image))
    return Invocation(True, 200, {"statusCode": 200, "machine": "aarch64", "echo": event})


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class FailOnce:
    """A client in front of moto that fails one API call once (an operator's network blip, a throttle)."""

    def __init__(self, inner: Any, operation: str, code: str = "ServiceException") -> None:
        self._inner, self._operation, self._code, self.failed = inner, operation, code, False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name != self._operation or self.failed:
            return method

        def fail(**kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            self.failed = True
            raise ClientError({"Error": {"Code": self._code, "Message": "injected"}}, name)

        return fail


def fresh_function(lambda_client: Any, name: str) -> None:
    role = lambda_client.get_function(FunctionName="payments-api")["Configuration"]["Role"]
    lambda_client.create_function(FunctionName=name, Role=role, PackageType="Image", Code={"ImageUri": OLD},
                                  Architectures=["arm64"])  # fmt: skip


class RollingOut:
    """moto never reports an ECS rollout in progress: this view of it does, for ``rolling`` describe calls."""

    def __init__(self, inner: Any, rolling: int) -> None:
        self._inner, self.rolling = inner, rolling

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def describe_services(self, **kwargs: Any) -> Any:
        response = self._inner.describe_services(**kwargs)
        for service in response["services"]:
            current = service["taskDefinition"]
            state = "IN_PROGRESS" if self.rolling > 0 else "COMPLETED"
            service["deployments"] = [{"status": "PRIMARY", "taskDefinition": current, "rolloutState": state}]
        self.rolling -= 1
        return response


SECOND = stitch(
    REGISTRY,
    [BuildRecord(REPO, p, REGISTRY.add_image(REPO, *p.split("/"), layer=b"second"), 1, 1.0, "buildx")
     for p in ("linux/amd64", "linux/arm64")],
    tag="c0ffee3",
).record  # fmt: skip
