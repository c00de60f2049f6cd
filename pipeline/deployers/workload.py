"""Where a deploy acts: the session every AWS client of a deploy or rollback is made from.

In an environment, the workload role (the one ``infra.workload_stack`` creates in that account) is assumed first --
the preflight: a role that is missing or does not trust this job stops the deploy before anything changed -- and the
session carries *its* credentials and the environment's region. Clients are made from that session, never from
whatever the process environment held when boto3 first resolved credentials (boto3's default session caches the job's
own, so clients made "after" changing the environment would still act in the platform account).
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
    """``AccessKeyId``, ``SecretAccessKey`` and ``SessionToken`` of ``role_arn``, assumed with ``sts`` (default: the
    job's own session, in ``region``)."""
    try:
        client = sts or boto3.Session().client("sts", region_name=region or None)
        credentials = client.assume_role(RoleArn=role_arn, RoleSessionName=SESSION)["Credentials"]
    except (ClientError, BotoCoreError) as exc:
        why = str(exc)
        if isinstance(exc, ClientError):
            why = f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
        raise DeployError(
            f"environment {environment or '?'} (account {account_of(role_arn) or '?'}): cannot assume {role_arn} "
            f"({why}); deploy the workload stack into that account first (README: environments); nothing was deployed"
        ) from exc
    return {key: str(credentials[key]) for key in ("AccessKeyId", "SecretAccessKey", "SessionToken")}


def session(role_arn: str, environment: str, region: str, *, sts: Any = None) -> boto3.Session:
    """The session a deploy's clients are made from: the job's own (in ``region`` when given), or -- with
    ``role_arn`` -- the workload role's credentials, assumed first, in the environment's region."""
    own = boto3.Session(region_name=region or None)
    if not role_arn:
        return own
    credentials = assume(role_arn, environment, region, sts=sts or own.client("sts"))
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=own.region_name,
    )


def environment_of(acting: boto3.Session) -> dict[str, str]:
    """The variables that make a child process (kubectl's ``aws eks get-token``) act as ``acting``."""
    frozen = acting.get_credentials()
    if frozen is None:
        return {"AWS_REGION": acting.region_name} if acting.region_name else {}
    keys = frozen.get_frozen_credentials()
    found = {"AWS_ACCESS_KEY_ID": keys.access_key, "AWS_SECRET_ACCESS_KEY": keys.secret_key}
    if keys.token:
        found["AWS_SESSION_TOKEN"] = keys.token
    if acting.region_name:
        found.update(AWS_REGION=acting.region_name, AWS_DEFAULT_REGION=acting.region_name)
    return found


@contextlib.contextmanager
def acting_as(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in the process environment for the block, then given back (child processes and docker logins
    of local mode; deploy clients take a session instead)."""
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
