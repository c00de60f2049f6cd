"""docker CLI + dockerd with built-in BuildKit (``DOCKER_BUILDKIT=1``), as Debian's ``docker.io`` ships it.

The classic build cannot push by digest or export a registry cache, so the image is pushed under its mutable
per-platform cache tag (``cache-<arch>``) with BuildKit's inline cache in it: the tag that seeds the next build's
cache is the same push the digest comes from. The release tag is still written only by stitch.
"""

from __future__ import annotations

import re

from pipeline.builders.base import BuildError, BuildRequest, BuiltImage, common_options, run
from pipeline.builders.docker_cli import docker_binary, login_if_ecr, secret_files

_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")


def build_command(docker: str, request: BuildRequest, secret_paths: dict[str, object]) -> list[str]:
    argv = [
        docker, "build", "--progress", "plain",
        *common_options(request),
        "--tag", request.cache_ref,
        "--cache-from", request.cache_ref,
        "--build-arg", "BUILDKIT_INLINE_CACHE=1",
    ]  # fmt: skip
    for secret_id, path in secret_paths.items():
        argv += ["--secret", f"id={secret_id},src={path}"]
    return [*argv, str(request.context)]


class DockerBuilder:
    name = "docker"

    def __init__(self, docker: str | None = None) -> None:
        self.docker = docker or docker_binary()

    def build(self, request: BuildRequest) -> BuiltImage:
        login_if_ecr(self.docker, request.repository)
        with secret_files(request) as paths:
            argv = build_command(self.docker, request, dict(paths))
            log = run(argv, request=request, env={"DOCKER_BUILDKIT": "1"})
        output = run([self.docker, "push", request.cache_ref], request=request)
        match = _PUSHED.search(output)
        if match is None:
            raise BuildError(f"image {request.repository} ({request.platform}): docker push printed no digest")
        return BuiltImage(match[1], log)
