"""``docker buildx`` (BuildKit in a docker-container builder): what CodeBuild runs.

Pushes by digest with no tag (``push-by-digest=true``), no provenance or SBOM attestations inside the image (Lambda
would refuse the resulting index), and a registry cache per platform with OCI media types.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pipeline.builders.base import BuildError, BuildRequest, BuiltImage, common_options, run
from pipeline.builders.docker_cli import docker_binary, login_if_ecr

BUILDER_NAME = "slipway"


def build_command(docker: str, request: BuildRequest, metadata_file: Path) -> list[str]:
    argv = [
        docker, "buildx", "build",
        "--builder", BUILDER_NAME,
        "--progress", "plain",
        *common_options(request),
        "--provenance=false",
        "--sbom=false",
        "--output",
        f"type=image,name={request.repository},push-by-digest=true,name-canonical=true,push=true,oci-mediatypes=true",
        "--cache-from", f"type=registry,ref={request.cache_ref}",
        "--cache-to", f"type=registry,ref={request.cache_ref},mode=max,image-manifest=true,oci-mediatypes=true",
        "--metadata-file", str(metadata_file),
    ]  # fmt: skip
    for secret in request.secrets:
        source = f"env={secret.env}" if secret.env else f"src={secret.src}"
        argv += ["--secret", f"id={secret.id},{source}"]
    return [*argv, str(request.context)]


class BuildxBuilder:
    name = "buildx"

    def __init__(self, docker: str | None = None) -> None:
        self.docker = docker or docker_binary()

    def _ensure_builder(self, request: BuildRequest) -> None:
        # The default "docker" driver cannot export a registry cache; a docker-container builder can.
        try:
            run([self.docker, "buildx", "inspect", BUILDER_NAME], request=request)
        except BuildError:
            run(
                [self.docker, "buildx", "create", "--name", BUILDER_NAME, "--driver", "docker-container"],
                request=request,
            )

    def build(self, request: BuildRequest) -> BuiltImage:
        request.secret_values()  # fail before building when a secret is missing
        login_if_ecr(self.docker, request.repository)
        self._ensure_builder(request)
        with tempfile.TemporaryDirectory(prefix="slipway-buildx-") as directory:
            metadata_file = Path(directory) / "metadata.json"
            log = run(build_command(self.docker, request, metadata_file), request=request)
            metadata = json.loads(metadata_file.read_text())
        digest = metadata.get("containerimage.digest")
        if not isinstance(digest, str):
            raise BuildError(f"image {request.repository} ({request.platform}): buildx metadata has no digest")
        return BuiltImage(digest, log)
