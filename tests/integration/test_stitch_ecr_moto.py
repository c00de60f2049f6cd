"""Stitch through the ECR API (BatchGetImage/PutImage) against moto in server mode, with immutable tags."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from pipeline.oci import OCI_INDEX, digest_of
from pipeline.records import BuildRecord
from pipeline.registry.base import RegistryError, RepositoryRef
from pipeline.registry.ecr_api import EcrApiClient
from pipeline.stitch import StitchError, stitch
from tests.fakes import MemoryRegistry

pytestmark = pytest.mark.integration
ACCOUNT_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


class MotoEcrClient(EcrApiClient):
    """moto answers GetDownloadUrlForLayer with HTTP 500, so config blobs come from the test's own store."""

    def __init__(self, ecr: Any, blobs: dict[str, bytes]) -> None:
        super().__init__(ecr=ecr)
        self._blobs = blobs

    def get_blob(self, repo: RepositoryRef, digest: str) -> bytes:
        return self._blobs[digest]


@pytest.fixture
def ecr(moto_endpoint: str) -> Any:
    return boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def push_children(ecr: Any, name: str) -> tuple[list[BuildRecord], dict[str, bytes]]:
    """Single-platform OCI manifests put by digest (no tag), as buildx push-by-digest leaves them."""
    memory = MemoryRegistry()
    builds = []
    for platform in ("linux/amd64", "linux/arm64"):
        digest = memory.add_image(name, *platform.split("/"))
        manifest = memory.manifests[name, digest]
        ecr.put_image(
            repositoryName=name, imageManifest=manifest.data.decode(),
            imageManifestMediaType=manifest.media_type, imageDigest=digest,
        )  # fmt: skip
        builds.append(BuildRecord(f"{ACCOUNT_HOST}/{name}", platform, digest, 100, 1.0, "buildx"))
    return builds, memory.blobs


def test_stitch_through_ecr_api_with_immutable_tags(ecr: Any) -> None:
    ecr.create_repository(repositoryName="payments/moto-api", imageTagMutability="IMMUTABLE")
    builds, blobs = push_children(ecr, "payments/moto-api")
    client = MotoEcrClient(ecr, blobs)
    first = stitch(client, builds, tag="abc1234", expected_platforms=["linux/amd64", "linux/arm64"], commit="abc1234")
    image = ecr.batch_get_image(repositoryName="payments/moto-api", imageIds=[{"imageTag": "abc1234"}])["images"][0]
    assert image["imageManifestMediaType"] == OCI_INDEX
    assert digest_of(image["imageManifest"].encode()) == first.record.index_digest == image["imageId"]["imageDigest"]
    # A re-run finds the tag already on this index and pushes nothing (ECR would refuse an immutable re-tag).
    again = stitch(client, builds, tag="abc1234", commit="abc1234")
    assert not again.created and again.record == first.record


def test_moved_tag_is_refused_before_ecr_is_asked(ecr: Any) -> None:
    ecr.create_repository(repositoryName="payments/moto-moved", imageTagMutability="IMMUTABLE")
    builds, blobs = push_children(ecr, "payments/moto-moved")
    client = MotoEcrClient(ecr, blobs)
    stitch(client, builds, tag="abc1234")
    with pytest.raises(StitchError, match=r"moto-moved:abc1234: release tag already points at"):
        stitch(client, builds[:1], tag="abc1234")


def test_unknown_repository_is_a_clear_error(ecr: Any) -> None:
    build = BuildRecord(f"{ACCOUNT_HOST}/payments/nowhere", "linux/amd64", "sha256:" + "a" * 64, 1, 1, "buildx")
    with pytest.raises(RegistryError, match=r"image payments/nowhere@sha256:a+: RepositoryNotFoundException"):
        stitch(MotoEcrClient(ecr, {}), [build], tag="abc1234")


def test_ecr_hosts_get_a_basic_token_from_get_authorization_token(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from pipeline.registry.base import client_for
    from pipeline.registry.distribution import DistributionClient
    from pipeline.registry.ecr_auth import ecr_basic_auth

    header = ecr_basic_auth("eu-west-1", ecr=ecr)
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode().startswith("AWS:")
    monkeypatch.setattr("pipeline.registry.ecr_auth.boto3.client", lambda *a, **k: ecr)
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
