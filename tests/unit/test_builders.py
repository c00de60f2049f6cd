"""Builder command lines: what each backend asks its CLI to do, checked without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.builders import BuildError, BuildRequest, BuildSecretSource, buildx, docker, get_builder, podman

REQUEST = BuildRequest(
    repository="111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api",
    platform="linux/arm64",
    context=Path("svc"),
    dockerfile=Path("svc/Dockerfile"),
    secrets=(BuildSecretSource("pip_index", "SLIPWAY_SECRET_PIP_INDEX"),),
    build_args={"BASE": "r/x@sha256:" + "a" * 64},
)


def test_buildx_pushes_by_digest_without_attestations_with_registry_cache() -> None:
    argv = buildx.build_command("docker", REQUEST, Path("/tmp/m.json"))
    assert argv[:3] == ["docker", "buildx", "build"]
    assert "--provenance=false" in argv and "--sbom=false" in argv
    output = argv[argv.index("--output") + 1]
    assert "push-by-digest=true" in output and "push=true" in output and "oci-mediatypes=true" in output
    assert ":" not in output.split("name=")[1].split(",")[0].rsplit("/", 1)[1], "no tag on the pushed image"
    cache_to = argv[argv.index("--cache-to") + 1]
    assert cache_to == (
        "type=registry,ref=111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api:cache-arm64,"
        "mode=max,image-manifest=true,oci-mediatypes=true"
    )
    assert argv[argv.index("--secret") + 1] == "id=pip_index,env=SLIPWAY_SECRET_PIP_INDEX"
    assert argv[-1] == "svc"


def test_docker_builder_uses_secret_files_and_per_platform_cache_tag() -> None:
    argv = docker.build_command("/usr/bin/docker", REQUEST, {"pip_index": Path("/tmp/s/pip_index")})
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert argv[argv.index("--tag") + 1].endswith("/payments/api:cache-arm64")
    assert argv[argv.index("--secret") + 1] == "id=pip_index,src=/tmp/s/pip_index"
    assert "BUILDKIT_INLINE_CACHE=1" in argv


def test_podman_pushes_oci_and_writes_digest_file() -> None:
    build = podman.build_command("podman", REQUEST, {"pip_index": Path("/tmp/s/pip_index")})
    push = podman.push_command("podman", REQUEST, Path("/tmp/d"))
    assert build[:2] == ["podman", "build"] and "--layers" in build
    assert push[-3:] == ["--digestfile", "/tmp/d", REQUEST.cache_ref]
    assert "--format" in push and push[push.index("--format") + 1] == "oci"


def test_no_secret_value_is_ever_on_a_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_SECRET_PIP_INDEX", "s3cr3t-value")
    for argv in (
        buildx.build_command("docker", REQUEST, Path("/m")),
        docker.build_command("docker", REQUEST, {"pip_index": Path("/f")}),
        podman.build_command("podman", REQUEST, {"pip_index": Path("/f")}),
    ):
        assert not any("s3cr3t-value" in a for a in argv)


def test_missing_secret_env_fails_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLIPWAY_SECRET_PIP_INDEX", raising=False)
    with pytest.raises(
        BuildError,
        match=r"payments/api \(linux/arm64\): secret source SLIPWAY_SECRET_PIP_INDEX not set or missing",
    ):
        get_builder("buildx").build(REQUEST)


@pytest.mark.parametrize("text", ["id=x", "env=Y", "id=,env=Y", "id=x,env=Y,src=/f", "id=x,src="])
def test_secret_spec_must_be_id_and_env(text: str) -> None:
    with pytest.raises(BuildError, match=r"expected 'id=NAME,env=VARIABLE'"):
        BuildSecretSource.parse(text)


def test_file_secret_for_a_proxy_ca(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----")
    secret = BuildSecretSource.parse(f"id=ca_bundle,src={bundle}")
    request = BuildRequest(
        repository="r/x", platform="linux/amd64", context=Path(), dockerfile=Path("D"), secrets=(secret,)
    )
    assert request.secret_values() == {"ca_bundle": "-----BEGIN CERTIFICATE-----"}
    argv = buildx.build_command("docker", request, Path("/m"))
    assert argv[argv.index("--secret") + 1] == f"id=ca_bundle,src={bundle}"


def test_unknown_builder_is_refused() -> None:
    with pytest.raises(BuildError, match=r"builder 'kaniko': expected one of buildx, docker, podman"):
        get_builder("kaniko")


def test_missing_builder_binary_names_image_and_platform() -> None:
    builder = docker.DockerBuilder(docker="/nonexistent/docker")
    request = BuildRequest(
        repository="127.0.0.1:5000/a/b", platform="linux/amd64", context=Path(), dockerfile=Path("Dockerfile")
    )
    with pytest.raises(
        BuildError, match=r"image 127.0.0.1:5000/a/b \(linux/amd64\): /nonexistent/docker not found on PATH"
    ):
        builder.build(request)


def test_build_resolves_declared_bases_from_the_lock_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CodeBuild passes images/lock.json as SLIPWAY_BASE_LOCK; only the ARGs the Dockerfile declares are used."""
    from pipeline.bases import LOCK_ENV
    from pipeline.commands import build as build_command

    digest = "sha256:" + "a" * 64
    monkeypatch.setenv(
        LOCK_ENV, '{"BASE_PYTHON": "payments/bases/python:t@' + digest + '", "BASE_OTHER": "x/y:t@' + digest + '"}'
    )
    (tmp_path / "Dockerfile").write_text("ARG BASE_PYTHON\nFROM ${BASE_PYTHON}\n")
    seen: list[BuildRequest] = []

    class Recording:
        name = "recording"

        def build(self, request: BuildRequest) -> None:
            seen.append(request)
            raise BuildError("stop here")

    monkeypatch.setattr(build_command, "get_builder", lambda name: Recording())
    with pytest.raises(BuildError, match="stop here"):
        build_command.build_image(
            repository="111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api", platform="linux/amd64",
            context=tmp_path, dockerfile=tmp_path / "Dockerfile", builder="docker",
        )  # fmt: skip
    assert seen[0].build_args == {
        "BASE_PYTHON": f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/bases/python:t@{digest}"
    }
