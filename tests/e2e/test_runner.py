"""Every job of the replay ran in Slipway's runner image, and a job there reaches no package index (issue #27)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline import bases, runner_image
from pipeline.assembly import Project
from pipeline.builders.docker_cli import docker_binary, docker_env
from pipeline.deployers import workload
from pipeline.local import runner
from pipeline.local.replay import codebuild, executor, standins
from pipeline.local.state import LocalState
from pipeline.registry.base import pull_address

pytestmark = pytest.mark.e2e
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
VERSIONS = (
    "slipway --help | head -1; docker --version; docker buildx version; dockerd --version; "
    "kubectl version --client | head -1; hadolint --version; aws --version 2>&1 | cut -d' ' -f1; python3 --version"
)


def runner_uri(local: LocalState) -> str:
    return runner_image.image_uri(bases.load(local.lock_path), ECR)


def test_every_codebuild_job_ran_in_the_locked_runner(local: LocalState) -> None:
    """Every job's log opens in the runner by the digest the platform repository's lock pins: the platform's Deploy in
    the runner's `platform` target, every other job in the runner itself."""
    lock = bases.load(local.lock_path)
    runner, deploy = (runner_image.image_uri(lock, ECR, key) for key in runner_image.TARGETS)
    logs = sorted((local.directory / "executions").glob("*/*/*/*/log.txt"))
    assert len(logs) > 30
    for log in logs:
        platform_deploy = log.parts[-5] == "slipway-platform" and log.parts[-3] == "Deploy"
        first = log.read_text().splitlines()[0]
        assert first.startswith(f"[Container] Running in {deploy if platform_deploy else runner} "), f"{log}: {first}"
    assert any("CodeBuild's: linux/arm64" in log.read_text() for log in logs)  # ARM_CONTAINER projects too


def _job(local: LocalState, tmp_path: Path, commands: list[str]) -> codebuild.Outcome:
    image = runner_uri(local)
    environment = {**runner.aws_environment(local), "DOCKER_HOST": local.docker_host}
    with workload.acting_as(environment):
        executor._login(image, environment, tmp_path / "pull")
    state = str(local.directory)
    mounts = (f"{state}:{state}", f"{standins.prepare(local.directory)}:{codebuild.STANDINS}:ro",
              *(f"{m}:{m}" for m in codebuild.host_mounts(local.docker_host)))  # fmt: skip
    workspace = local.directory / "executions" / "test-runner" / tmp_path.name
    project = Project("test-runner", {"version": "0.2", "phases": {"build": {"commands": commands}}},
                      "LINUX_CONTAINER", image, True, "", ())  # fmt: skip
    job = codebuild.Job(
        project=project, workspace=workspace, primary="", inputs={},
        environment=codebuild.base_environment(workspace, environment), action_variables={},
        secret=lambda reference: "", container=codebuild.Container(image, "linux/amd64", mounts, tmp_path / "pull"),
    )  # fmt: skip
    with workload.acting_as(environment):  # the ECR host reached at the registry stand-in, as the replay's jobs do
        return codebuild.run(job, timeout=300)


def test_a_job_in_the_runner_reaches_no_package_index(local: LocalState, tmp_path: Path) -> None:
    """pip finds no index and HTTPS reaches nothing beyond 127.0.0.1, while Slipway, the registry and the AWS
    stand-in answer: what the replay's jobs passed with."""
    outcome = _job(local, tmp_path, [
        "slipway --help > /dev/null",
        'aws sts get-caller-identity --endpoint-url "$AWS_ENDPOINT_URL" > /dev/null',
        '! pip download --no-deps --dest "$TMPDIR/fetched" six',
        "! python3 -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/six/', timeout=10)\"",
        'test -z "$(ls -A "$TMPDIR/fetched" 2>/dev/null)"',
    ])  # fmt: skip
    log = outcome.log.read_text()
    assert outcome.succeeded, log
    assert "Overhead" in log


def test_the_arm64_child_holds_what_the_amd64_child_holds(local: LocalState) -> None:
    """The replay runs the amd64 child for ARM_CONTAINER projects too; the arm64 child CodeBuild pulls there carries
    the same tools at the same versions (run here under QEMU)."""
    with workload.acting_as(runner.aws_environment(local)):
        image = pull_address(runner_uri(local))
    config = local.directory / "runtime-docker"
    environment = {**os.environ, **docker_env(), "DOCKER_HOST": local.docker_host, "DOCKER_CONFIG": str(config)}
    found = {}
    for platform in ("linux/amd64", "linux/arm64"):
        completed = subprocess.run(
            [docker_binary(), "run", "--rm", "--network", "host", "--platform", platform, image, "bash", "-c",
             f"uname -m; {VERSIONS}"],
            env=environment, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-1000:]
        found[platform] = completed.stdout.splitlines()
    assert found["linux/amd64"][0] == "x86_64" and found["linux/arm64"][0] == "aarch64"
    assert found["linux/amd64"][1:] == found["linux/arm64"][1:]
    assert any(line.startswith("Docker version 26.1.5") for line in found["linux/arm64"])
    assert "Client Version: v1.36.4" in found["linux/arm64"]
