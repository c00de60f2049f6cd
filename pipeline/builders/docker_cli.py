"""Which docker CLI and daemon Slipway drives, and how it logs in to ECR.

Locally (and in tests) the builder is dockerd 26 + the docker CLI 26 + buildx 0.13 from Debian 13's packages, unpacked
by ``scripts/system-deps.sh`` into a private prefix (``/opt/slipway/builder``) so that Debian 12 and Debian 13 machines
run the same builder without replacing any system package. In CodeBuild, the image's own ``docker`` (with its buildx
plugin) is on ``PATH`` and the prefix does not exist.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

from pipeline.builders.base import BuildError
from pipeline.registry.base import RepositoryRef, endpoint

PREFIX_ENV = "SLIPWAY_BUILDER_PREFIX"
DEFAULT_PREFIX = Path("/opt/slipway/builder")


def builder_prefix() -> Path:
    return Path(os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX)


def dockerd_binary() -> Path:
    return builder_prefix() / "usr" / "sbin" / "dockerd"


def docker_binary() -> str:
    """``$SLIPWAY_DOCKER``, else the private prefix's client, else ``docker`` on PATH (CodeBuild)."""
    configured = os.environ.get("SLIPWAY_DOCKER")
    if configured:
        return configured
    private = builder_prefix() / "usr" / "bin" / "docker"
    if private.exists():
        return str(private)
    return shutil.which("docker") or "docker"


def docker_env() -> dict[str, str]:
    """Environment for the CLI: the private prefix keeps the buildx plugin (and its logins) in its own DOCKER_CONFIG."""
    config = builder_prefix() / "config"
    if "DOCKER_CONFIG" in os.environ or not (config / "cli-plugins").is_dir():
        return {}
    return {"DOCKER_CONFIG": str(config)}


def login_if_ecr(docker: str, repository: str) -> None:
    """Log the CLI in to ECR with a fresh token (BuildKit's registry cache needs it); other registries as configured."""
    repo = RepositoryRef.parse(repository)
    if (account_region := repo.ecr_account_region) is None:
        return
    from pipeline.registry.ecr_auth import ecr_basic_auth

    token = base64.b64decode(ecr_basic_auth(account_region[1]).removeprefix("Basic ")).decode()
    password = token.split(":", 1)[1]
    completed = subprocess.run(
        [docker, "login", "--username", "AWS", "--password-stdin", endpoint(repo.host)],
        input=password,
        env={**os.environ, **docker_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BuildError(f"docker login to {repo.host} failed: {completed.stderr.strip()}")
