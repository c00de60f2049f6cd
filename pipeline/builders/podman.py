"""podman: builds and pushes with no daemon (Debian's podman 4.3), e.g. on hosts without dockerd."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.builders.base import BuildError, BuildRequest, BuiltImage, common_options, run
from pipeline.builders.docker_cli import secret_files
from pipeline.registry.base import RepositoryRef
from pipeline.registry.distribution import is_loopback


def build_command(podman: str, request: BuildRequest, secret_paths: dict[str, object]) -> list[str]:
    argv = [podman, "build", *common_options(request), "--tag", request.cache_ref, "--layers"]
    for secret_id, path in secret_paths.items():
        argv += ["--secret", f"id={secret_id},src={path}"]
    return [*argv, str(request.context)]


def push_command(podman: str, request: BuildRequest, digest_file: Path) -> list[str]:
    tls = ["--tls-verify=false"] if is_loopback(RepositoryRef.parse(request.repository).host) else []
    return [podman, "push", *tls, "--format", "oci", "--digestfile", str(digest_file), request.cache_ref]


class PodmanBuilder:
    name = "podman"

    def __init__(self, podman: str = "podman") -> None:
        self.podman = podman

    def build(self, request: BuildRequest) -> BuiltImage:
        with secret_files(request) as paths:
            log = run(build_command(self.podman, request, dict(paths)), request=request)
        with tempfile.TemporaryDirectory(prefix="slipway-podman-") as directory:
            digest_file = Path(directory) / "digest"
            run(push_command(self.podman, request, digest_file), request=request)
            digest = digest_file.read_text().strip()
        if not digest.startswith("sha256:"):
            raise BuildError(f"image {request.repository} ({request.platform}): podman push wrote no digest")
        return BuiltImage(digest, log)
