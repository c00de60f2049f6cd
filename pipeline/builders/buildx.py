"""``docker buildx`` (BuildKit): the one builder, run the same way by CodeBuild, local mode, tests and benchmarks.

Each build exports an OCI image layout with ``rewrite-timestamp=true`` under ``SOURCE_DATE_EPOCH`` (the commit time),
so the same commit and the same pinned bases give the same digest; Slipway then pushes the layout by digest, with no
tag (:mod:`pipeline.oci_layout`). No provenance or SBOM attestations go into the image (Lambda would refuse the
index). The registry cache is per platform, ``mode=max`` (every stage, not only the last), as an OCI image manifest
under the repository's mutable ``cache-<arch>`` tag.

Which BuildKit runs the build is the machine's business, not the build's: a daemon that stores images in containerd
(local mode's dockerd 26 with the containerd snapshotter) can export a registry cache from buildx's ``docker`` driver,
so its default builder is used; any other daemon (CodeBuild's) gets a ``docker-container`` builder named ``slipway``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from pipeline import bases
from pipeline.attest.sbom import from_layout
from pipeline.builders.base import BuildError, BuildRequest, BuiltImage, common_options, run
from pipeline.builders.docker_cli import docker_binary, docker_env, login_if_ecr
from pipeline.oci_layout import push_layout
from pipeline.registry.base import RegistryClient, RepositoryRef, endpoint

CONTAINER_BUILDER = "slipway"
DOCKER_DRIVER_BUILDER = "default"
CONTAINERD_STORE = "io.containerd.snapshotter"
BUILDKIT_LOCK_KEY = "BUILDKIT"


def build_command(docker: str, request: BuildRequest, *, builder: str, layout: Path, metadata_file: Path) -> list[str]:
    argv = [
        docker, "buildx", "build",
        "--builder", builder,
        "--progress", "plain",
        *common_options(request),
        "--provenance=false",
        "--sbom=false",
        "--output", f"type=oci,dest={layout},tar=false,rewrite-timestamp=true",
        "--cache-to", f"type=registry,ref={request.cache_ref},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true",
        "--metadata-file", str(metadata_file),
    ]  # fmt: skip
    if request.use_cache:
        argv += ["--cache-from", f"type=registry,ref={request.cache_ref}"]
    else:
        argv += ["--no-cache"]
    for secret in request.secrets:
        source = f"env={secret.env}" if secret.env else f"src={secret.src}"
        argv += ["--secret", f"id={secret.id},{source}"]
    return [*argv, str(request.context)]


def buildkit_image(request: BuildRequest) -> str:
    """The pinned BuildKit image for a docker-container builder: ``BUILDKIT`` in the lock, through the platform's
    pull-through cache on the build's own registry -- never ``moby/buildkit`` pulled anonymously from Docker Hub."""
    entry = bases.current(extra=[BUILDKIT_LOCK_KEY]).get(BUILDKIT_LOCK_KEY, "")
    if not entry:
        raise BuildError(
            f"image {request.repository} ({request.platform}): no {BUILDKIT_LOCK_KEY} in the base lock; the "
            "BuildKit image must come pinned from the platform's registry (images/lock.json)"
        )
    return f"{endpoint(RepositoryRef.parse(request.repository).host)}/{entry}"


def create_command(docker: str, request: BuildRequest) -> list[str]:
    return [docker, "buildx", "create", "--name", CONTAINER_BUILDER, "--driver", "docker-container",
            "--driver-opt", f"image={buildkit_image(request)}"]  # fmt: skip


def build_environment(request: BuildRequest) -> dict[str, str]:
    return {**docker_env(), "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}


class BuildxBuilder:
    name = "buildx"

    def __init__(self, docker: str | None = None, *, client: RegistryClient | None = None) -> None:
        self.docker = docker or docker_binary()
        self._client = client
        self._instance = ""
        self._lock = threading.Lock()

    def _builder_instance(self, request: BuildRequest) -> str:
        with self._lock:
            if not self._instance:
                info = run(
                    [self.docker, "info", "--format", "{{json .DriverStatus}}"], request=request, env=docker_env()
                )
                if CONTAINERD_STORE in info:
                    self._instance = DOCKER_DRIVER_BUILDER
                else:
                    self._ensure_container_builder(request)
                    self._instance = CONTAINER_BUILDER
            return self._instance

    def _ensure_container_builder(self, request: BuildRequest) -> None:
        try:
            run([self.docker, "buildx", "inspect", CONTAINER_BUILDER], request=request, env=docker_env())
        except BuildError:
            run(create_command(self.docker, request), request=request, env=docker_env())

    def build(self, request: BuildRequest) -> BuiltImage:
        request.secret_values()  # fail before building when a secret is missing
        repo = RepositoryRef.parse(request.repository)
        login_if_ecr(self.docker, request.repository)
        builder = self._builder_instance(request)
        with tempfile.TemporaryDirectory(prefix="slipway-buildx-") as directory:
            layout, metadata_file = Path(directory) / "layout", Path(directory) / "metadata.json"
            argv = build_command(self.docker, request, builder=builder, layout=layout, metadata_file=metadata_file)
            log = run(argv, request=request, env=build_environment(request))
            metadata = json.loads(metadata_file.read_text())
            if not isinstance(built := metadata.get("containerimage.digest"), str):
                raise BuildError(f"image {request.repository} ({request.platform}): buildx metadata has no digest")
            if self._client is None:
                from pipeline.registry import client_for

                self._client = client_for(repo)
            digest = push_layout(self._client, repo, layout)
            when = datetime.fromtimestamp(request.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            sbom = from_layout(layout, name=f"{request.repository} {request.platform}", digest=digest, created=when)
        if digest != built:
            raise BuildError(
                f"image {request.repository} ({request.platform}): buildx built {built}, layout holds {digest}"
            )
        return BuiltImage(digest, log, sbom)


def forget_everything(docker: str | None = None) -> None:
    """A fresh runner: BuildKit's local cache pruned and every image removed, so only the registry cache is left."""
    docker = docker or docker_binary()
    request = BuildRequest(repository="local/prune", platform="linux/amd64", context=Path(), dockerfile=Path())
    run([docker, "buildx", "prune", "--all", "--force"], request=request, env=docker_env())
    run([docker, "image", "prune", "--all", "--force"], request=request, env=docker_env())
