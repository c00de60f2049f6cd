"""One CodeBuild action, run as CodeBuild runs it.

A clean workspace holding only the action's input artifacts (the primary one as ``CODEBUILD_SRC_DIR``, the others as
``CODEBUILD_SRC_DIR_<name>``); the project's environment variables (plaintext, and ``SECRETS_MANAGER`` values read
from the AWS stand-in) overridden by the action's; the buildspec's phases in order in one shell whose environment
carries from command to command; CodeBuild's failure rules (a failed install or pre_build ends the build; post_build
runs after a failed build, which stays failed, with ``CODEBUILD_BUILD_SUCCEEDING=0``; ``on-failure: CONTINUE``
goes on); then ``artifacts.files``
collected into the output artifact.

The runner "image" is a fresh virtual environment per action on top of a shared one holding Python's packages and
the AWS CLI (as CodeBuild's standard images hold them), so ``pip3 install`` of the tools zip and ``aws s3 cp`` in
the buildspec run for real, each action in its own prefix and its own ``/tmp`` (``TMPDIR``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.assembly import Project
from pipeline.builders.docker_cli import builder_prefix
from pipeline.errors import SlipwayError

# What CodeBuild's standard images carry besides Python: the AWS CLI, a build backend for the tools zip, and the EKS
# stand-in's schema check.
IMAGE_PACKAGES = ("awscli", "setuptools", "wheel", "kubernetes-validate==1.37.0")
IMAGE_EXTRAS = ("lint", "cdk")
"""Slipway's extras in the image: the Lint job's parser, and the CDK libraries the platform's Deploy job synthesizes
with. CodeBuild's images hold neither (those jobs install them, pinned); here they are installed once, not per job."""
PHASES = ("install", "pre_build", "build", "post_build")
ROOT = Path(__file__).resolve().parents[3]


class CodeBuildError(SlipwayError):
    pass


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


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    log: Path
    output: Path
    failed_phase: str = ""


def runner_image(directory: Path) -> Path:
    """The shared layer of the runner: Python packages Slipway's tools need, and the AWS CLI. Built once per
    pyproject.toml (its hash names the directory); Slipway itself is not in it -- each job installs the tools zip."""
    recipe = (ROOT / "pyproject.toml").read_bytes() + " ".join((*IMAGE_PACKAGES, *IMAGE_EXTRAS)).encode()
    digest = hashlib.sha256(recipe).hexdigest()[:12]
    image = directory / f"runner-{digest}"
    ready = image / ".ready"
    if ready.exists():
        return image
    shutil.rmtree(image, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(image)], check=True)
    pip = [str(image / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Slipway's requirements as pyproject.toml names them, never a build of this checkout (two builds of one source
    # tree at once collide in its build/ directory).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    requirements = [*project.get("dependencies", []), *(r for extra in IMAGE_EXTRAS for r in extras.get(extra, []))]
    subprocess.run([*pip, *requirements, *IMAGE_PACKAGES], check=True)
    ready.write_text("")
    return image


def _site_packages(prefix: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return prefix / relative


def job_prefix(image: Path, workspace: Path) -> Path:
    """The job's own environment: a venv whose site-packages sees the runner image's, with pip and aws on PATH."""
    prefix = workspace / "runner"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    (_site_packages(prefix) / "runner-image.pth").write_text(f"{_site_packages(image)}\n")
    for name, module in (("pip", "pip"), ("pip3", "pip"), ("aws", "awscli")):
        script = prefix / "bin" / name
        script.write_text(f'#!/bin/sh\nexec "{prefix}/bin/python" -m {module} "$@"\n')
        script.chmod(0o755)
    # Where CodeBuild's image has kubectl: the cluster stand-in's kubectl (run by this host's Python, as the cluster's
    # API server would be elsewhere), reached with the kubeconfig the deploy writes from eks:DescribeCluster.
    kubectl = prefix / "bin" / "kubectl"
    kubectl.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m pipeline.local.kubectl_standin "$@"\n'
    )
    kubectl.chmod(0o755)
    return prefix


def _phase_script(commands: list[str], env_file: Path) -> str:
    """One phase in the job's shell: the environment the last phase left, each command in turn, stop at the first
    failure (CodeBuild's default), and the environment saved for the next phase."""
    lines = [f". {shlex.quote(str(env_file))}", "set -o pipefail"]
    for command in commands:
        lines += [f"echo {shlex.quote('[Container] Running command ' + command)}", command,
                  'status=$?; if [ "$status" -ne 0 ]; then export -p > ' + shlex.quote(str(env_file)) + "; exit $status; fi"]  # fmt: skip
    lines.append(f"export -p > {shlex.quote(str(env_file))}")
    return "\n".join(lines) + "\n"


def run(job: Job, *, timeout: float = 3600) -> Outcome:
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
    with log.open("w", encoding="utf-8") as out:
        for phase in PHASES:
            raw = spec.get("phases", {}).get(phase)
            if not raw or (failed and not (phase == "post_build" and failed == "build")):
                continue
            out.write(f"[Container] Entering phase {phase.upper()}\n")
            out.flush()
            completed = subprocess.run(
                ["bash", "--noprofile", "--norc", "-c", _phase_script(list(raw.get("commands", [])), env_file)],
                cwd=source, stdout=out, stderr=subprocess.STDOUT, env={"PATH": variables["PATH"]},
                timeout=timeout, check=False,
            )  # fmt: skip
            if completed.returncode != 0 and raw.get("on-failure", "ABORT") != "CONTINUE":
                out.write(f"[Container] Phase {phase.upper()} failed with exit status {completed.returncode}\n")
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


def _variables(job: Job, source: Path, copies: dict[str, Path]) -> dict[str, str]:
    variables = dict(job.environment)
    for name, path in copies.items():
        if name != job.primary:
            variables[f"CODEBUILD_SRC_DIR_{name}"] = str(path)
    variables["CODEBUILD_SRC_DIR"] = str(source)
    variables["CODEBUILD_BUILD_SUCCEEDING"] = "1"  # 0 from a failed phase on, as post_build reads it
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


def base_environment(workspace: Path, prefix: Path, image: Path, extra: dict[str, str]) -> dict[str, str]:
    """What every job's shell starts with: the job's prefix, then the runner image's programs (hadolint, aws), on
    PATH; its own HOME and TMPDIR, and its own docker config (``~/.docker``, with the builder's buildx plugin): the
    registry logins of two jobs side by side never mix, as they never do on CodeBuild."""
    system = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    docker_config = workspace / "home" / ".docker"
    docker_config.mkdir(parents=True, exist_ok=True)
    plugins = builder_prefix() / "config" / "cli-plugins"
    if plugins.is_dir() and not (docker_config / "cli-plugins").exists():
        (docker_config / "cli-plugins").symlink_to(plugins)
    path = os.pathsep.join([str(prefix / "bin"), str(image / "bin"), *system])
    return {
        "PATH": path, "HOME": str(workspace / "home"), "TMPDIR": str(workspace / "tmp"), "LANG": "C.UTF-8",
        "DOCKER_CONFIG": str(docker_config),
        # The image's own setuptools and wheel build the tools zip: pip fetches no build backend for each job.
        "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_BUILD_ISOLATION": "0", **extra,
    }  # fmt: skip
