"""Image references: parsing, digest pinning, and where ECR pull-through cache serves an upstream image.

A tag is a label; a digest is the identity. Everything that deploys goes through :func:`pinned` so that a tag can
never reach a Lambda function, an ECS task definition or a Kubernetes manifest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.config import UPSTREAM_REGISTRIES, Upstream
from pipeline.partitions import dns_suffix

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DOCKER_HUB = "docker.io"
# Hosts an image reference may name for Docker Hub; all mean the same registry.
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class ImageReferenceError(ValueError):
    """An image reference is malformed, unpinned, or has no pull-through-cache rule."""


@dataclass(frozen=True)
class ImageReference:
    """``registry/repository[:tag][@digest]``, normalised the way Docker resolves a ``FROM`` line."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        remainder, _, digest = text.partition("@")
        if digest and not DIGEST.fullmatch(digest):
            raise ImageReferenceError(f"image {text!r}: digest must be 'sha256:' and 64 lowercase hex digits")
        name, tag = remainder, ""
        last = remainder.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = remainder.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise ImageReferenceError(f"image {text!r}: invalid tag {tag!r}")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in _DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
            # Official images live under library/: `python` is `library/python` on Docker Hub, and ECR's
            # pull-through cache serves it only under that path.
            if "/" not in repository:
                repository = f"library/{repository}"
        if not _PATH.fullmatch(repository):
            raise ImageReferenceError(f"image {text!r}: invalid repository path {repository!r}")
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def is_pinned(self) -> bool:
        return bool(self.digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def ecr_registry(account: str, region: str) -> str:
    """The ECR registry host of ``account`` in ``region``, with its partition's DNS suffix."""
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}"


def pinned(repository_uri: str, digest: str) -> str:
    """``repo@sha256:…``: the only form a deploy may name. Refuses tags and malformed digests."""
    if not DIGEST.fullmatch(digest):
        raise ImageReferenceError(
            f"image {repository_uri!r}: expected a digest 'sha256:<64 hex>', got {digest!r} (tags are not deployable)"
        )
    if "@" in repository_uri or ":" in repository_uri.rsplit("/", 1)[-1]:
        raise ImageReferenceError(f"image {repository_uri!r}: expected a repository URI without tag or digest")
    return f"{repository_uri}@{digest}"


def _upstream_host(upstream: Upstream) -> str:
    """The registry an upstream serves, as a reference names it (its URL is a bare host: the config checks that)."""
    host = upstream.upstream_url
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def pull_through_uri(reference: str, upstreams: Iterable[Upstream], registry: str) -> str:
    """Where ECR pull-through cache in ``registry`` serves ``reference``.

    ``python:3.12-slim`` → ``<registry>/docker-hub/library/python:3.12-slim``;
    ``public.ecr.aws/lambda/python:3.12`` → ``<registry>/ecr-public/lambda/python:3.12``.
    """
    ref = ImageReference.parse(reference)
    for upstream in upstreams:
        if _upstream_host(upstream) == ref.registry:
            return str(ImageReference(f"{registry}/{upstream.prefix}", ref.repository, ref.tag, ref.digest))
    configured = ", ".join(f"{u.prefix} ({_upstream_host(u)})" for u in upstreams) or "none"
    kinds = ", ".join(sorted(UPSTREAM_REGISTRIES))
    raise ImageReferenceError(
        f"image {reference!r}: no pull-through-cache rule for registry {ref.registry!r} "
        f"(configured: {configured}); add an [[upstreams]] entry of registry kind: {kinds}"
    )
