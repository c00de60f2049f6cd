"""Buildspecs as data. Each one only calls Slipway's CLI, which the runner image holds (:mod:`pipeline.runner_image`):
nothing is installed when a job starts, and no shell logic lives in YAML.

CodeBuild exposes a pipeline's secondary input artifacts at ``$CODEBUILD_SRC_DIR_<artifact>``; that and the
Secrets Manager environment variables are the only shell expansions used. Every value that comes from platform.toml
is quoted with :func:`shlex.quote` (and was validated at load against a character set no shell needs to quote): a
value can never become a command in a build job.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from infra.blueprint import BuildStep, PipelineBlueprint

REPOSITORY_ENV = "SLIPWAY_REPOSITORY_URI"
COMMIT_ENV = "SLIPWAY_COMMIT"
COMMIT_TIME_ENV = "SLIPWAY_COMMIT_TIME"


def q(value: str) -> str:
    """A config value as one shell word."""
    return shlex.quote(value)


def secret_env(secret_id: str) -> str:
    """Environment variable CodeBuild fills from Secrets Manager for BuildKit secret ``secret_id``."""
    return f"SLIPWAY_SECRET_{secret_id.upper().replace('-', '_')}"


def build_artifact(step: BuildStep) -> str:
    return f"build_{step.slug}"


def build_metadata_file(step: BuildStep) -> str:
    return f"build-{step.slug}.json"


def _canonical(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()


def _spec(commands: list[str], files: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "0.2", "phases": {"build": {"commands": commands}}}
    if files:
        spec["artifacts"] = {"files": files}
    return spec


def lint(bp: PipelineBlueprint, registry: str, allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    """``registry``: the host the base-image lock is relative to (the platform's ECR). ``allowed``: the image prefixes
    SW001 accepts -- given on the command line, because the service's own repository has no platform.toml."""
    target = f" --target {q(bp.target)}" if bp.target else ""
    allow = "".join(f" --allow-registry {q(prefix)}" for prefix in allowed)
    return _spec([f"slipway lint --registry {q(registry)}{allow}{target} {q(bp.dockerfile_path)}"])


DOCKERD = "slipway runner dockerd"
LANE_ON_FAILURE = 'if [ "$CODEBUILD_BUILD_SUCCEEDING" = 0 ]; then slipway bases continue; fi'
"""A failed build gives its team's rebuild lane up (CodeBuild runs post_build after a failed build phase)."""


def build(bp: PipelineBlueprint, step: BuildStep, *, lanes: bool = False) -> dict[str, Any]:
    """``lanes``: the platform has a lock store; a failed build starts the next pipeline of its team's lane."""
    args = [
        "slipway build",
        "--builder buildx",
        f'--repository "${REPOSITORY_ENV}"',
        f"--platform {q(step.platform)}",
        f"--context {q(bp.context)}",
        f"--dockerfile {q(bp.dockerfile_path)}",
        *([f"--target {q(bp.target)}"] if bp.target else []),
        *(f"--secret {q(f'id={s.id},env={secret_env(s.id)}')}" for s in bp.secrets),
        f'--source-date "${COMMIT_TIME_ENV}"',
        f"--out {build_metadata_file(step)}",
    ]
    # The record and the image's SBOM beside it (Stitch signs it with the release: pipeline.attest.sbom).
    record = build_metadata_file(step)
    spec = _spec([" ".join(args)], files=[record, record.removesuffix(".json") + ".spdx.json"])
    # CodeBuild starts no Docker daemon in a custom image, privileged or not: the runner's own, unless one answers.
    spec["phases"] = {"pre_build": {"commands": [DOCKERD]}, **spec["phases"]}
    if lanes:
        spec["phases"]["post_build"] = {"commands": [LANE_ON_FAILURE]}
    return spec


def stitch(bp: PipelineBlueprint, *, lanes: bool = False, release_key: str = "") -> dict[str, Any]:
    """``lanes``: the platform has a lock store, so the job ends by starting the next pipeline of its team's rebuild
    lane -- whether or not this build made a release that moved. ``release_key``: the release is signed with it, with
    its provenance (the SHA-256 of each build's buildspec, as synthesized here, among what it names)."""
    inputs = " ".join(
        f'--build "$CODEBUILD_SRC_DIR_{build_artifact(step)}/{build_metadata_file(step)}"' for step in bp.builds
    )
    # A base image republishes a released commit as <commit>.N; a service's release is its commit and its bases.
    release = " --rebuilds" if bp.rebuilds else " --bases-from-builds"
    commands = [
        f'slipway stitch --repository "${REPOSITORY_ENV}" --tag "${COMMIT_ENV}" {inputs}{release} --out image.json',
        "slipway verify --image-json image.json",
    ]
    if release_key:
        specs = " ".join(
            f"--buildspec Build-{step.slug}={hashlib.sha256(_canonical(build(bp, step, lanes=lanes))).hexdigest()}"
            for step in bp.builds
        )
        commands.append(f"slipway attest --image-json image.json --key {q(release_key)} --source {q(bp.source_repo)} "
                        f"{inputs} {specs}")  # fmt: skip
    if bp.lock_key:
        # Last, once the release verified: a base release that fails its pipeline reaches nothing.
        commands.append(f"slipway bases publish --image-json image.json --key {q(bp.lock_key)} {inputs}")
    if lanes:
        commands.append("slipway bases continue")
    return _spec(commands, files=["image.json"])


def deploy(kind: str, args: tuple[str, ...], *, record: str = "") -> dict[str, Any]:
    """The deploy action's only input is the stitched image, so CodeBuild unpacks image.json into the job's root."""
    record = record or f"deployed-{kind}.json"
    quoted = " ".join(q(a) for a in args)
    return _spec([f"slipway deploy {q(kind)} --image-json image.json {quoted} --out {record}"], files=[record])


def platform_deploy(config_file: str) -> dict[str, Any]:
    """The platform pipeline's Deploy: this checkout's Slipway (not the runner's: a change to Slipway deploys with the
    code it changed), with the CDK libraries and CLI of the runner's ``platform`` target, synthesizing and deploying
    the checkout."""
    # `python3 -m` from the checkout: the CDK app's assets are paths inside the repository.
    return _spec([f"python3 -m pipeline.cli platform deploy --config {q(config_file)}"])


def refresh(lock_file: str, registry: str) -> dict[str, Any]:
    """The platform pipeline's refresh: the committed lock's upstream tags resolved again, moved digests published."""
    return _spec([f"slipway bases refresh --lock {q(lock_file)} --registry {q(registry)}"])
