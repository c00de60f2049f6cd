"""A two-stage service built for amd64 and arm64 on the real dockerd (arm64 under QEMU), stitched into one OCI index
in a real registry, and read back the way a deploy would: by digest, over plain HTTP."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.build import build_image
from pipeline.builders import BuildError, BuildSecretSource
from pipeline.builders.buildx import forget_everything
from pipeline.builders.docker_cli import docker_binary, docker_env
from pipeline.commands.build import build
from pipeline.commands.stitch import stitch as stitch_command
from pipeline.local.services import free_port
from pipeline.oci import OCI_INDEX, OCI_MANIFEST
from pipeline.records import BuildRecord, ImageRecord
from pipeline.registry.base import RegistryError, RepositoryRef
from pipeline.registry.distribution import DistributionClient
from pipeline.stitch import StitchError, stitch
from tests.integration.conftest import PLATFORMS

pytestmark = pytest.mark.integration
SERVICE = Path(__file__).parent / "twostage"
SECRET = "s3cr3t-token-7f2c9e1a"


def http_get(url: str, accept: str = "") -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def build_both(registry: str, base: ImageRecord, repo: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.setenv("SLIPWAY_TEST_TOKEN", SECRET)
    paths = []
    for platform in PLATFORMS:
        path = out / f"build-{platform.split('/')[1]}.json"
        build(
            repository=f"{registry}/{repo}",
            platform=platform,
            context=SERVICE,
            dockerfile=SERVICE / "Dockerfile",
            builder="buildx",
            secrets=[BuildSecretSource("token", "SLIPWAY_TEST_TOKEN")],
            network_host=True,
            build_args={"BASE": base.index_uri},
            out=path,
        )
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def released(registry: str, base_image: ImageRecord, tmp_path_factory: pytest.TempPathFactory) -> ImageRecord:
    out = tmp_path_factory.mktemp("release")
    with pytest.MonkeyPatch.context() as monkeypatch:
        paths = build_both(registry, base_image, "payments/api", out, monkeypatch)
    stitch_command(
        repository=f"{registry}/payments/api",
        tag="c0ffee1",
        builds=paths,
        platforms=list(PLATFORMS),
        out=out / "image.json",
    )
    return ImageRecord.load(out / "image.json")


def test_index_served_over_plain_http_matches_image_json(registry: str, released: ImageRecord) -> None:
    body, content_type = http_get(f"http://{registry}/v2/payments/api/manifests/{released.index_digest}", OCI_INDEX)
    assert content_type == OCI_INDEX
    import hashlib

    assert "sha256:" + hashlib.sha256(body).hexdigest() == released.index_digest
    by_tag, _ = http_get(f"http://{registry}/v2/payments/api/manifests/c0ffee1", OCI_INDEX)
    assert by_tag == body
    manifests = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in json.loads(body)["manifests"]
    }
    assert manifests == {p: released.platforms[p].digest for p in PLATFORMS}


def test_children_have_the_right_architectures(registry: str, released: ImageRecord) -> None:
    for platform, image in released.platforms.items():
        manifest, _ = http_get(f"http://{registry}/v2/payments/api/manifests/{image.digest}", image.media_type)
        config_digest = json.loads(manifest)["config"]["digest"]
        config = json.loads(http_get(f"http://{registry}/v2/payments/api/blobs/{config_digest}")[0])
        assert f"{config['os']}/{config['architecture']}" == platform
        assert config["config"]["User"] == "65534:65534"
        assert config["config"]["Entrypoint"] == ["/app/app"]


def test_arm64_child_really_runs_arm64_code(registry: str, released: ImageRecord, docker_host: str) -> None:
    completed = subprocess.run(
        [docker_binary(), "run", "--rm", "--network", "host", "--platform", "linux/arm64", released.index_uri],
        capture_output=True, text=True, check=True, timeout=120, env={**os.environ, **docker_env()},
    )  # fmt: skip
    assert completed.stdout.strip() == "hello from aarch64, built on aarch64"


def test_secret_is_in_no_layer_and_no_history(registry: str, released: ImageRecord) -> None:
    for image in released.platforms.values():
        manifest = json.loads(
            http_get(f"http://{registry}/v2/payments/api/manifests/{image.digest}", image.media_type)[0]
        )
        config = http_get(f"http://{registry}/v2/payments/api/blobs/{manifest['config']['digest']}")[0]
        assert SECRET.encode() not in config, "secret in config, history or env"
        for layer in manifest["layers"]:
            blob = http_get(f"http://{registry}/v2/payments/api/blobs/{layer['digest']}")[0]
            assert SECRET.encode() not in gzip.decompress(blob)
    # The build stage really read the secret: the RUN step fails without it (required=true).


def test_rebuild_gives_same_digests_and_restitch_is_a_no_op(
    registry: str,
    base_image: ImageRecord,
    released: ImageRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = build_both(registry, base_image, "payments/api", tmp_path, monkeypatch)
    rebuilt = {BuildRecord.load(p).platform: BuildRecord.load(p).digest for p in paths}
    assert rebuilt == {p: i.digest for p, i in released.platforms.items()}
    result = stitch(DistributionClient(), [BuildRecord.load(p) for p in paths], tag="c0ffee1", commit="c0ffee1")
    assert not result.created and result.record.index_digest == released.index_digest


COMMIT_TIME = 1764400000  # 2025-11-29T07:06:40Z


def cold_release(registry: str, base: ImageRecord, tag: str) -> ImageRecord:
    """Both platforms from a builder with nothing in it (no local cache, no images, no registry cache imported)."""
    forget_everything()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SLIPWAY_TEST_TOKEN", SECRET)
        builds = [
            build_image(
                repository=f"{registry}/payments/repro",
                platform=platform,
                context=SERVICE,
                dockerfile=SERVICE / "Dockerfile",
                builder="buildx",
                network_host=True,
                secrets=[BuildSecretSource("token", "SLIPWAY_TEST_TOKEN")],
                build_args={"BASE": base.index_uri},
                source_date_epoch=COMMIT_TIME,
                use_cache=False,
            )
            for platform in PLATFORMS
        ]
    # One commit, stitched under two tags: the index names the commit, so it is the same bytes both times.
    return stitch(DistributionClient(), builds, tag=tag, commit="c0ffee2").record


def test_one_commit_built_twice_from_a_pruned_builder_gives_the_same_index(
    registry: str, base_image: ImageRecord, docker_host: str
) -> None:
    first = cold_release(registry, base_image, "repro-1")
    second = cold_release(registry, base_image, "repro-2")
    assert first.index_digest == second.index_digest
    assert first.platforms == second.platforms


def test_children_are_oci_manifests_created_at_the_commit_time(registry: str, released: ImageRecord) -> None:
    committed = int(subprocess.run(
        ["git", "-C", str(SERVICE), "log", "-1", "--format=%at", "--", "."], capture_output=True, text=True, check=True
    ).stdout)  # fmt: skip
    for image in released.platforms.values():
        manifest, media_type = http_get(f"http://{registry}/v2/payments/api/manifests/{image.digest}", OCI_MANIFEST)
        assert media_type == OCI_MANIFEST and image.media_type == OCI_MANIFEST
        config = json.loads(
            http_get(f"http://{registry}/v2/payments/api/blobs/{json.loads(manifest)['config']['digest']}")[0]
        )
        assert datetime.fromisoformat(config["created"]).timestamp() == committed


def test_registry_cache_is_an_oci_manifest_per_platform_under_cache_tags(registry: str, released: ImageRecord) -> None:
    for slug in ("amd64", "arm64"):
        body, media_type = http_get(f"http://{registry}/v2/payments/api/manifests/cache-{slug}", OCI_MANIFEST)
        assert media_type == OCI_MANIFEST
        assert json.loads(body)["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"


def test_release_tag_never_moves(registry: str, base_image: ImageRecord, released: ImageRecord) -> None:
    other = BuildRecord(
        f"{registry}/payments/api", "linux/amd64", released.platforms["linux/amd64"].digest, 1, 1, "buildx"
    )
    with pytest.raises(StitchError, match=r"payments/api:c0ffee1: release tag already points at"):
        stitch(DistributionClient(), [other], tag="c0ffee1")
    body, _ = http_get(f"http://{registry}/v2/payments/api/manifests/c0ffee1", OCI_INDEX)
    assert "sha256:" + hashlib.sha256(body).hexdigest() == released.index_digest, "the tag still names the first index"


def test_failing_dockerfile_fails_with_image_and_platform_and_tags_nothing(
    registry: str, base_image: ImageRecord, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image.index_uri}\nRUN exit 3\n")
    with pytest.raises(
        BuildError, match=rf"image {registry}/payments/broken \(linux/arm64\): docker buildx build failed \(exit 1\)"
    ):
        build(
            repository=f"{registry}/payments/broken", platform="linux/arm64", context=tmp_path,
            dockerfile=tmp_path / "Dockerfile", builder="buildx", network_host=True, out=tmp_path / "b.json",
        )  # fmt: skip
    assert not (tmp_path / "b.json").exists()
    with pytest.raises(urllib.error.HTTPError):
        http_get(f"http://{registry}/v2/payments/broken/tags/list")


def test_registry_down_is_one_clear_line(released: ImageRecord, tmp_path: Path) -> None:
    port = free_port()
    moved = BuildRecord(
        f"127.0.0.1:{port}/payments/api",
        "linux/amd64",
        released.platforms["linux/amd64"].digest,
        1,
        1,
        "buildx",
    )
    with pytest.raises(
        RegistryError,
        match=rf"image 127.0.0.1:{port}/payments/api@sha256:\w+: registry unreachable at http://127.0.0.1:{port}",
    ):
        stitch(DistributionClient(), [moved], tag="c0ffee1")


def test_repository_ref_rejects_tagged_uri() -> None:
    with pytest.raises(RegistryError, match=r"expected 'host/name' without tag or digest"):
        RepositoryRef.parse("127.0.0.1:5000/payments/api:latest")


def test_bases_update_repins_the_lock_to_what_the_tag_serves(
    registry: str, base_image: ImageRecord, tmp_path: Path
) -> None:
    from pipeline import bases
    from pipeline.commands.bases import update

    lock = tmp_path / "lock.json"
    stale = "sha256:" + "0" * 64
    bases.save(lock, {"BASE_BUSYBOX": f"docker-hub/library/busybox:1.35@{stale}"})
    assert update(lock_path=lock, registry=registry) == 0
    assert bases.load(lock) == {"BASE_BUSYBOX": f"docker-hub/library/busybox:1.35@{base_image.index_digest}"}
