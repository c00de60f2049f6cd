"""ECR credentials for the distribution API: a 12-hour token from ``ecr:GetAuthorizationToken``."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.registry.base import RegistryError


def ecr_basic_auth(region: str, *, ecr: Any = None) -> str:
    """``Basic <token>``: ECR's token is already base64 of ``AWS:<password>``."""
    # A session of its own: the credentials the process has now (boto3's default session keeps the first ones it saw).
    client = ecr or boto3.Session().client("ecr", region_name=region)
    try:
        data = client.get_authorization_token()["authorizationData"][0]
    except (ClientError, BotoCoreError) as exc:
        raise RegistryError(f"ECR in {region}: cannot get an authorization token ({exc})") from exc
    return f"Basic {data['authorizationToken']}"
