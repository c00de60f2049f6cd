"""Image references: how a FROM line resolves, and where pull-through cache serves it."""

from __future__ import annotations

import pytest

from pipeline.config import load
from pipeline.references import ImageReference, ImageReferenceError, ecr_registry, pinned, pull_through_uri
from tests.conftest import EXAMPLE

ECR = ecr_registry("111111111111", "eu-west-1")
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        # Docker Hub official images live under library/: ECR's cache serves them only there.
        ("python:3.12-slim", f"{ECR}/docker-hub/library/python:3.12-slim"),
        ("docker.io/python:3.12-slim", f"{ECR}/docker-hub/library/python:3.12-slim"),
        ("index.docker.io/library/debian:bookworm", f"{ECR}/docker-hub/library/debian:bookworm"),
        ("bitnami/redis:7.2", f"{ECR}/docker-hub/bitnami/redis:7.2"),
        ("public.ecr.aws/lambda/python:3.12", f"{ECR}/ecr-public/lambda/python:3.12"),
        ("registry.k8s.io/pause:3.10", f"{ECR}/k8s/pause:3.10"),
        ("quay.io/prometheus/node-exporter:v1.8.2", f"{ECR}/quay/prometheus/node-exporter:v1.8.2"),
        ("ghcr.io/acme/tool@" + DIGEST, f"{ECR}/ghcr/acme/tool@{DIGEST}"),
        (f"python:3.12@{DIGEST}", f"{ECR}/docker-hub/library/python:3.12@{DIGEST}"),
        ("acmecorp.azurecr.io/base/runtime:1", f"{ECR}/acr/base/runtime:1"),
    ],
)
def test_pull_through_uri(upstream: str, expected: str) -> None:
    assert pull_through_uri(upstream, load(EXAMPLE).upstreams, ECR) == expected


def test_fails_for_registry_without_rule() -> None:
    with pytest.raises(
        ImageReferenceError,
        match=r"image 'gcr.io/distroless/static:nonroot': no pull-through-cache rule for registry 'gcr.io'",
    ):
        pull_through_uri("gcr.io/distroless/static:nonroot", load(EXAMPLE).upstreams, ECR)


def test_with_no_upstreams_the_error_says_so_and_lists_the_kinds_to_add() -> None:
    with pytest.raises(ImageReferenceError) as info:
        pull_through_uri("python:3.12", (), ECR)
    assert str(info.value) == (
        "image 'python:3.12': no pull-through-cache rule for registry 'docker.io' (configured: none); add an "
        "[[upstreams]] entry of registry kind: azure-container-registry, docker-hub, ecr-public, "
        "github-container-registry, gitlab-container-registry, k8s, quay"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("python@sha256:abc", r"digest must be 'sha256:' and 64 lowercase hex digits"),
        ("Python:3", r"invalid repository path 'library/Python'"),
        ("python:bad tag", r"invalid tag 'bad tag'"),
        # Only the last path component can carry a tag: a ':' earlier is a bad path, not a tag 'v1/app'.
        ("registry.example.com/team:v1/app", r"invalid repository path 'team:v1/app'"),
    ],
)
def test_parse_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError, match=message):
        ImageReference.parse(text)


def test_parse_keeps_registry_port() -> None:
    ref = ImageReference.parse(f"127.0.0.1:5000/docker-hub/library/busybox:1.35@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "docker-hub/library/busybox",
        "1.35",
        DIGEST,
    )
    assert ref.is_pinned


def test_pinned_names_a_digest() -> None:
    assert pinned(f"{ECR}/payments/api", DIGEST) == f"{ECR}/payments/api@{DIGEST}"


@pytest.mark.parametrize("reference", ["latest", "abc1234", "sha256:short", "SHA256:" + "a" * 64])
def test_pinned_refuses_tags_and_bad_digests(reference: str) -> None:
    with pytest.raises(ImageReferenceError, match=r"tags are not deployable"):
        pinned(f"{ECR}/payments/api", reference)


@pytest.mark.parametrize("uri", [f"{ECR}/payments/api:latest", "api:latest", f"{ECR}/payments/api@{DIGEST}", "api@v1"])
def test_pinned_refuses_uri_with_tag_or_digest(uri: str) -> None:
    with pytest.raises(ImageReferenceError, match=r"expected a repository URI without tag or digest"):
        pinned(uri, DIGEST)


def test_pinned_keeps_a_registry_port() -> None:
    assert pinned("127.0.0.1:5000/payments/api", DIGEST) == f"127.0.0.1:5000/payments/api@{DIGEST}"
