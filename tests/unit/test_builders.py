"""Builder command lines: what each backend asks its CLI to do, checked without running it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.builders import BuildError, BuildRequest, BuildSecretSource, buildx, get_builder

REQUEST = BuildRequest(
    repository="111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api",
    platform="linux/arm64",
    context=Path("svc"),
    dockerfile=Path("svc/Dockerfile"),
    secrets=(BuildSecretSource("pip_index", "SLIPWAY_SECRET_PIP_INDEX"),),
    build_args={"BASE": "r/x@sha256:" + "a" * 64},
)


def argv_for(request: BuildRequest, builder: str = "slipway") -> list[str]:
    return buildx.build_command(
        "docker", request, builder=builder, layout=Path("/tmp/layout"), metadata_file=Path("/tmp/m.json")
    )


def test_buildx_exports_a_reproducible_oci_layout_without_attestations_with_registry_cache() -> None:
    argv = argv_for(REQUEST)
    assert argv[:5] == ["docker", "buildx", "build", "--builder", "slipway"]
    assert "--provenance=false" in argv and "--sbom=false" in argv
    assert argv[argv.index("--output") + 1] == "type=oci,dest=/tmp/layout,tar=false,rewrite-timestamp=true"
    cache_to = argv[argv.index("--cache-to") + 1]
    assert (
        cache_to
        == (
            "type=registry,ref=111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api:cache-arm64,"
            "mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"  # the cache is an optimisation, never the build
        )
    )
    assert argv[argv.index("--cache-from") + 1] == (
        "type=registry,ref=111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api:cache-arm64"
    )
    assert "--no-cache" not in argv
    assert argv[argv.index("--secret") + 1] == "id=pip_index,env=SLIPWAY_SECRET_PIP_INDEX"
    assert argv[argv.index("--build-arg") + 1] == "BASE=r/x@sha256:" + "a" * 64
    assert argv[-1] == "svc"


def test_a_cold_build_imports_no_cache_but_still_exports_it() -> None:
    argv = argv_for(BuildRequest(**{**REQUEST.__dict__, "use_cache": False}))
    assert "--no-cache" in argv and "--cache-from" not in argv and "--cache-to" in argv


def test_source_date_epoch_reaches_buildkit_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    request = BuildRequest(**{**REQUEST.__dict__, "source_date_epoch": 1764400000})
    assert buildx.build_environment(request)["SOURCE_DATE_EPOCH"] == "1764400000"


def test_no_secret_value_is_ever_on_a_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_SECRET_PIP_INDEX", "s3cr3t-value")
    assert not any("s3cr3t-value" in a for a in argv_for(REQUEST))
    assert "s3cr3t-value" not in buildx.build_environment(REQUEST).values()


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
    argv = argv_for(request)
    assert argv[argv.index("--secret") + 1] == f"id=ca_bundle,src={bundle}"


def test_unknown_builder_is_refused() -> None:
    with pytest.raises(BuildError, match=r"builder 'kaniko': expected one of buildx$"):
        get_builder("kaniko")


def test_missing_builder_binary_names_image_and_platform() -> None:
    builder = buildx.BuildxBuilder(docker="/nonexistent/docker")
    request = BuildRequest(
        repository="127.0.0.1:5000/a/b", platform="linux/amd64", context=Path(), dockerfile=Path("Dockerfile")
    )
    with pytest.raises(
        BuildError, match=r"image 127.0.0.1:5000/a/b \(linux/amd64\): /nonexistent/docker not found on PATH"
    ):
        builder.build(request)


def test_build_resolves_declared_bases_from_the_lock_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CodeBuild passes images/lock.json as SLIPWAY_BASE_LOCK; only the ARGs the Dockerfile declares are used."""
    from pipeline import build as build_module
    from pipeline.bases import LOCK_ENV

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

    monkeypatch.setattr(build_module, "get_builder", lambda name, client=None: Recording())
    with pytest.raises(BuildError, match="stop here"):
        build_module.build_image(
            repository="111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api", platform="linux/amd64",
            context=tmp_path, dockerfile=tmp_path / "Dockerfile", builder="buildx",
        )  # fmt: skip
    assert seen[0].build_args == {
        "BASE_PYTHON": f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/bases/python:t@{digest}"
    }


def test_container_builder_runs_the_pinned_buildkit_through_the_platform_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.bases import LOCK_ENV

    pinned = "docker-hub/moby/buildkit:v0.13.2@sha256:" + "b" * 64
    monkeypatch.setenv(LOCK_ENV, json.dumps({"BUILDKIT": pinned}))
    argv = buildx.create_command("docker", REQUEST)
    assert argv[-2:] == ["--driver-opt", f"image=111111111111.dkr.ecr.eu-west-1.amazonaws.com/{pinned}"]


def test_fails_without_a_pinned_buildkit_rather_than_pull_from_docker_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.bases import LOCK_ENV

    monkeypatch.setenv(LOCK_ENV, "{}")
    with pytest.raises(BuildError, match=r"no BUILDKIT in the base lock; the BuildKit image must come pinned"):
        buildx.create_command("docker", REQUEST)


def test_the_committed_lock_pins_buildkit_through_pull_through_cache() -> None:
    from pipeline import bases
    from tests.conftest import ROOT

    entry = bases.load(ROOT / "images" / "lock.json")["BUILDKIT"]
    assert entry.startswith("docker-hub/moby/buildkit:v0.13.") and "@sha256:" in entry
