"""One CodeBuild action, run as CodeBuild runs it.

A clean workspace holding only the action's input artifacts (the primary one as ``CODEBUILD_SRC_DIR``, the others as
``CODEBUILD_SRC_DIR_<name>``); the project's environment variables (plaintext, and ``SECRETS_MANAGER`` values read
from the AWS stand-in) overridden by the action's; the buildspec's phases in order in one shell whose environment
carries from command to command; CodeBuild's failure rules (a failed install or pre_build ends the build; post_build
runs after a failed build, which stays failed, with ``CODEBUILD_BUILD_SUCCEEDING=0``; ``on-failure: CONTINUE``
goes on); then ``artifacts.files`` collected into the output artifact.

A project's image in ECR by digest (Slipway's runner: every synthesized project) runs the job in a container of it, as CodeBuild runs it: pulled with the project role's registry token, the workspace mounted
at the same path, the host network (the registry and the AWS stand-in on 127.0.0.1), the replay's Docker daemon
standing in for privileged mode, and no way to a package index (``PIP_INDEX_URL`` and the proxies at a closed port).
Any other image is refused (:mod:`pipeline.local.replay.executor`): every synthesized project runs in the runner.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.assembly import Project
from pipeline.builders.docker_cli import docker_binary, docker_env
from pipeline.errors import SlipwayError
from pipeline.local.replay import standins
from pipeline.registry.base import pull_address

PHASES = ("install", "pre_build", "build", "post_build")


class CodeBuildError(SlipwayError):
    pass


CLOSED = "http://127.0.0.1:9"
"""A port nothing listens on: where a container job's package index and proxies point."""
NO_FETCH = {"PIP_INDEX_URL": f"{CLOSED}/simple", "PIP_NO_INDEX": "1", "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED,
            "http_proxy": CLOSED, "https_proxy": CLOSED, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}  # fmt: skip
IMAGE_PATH = "/opt/slipway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The runner image's PATH (images/runner/Dockerfile)."""
STANDINS = standins.MOUNT


@dataclass(frozen=True)
class Container:
    """Run a job in ``image`` (already pulled or pullable with ``docker_config``) for ``platform``."""

    image: str
    platform: str
    mounts: tuple[str, ...]
    """``--volume`` values: host paths at the same path (the state directory with the workspace, the Docker socket's
    directory), the stand-ins at :data:`STANDINS`."""
    docker_config: Path
    """The project role's registry login the image is pulled with."""


def host_mounts(docker_host: str) -> tuple[str, ...]:
    """What a container job reaches at the same path besides the state directory: the directory of the daemon's
    socket (standing in for privileged mode), and this machine's CA bundle (a TLS-intercepting proxy), as its own."""
    mounts = []
    if docker_host.startswith("unix://"):
        mounts.append(str(Path(docker_host.removeprefix("unix://")).parent))
    if os.environ.get("SSL_CERT_FILE"):
        mounts.append(os.environ["SSL_CERT_FILE"])
    return tuple(mounts)


def in_container(project: Project) -> bool:
    """Whether the project's image is one the replay can run: an ECR image named by digest."""
    return ".dkr.ecr." in project.image and "@sha256:" in project.image


def project_platform(project: Project) -> str:
    """The runner child CodeBuild runs the project's jobs in: arm64 on ``ARM_CONTAINER`` hosts."""
    return "linux/arm64" if project.environment_type.startswith("ARM") else "linux/amd64"


def container_platform(project: Project) -> str:
    """The runner child the replay runs a job in: this machine's own, whatever the project's. An ``ARM_CONTAINER`` job
    runs natively on CodeBuild's arm64 hosts; here the arm64 child's Python would run under QEMU (measured: about 50 s
    more for an arm64 Build job on this 2-core machine, for no difference in what it builds: ``--platform`` names the
    target). The arm64 child is the same index's, with the same versions (checked by the end-to-end test)."""
    return HOST_PLATFORM


HOST_PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(os.uname().machine, "linux/amd64")


@dataclass(frozen=True)
class Job:
    project: Project
    workspace: Path
    primary: str
    inputs: dict[str, Path]
    environment: dict[str, str]
    """Everything the job's shell starts with, besides the project's and the action's variables."""
    action_variables: dict[str, str]
    secret: Callable[[str], str]
    """Reads a ``SECRETS_MANAGER`` variable's value (``name`` or ``name:json-key``) from the AWS stand-in."""
    container: Container | None = None
    started: float = 0.0
    """When the action started (``time.monotonic()``): the overhead counts the registry login and the pull too."""


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    log: Path
    output: Path
    failed_phase: str = ""


def _phase_script(commands: list[str], env_file: Path) -> str:
    """One phase in the job's shell: the environment the last phase left, each command in turn, stop at the first
    failure (CodeBuild's default), and the environment saved for the next phase."""
    lines = [f". {shlex.quote(str(env_file))}", "set -o pipefail"]
    for command in commands:
        lines += [f"echo {shlex.quote('[Container] Running command ' + command)}", command,
                  'status=$?; if [ "$status" -ne 0 ]; then export -p > ' + shlex.quote(str(env_file)) + "; exit $status; fi"]  # fmt: skip
    lines.append(f"export -p > {shlex.quote(str(env_file))}")
    return "\n".join(lines) + "\n"


OVERHEAD = "[Container] Overhead"
"""The log line saying how long the job took from its start to its first buildspec command (``benchmarks/runner.py``)."""


def run(job: Job, *, timeout: float = 3600) -> Outcome:
    started = job.started or time.monotonic()
    ws = job.workspace
    source, output, tmp, home = ws / "src", ws / "output", ws / "tmp", ws / "home"
    for directory in (output, tmp, home):
        directory.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, path in job.inputs.items():  # every input is the job's own copy, as CodeBuild downloads each
        copies[name] = source if name == job.primary else ws / "inputs" / name
        shutil.copytree(path, copies[name], symlinks=True)
    source.mkdir(exist_ok=True)
    variables = _variables(job, source, copies)
    env_file = ws / "environment.sh"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items()))
    spec = job.project.buildspec
    log = ws / "log.txt"
    failed = ""
    with log.open("w", encoding="utf-8") as out, _shell(job, source, out) as shell:
        for phase in PHASES:
            raw = spec.get("phases", {}).get(phase)
            if not raw or (failed and not (phase == "post_build" and failed == "build")):
                continue
            if started:
                out.write(f"{OVERHEAD} {time.monotonic() - started:.2f} s (job start to first buildspec command)\n")
                started = 0.0
            out.write(f"[Container] Entering phase {phase.upper()}\n")
            out.flush()
            returncode = shell(_phase_script(list(raw.get("commands", [])), env_file), variables["PATH"], timeout)
            if returncode != 0 and raw.get("on-failure", "ABORT") != "CONTINUE":
                out.write(f"[Container] Phase {phase.upper()} failed with exit status {returncode}\n")
                failed = failed or phase
                with env_file.open("a", encoding="utf-8") as variables_out:  # what post_build sees, as in CodeBuild
                    variables_out.write("export CODEBUILD_BUILD_SUCCEEDING=0\n")
    if failed:
        return Outcome(False, log, output, failed)
    try:
        _collect(spec.get("artifacts", {}), source, output)
    except CodeBuildError as exc:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"[Container] UPLOAD_ARTIFACTS failed: {exc}\n")
        return Outcome(False, log, output, "upload_artifacts")
    return Outcome(True, log, output)


Shell = Callable[[str, str, float], int]
"""``(script, PATH, timeout) → exit status`` of one phase in the job's shell."""


@contextlib.contextmanager
def _shell(job: Job, source: Path, out: TextIO) -> Iterator[Shell]:
    if job.container is None:

        def on_host(script: str, path: str, timeout: float) -> int:
            return subprocess.run(
                ["bash", "--noprofile", "--norc", "-c", script], cwd=source, stdout=out, stderr=subprocess.STDOUT,
                env={"PATH": path}, timeout=timeout, check=False,
            ).returncode  # fmt: skip

        yield on_host
        return
    container = job.container
    name = "slipway-job-" + hashlib.sha256(str(job.workspace).encode()).hexdigest()[:16]
    docker = [docker_binary()]
    environment = {**os.environ, **docker_env(), "DOCKER_HOST": job.environment.get("DOCKER_HOST", "")}
    argv = [*docker, "--config", str(container.docker_config), "run", "--detach", "--rm", "--name", name,
            "--network", "host", "--platform", container.platform, "--workdir", str(source), "--entrypoint", "sleep"]  # fmt: skip
    for mount in container.mounts:
        argv += ["--volume", mount]
    started = subprocess.run([*argv, pull_address(container.image), "infinity"], env=environment, capture_output=True,
                             text=True, check=False, timeout=600)  # fmt: skip
    if started.returncode != 0:
        raise CodeBuildError(f"image {container.image} ({container.platform}): {started.stderr.strip()[-400:]}")
    out.write(f"[Container] Running in {container.image} ({container.platform} child; CodeBuild's: "
              f"{project_platform(job.project)})\n")  # fmt: skip

    def in_container(script: str, path: str, timeout: float) -> int:
        try:
            return subprocess.run(
                [*docker, "exec", "--workdir", str(source), "--env", f"PATH={path}", name,
                 "bash", "--noprofile", "--norc", "-c", script],
                stdout=out, stderr=subprocess.STDOUT, env=environment, timeout=timeout, check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            return 124

    try:
        yield in_container
    finally:
        subprocess.run([*docker, "rm", "--force", name], env=environment, capture_output=True, check=False)


def _variables(job: Job, source: Path, copies: dict[str, Path]) -> dict[str, str]:
    variables = dict(job.environment)
    for name, path in copies.items():
        if name != job.primary:
            variables[f"CODEBUILD_SRC_DIR_{name}"] = str(path)
    variables["CODEBUILD_SRC_DIR"] = str(source)
    variables["CODEBUILD_BUILD_SUCCEEDING"] = "1"  # 0 from a failed phase on, as post_build reads it
    # What CodeBuild names each build by (Stitch's provenance names its project from it).
    region = job.environment.get("AWS_REGION") or job.environment.get("AWS_DEFAULT_REGION", "")
    account = job.project.role.split(":")[4] if job.project.role.count(":") >= 5 else ""
    variables["CODEBUILD_BUILD_ARN"] = f"arn:aws:codebuild:{region}:{account}:build/{job.project.name}:{uuid.uuid4()}"
    for variable in job.project.variables:
        if variable.type == "SECRETS_MANAGER":
            variables[variable.name] = job.secret(variable.value)
        elif variable.type == "PLAINTEXT":
            variables[variable.name] = variable.value
        else:
            raise CodeBuildError(f"project {job.project.name}: variable {variable.name} of type {variable.type}")
    variables.update(job.action_variables)
    return variables


def _collect(artifacts: dict[str, object], source: Path, output: Path) -> None:
    patterns = artifacts.get("files", [])
    if not isinstance(patterns, list):
        raise CodeBuildError(f"artifacts.files: expected a list, got {json.dumps(patterns)}")
    base = source / str(artifacts.get("base-directory", ""))
    for pattern in patterns:
        matches = [m for m in base.glob(pattern) if m.is_file()]
        if not matches:
            raise CodeBuildError(f"no matching artifact paths found for {pattern}")
        for match in matches:
            target = output / match.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(match, target)


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def base_environment(workspace: Path, extra: dict[str, str], *, container: bool = True) -> dict[str, str]:
    """What every job's shell starts with: its own HOME and TMPDIR, and its own docker config (``~/.docker``): the
    registry logins of two jobs side by side never mix, as they never do on CodeBuild. In a container, the image's
    PATH with the stand-ins first, and no way to a package index; on the host (unit tests' jobs only), the system's
    PATH."""
    docker_config = workspace / "home" / ".docker"
    docker_config.mkdir(parents=True, exist_ok=True)
    common = {"HOME": str(workspace / "home"), "TMPDIR": str(workspace / "tmp"), "LANG": "C.UTF-8",
              "DOCKER_CONFIG": str(docker_config), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # fmt: skip
    if not container:
        return {**common, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **extra}
    # The load balancers' proxy, when the run has one, stays the HTTPS proxy: it reaches only those.
    unfetched = {k: v for k, v in extra.items() if not k.startswith("PIP_")}
    return {**common, **NO_FETCH, **unfetched, "PIP_INDEX_URL": NO_FETCH["PIP_INDEX_URL"], "PIP_NO_INDEX": "1",
            "PATH": f"{STANDINS}/bin:{IMAGE_PATH}", "PYTHONPATH": f"{STANDINS}/site"}  # fmt: skip
