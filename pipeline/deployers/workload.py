"""Deploying into an environment's workload account: assume its workload role first (the preflight), then act as it.

The role is the one ``infra.workload_stack`` creates in that account. Assuming it is the first thing a deploy to an
environment does, so a role that is missing or does not trust this job stops the deploy before anything changed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.deployers.base import DeployError

SESSION = "slipway-deploy"


def account_of(role_arn: str) -> str:
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def assume(role_arn: str, environment: str, region: str, *, sts: Any = None) -> dict[str, str]:
    """The environment variables that make AWS calls act as ``role_arn`` in ``region``."""
    try:
        client = sts or boto3.client("sts")
        credentials = client.assume_role(RoleArn=role_arn, RoleSessionName=SESSION)["Credentials"]
    except (ClientError, BotoCoreError) as exc:
        why = str(exc)
        if isinstance(exc, ClientError):
            why = f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
        raise DeployError(
            f"environment {environment or '?'} (account {account_of(role_arn) or '?'}): cannot assume {role_arn} "
            f"({why}); deploy the workload stack into that account first (README: environments); nothing was deployed"
        ) from exc
    wanted = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    if region:
        wanted.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return wanted


@contextlib.contextmanager
def acting_as(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in the process environment for the block (clients made inside use them), then given back."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
