"""ECR credentials for the distribution API, from GetAuthorizationToken in moto (server mode)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from pipeline.registry.base import RegistryError, RepositoryRef

pytestmark = pytest.mark.integration
ACCOUNT_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture
def ecr(moto_endpoint: str) -> Any:
    return boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_ecr_hosts_get_a_basic_token_from_get_authorization_token(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from pipeline.registry import client_for
    from pipeline.registry.distribution import DistributionClient
    from pipeline.registry.ecr_auth import ecr_basic_auth

    header = ecr_basic_auth("eu-west-1", ecr=ecr)
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode().startswith("AWS:")
    # A session made at the call (the process's credentials now), whose ECR client is the moto one here.
    monkeypatch.setattr(
        "pipeline.registry.ecr_auth.boto3.Session", lambda: type("S", (), {"client": lambda *a, **k: ecr})()
    )
    client = client_for(RepositoryRef.parse(f"{ACCOUNT_HOST}/payments/api"))
    assert isinstance(client, DistributionClient) and client._auth_header() == header


def test_ecr_token_failure_is_a_registry_error() -> None:
    from botocore.exceptions import ClientError

    from pipeline.registry.ecr_auth import ecr_basic_auth

    class Denied:
        def get_authorization_token(self) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetAuthorizationToken")

    with pytest.raises(
        RegistryError, match=r"ECR in eu-west-1: cannot get an authorization token \(.*AccessDeniedException"
    ):
        ecr_basic_auth("eu-west-1", ecr=Denied())
