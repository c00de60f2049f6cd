"""Pieces the docker-CLI builders share: which client binary, ECR login, secrets as files."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.builders.base import BuildError, BuildRequest
from pipeline.registry.base import RepositoryRef

# Debian's client speaks to Debian's dockerd 20.10 without the buildx plugin the newer client insists on.
_PREFERRED_DOCKER = "/usr/bin/docker"


def docker_binary() -> str:
    configured = os.environ.get("SLIPWAY_DOCKER")
    if configured:
        return configured
    if Path(_PREFERRED_DOCKER).exists():
        return _PREFERRED_DOCKER
    return shutil.which("docker") or "docker"


def login_if_ecr(docker: str, repository: str) -> None:
    """Log the CLI in to ECR with a fresh token; other registries are used as already configured."""
    repo = RepositoryRef.parse(repository)
    if (account_region := repo.ecr_account_region) is None:
        return
    import base64

    from pipeline.registry.ecr_auth import ecr_basic_auth

    token = base64.b64decode(ecr_basic_auth(account_region[1]).removeprefix("Basic ")).decode()
    password = token.split(":", 1)[1]
    completed = subprocess.run(
        [docker, "login", "--username", "AWS", "--password-stdin", repo.host],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BuildError(f"docker login to {repo.host} failed: {completed.stderr.strip()}")


@contextlib.contextmanager
def secret_files(request: BuildRequest) -> Iterator[dict[str, Path]]:
    """Secret values as 0600 files in a private directory, removed when the build ends.

    Files (``src=``) rather than ``env=`` because docker 20.10's classic build accepts only files. Either way the
    value reaches RUN steps only as a BuildKit secret mount, never a layer, build arg or ENV.
    """
    values = request.secret_values()
    with tempfile.TemporaryDirectory(prefix="slipway-secrets-") as directory:
        paths = {}
        for secret_id, value in values.items():
            path = Path(directory) / secret_id
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
            paths[secret_id] = path
        yield paths
