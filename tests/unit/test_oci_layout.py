"""Pushing a BuildKit OCI layout by digest: every blob hashed, the manifest under its digest only, no tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.oci import OCI_MANIFEST, canonical_json, digest_of
from pipeline.oci_layout import LayoutError, push_layout, read_image
from pipeline.registry.base import RegistryError, RepositoryRef
from tests.fakes import MemoryRegistry

REPO = RepositoryRef("127.0.0.1:5000", "payments/api")


def write_blob(layout: Path, data: bytes) -> str:
    digest = digest_of(data)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def make_layout(layout: Path, *, entries: int = 1) -> str:
    config = canonical_json({"architecture": "arm64", "os": "linux", "created": "2025-11-29T07:06:40Z"})
    layer = b"\x1f\x8b layer bytes"
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": write_blob(layout, config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": write_blob(layout, layer), "size": len(layer)}],
        }
    )  # fmt: skip
    digest = write_blob(layout, manifest)
    entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
             "platform": {"architecture": "arm64", "os": "linux"}}  # fmt: skip
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry] * entries}))
    return digest


def test_push_sends_every_blob_then_the_manifest_by_digest_only(tmp_path: Path) -> None:
    digest = make_layout(tmp_path)
    registry = MemoryRegistry()
    assert push_layout(registry, REPO, tmp_path) == digest
    assert registry.puts == [digest], "no tag: the manifest is pushed under its digest"
    manifest = registry.get_manifest(REPO, digest, [OCI_MANIFEST])
    for blob in [manifest.json()["config"], *manifest.json()["layers"]]:
        assert registry.has_blob(REPO, blob["digest"])


def test_blobs_the_repository_has_are_not_sent_again(tmp_path: Path) -> None:
    make_layout(tmp_path)
    registry = MemoryRegistry()
    push_layout(registry, REPO, tmp_path)
    sent: list[str] = []
    original = registry.put_blob
    registry.put_blob = lambda repo, digest, path: sent.append(digest) or original(repo, digest, path)  # type: ignore[method-assign]
    push_layout(registry, REPO, tmp_path)
    assert sent == []


def test_a_tampered_layer_is_refused_before_upload(tmp_path: Path) -> None:
    make_layout(tmp_path)
    _, manifest = read_image(tmp_path)
    layer = manifest.json()["layers"][0]["digest"]
    (tmp_path / "blobs" / "sha256" / layer.removeprefix("sha256:")).write_bytes(b"other bytes")
    registry = MemoryRegistry()
    with pytest.raises(LayoutError, match=rf"blob {layer} hashes to sha256:"):
        push_layout(registry, REPO, tmp_path)
    assert registry.puts == []


def test_a_layout_with_two_images_is_refused(tmp_path: Path) -> None:
    make_layout(tmp_path, entries=2)
    with pytest.raises(LayoutError, match=r"expected exactly one image manifest, found 2 entries"):
        read_image(tmp_path)


def test_a_layout_without_index_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=rf"layout {tmp_path}: no readable index.json"):
        read_image(tmp_path)


def test_a_registry_that_lost_a_concurrent_blob_gets_the_image_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """distribution can lose one of two simultaneous uploads of a blob (amd64 and arm64 of a scratch image share
    layers): the manifest then fails with DIGEST_INVALID; a second push of the whole image succeeds."""
    digest = make_layout(tmp_path)
    registry = MemoryRegistry()
    failures = ["push of image x: registry answered HTTP 400 DIGEST_INVALID provided digest did not match"]
    original = registry.put_manifest

    def flaky(repo: RepositoryRef, reference: str, manifest: object) -> str:
        if failures:
            raise RegistryError(failures.pop())
        return original(repo, reference, manifest)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "put_manifest", flaky)
    monkeypatch.setattr("pipeline.oci_layout.time.sleep", lambda seconds: None)
    assert push_layout(registry, REPO, tmp_path) == digest
    failures[:] = ["push of image x: registry answered HTTP 403 denied"] * 3
    with pytest.raises(RegistryError, match="403 denied"):  # anything else is not retried
        push_layout(registry, REPO, tmp_path)
    assert failures == ["push of image x: registry answered HTTP 403 denied"] * 2
