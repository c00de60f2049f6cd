"""OCI index building and the stitch/verify rules, including the paths only a lying registry can show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import oci, records
from pipeline.commands.stitch import stitch as stitch_command
from pipeline.errors import SlipwayError
from pipeline.oci import OCI_INDEX, OCI_MANIFEST, Descriptor, Manifest, ManifestError, Platform
from pipeline.records import BuildRecord, ImageRecord
from pipeline.registry.base import RegistryError, RepositoryRef
from pipeline.stitch import StitchError, stitch, verify
from tests.fakes import MemoryRegistry

REPO = "registry.example/payments/api"
AMD = Platform("linux", "amd64")
ARM = Platform("linux", "arm64")


def child(digest_char: str, platform: Platform, media_type: str = OCI_MANIFEST) -> Descriptor:
    return Descriptor(media_type, "sha256:" + digest_char * 64, 100, platform)


def test_index_is_deterministic_whatever_the_order() -> None:
    a = oci.build_index([child("a", AMD), child("b", ARM)])
    b = oci.build_index([child("b", ARM), child("a", AMD)])
    assert a.data == b.data and a.digest == b.digest
    document = json.loads(a.data)
    assert document["mediaType"] == OCI_INDEX
    assert [m["platform"]["architecture"] for m in document["manifests"]] == ["amd64", "arm64"]


def test_index_refuses_wrong_child_media_type() -> None:
    with pytest.raises(
        ManifestError,
        match=r"\(linux/arm64\): expected media type .* got 'application/vnd.oci.image.index.v1\+json'",
    ):
        oci.build_index([child("a", AMD), child("b", ARM, OCI_INDEX)])


def test_index_refuses_duplicate_platform() -> None:
    with pytest.raises(ManifestError, match=r"platform linux/amd64: more than one manifest given"):
        oci.build_index([child("a", AMD), child("b", AMD)])


def test_index_children_skip_attestations() -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            child("a", AMD).to_json(),
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "c" * 64,
                "size": 5,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
    children = oci.index_children(Manifest(oci.canonical_json(document), OCI_INDEX))
    assert [str(c.platform) for c in children] == ["linux/amd64"]


def test_arm64_v8_variant_matches_plain_arm64() -> None:
    assert Platform("linux", "arm64", "v8") == Platform.parse("linux/arm64")


def builds(registry: MemoryRegistry) -> list[BuildRecord]:
    return [
        BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 10, 1.0, "docker"),
        BuildRecord(REPO, "linux/arm64", registry.add_image(REPO, "linux", "arm64"), 11, 2.0, "docker"),
    ]


def test_stitch_tags_once_and_rerun_is_a_no_op() -> None:
    registry = MemoryRegistry()
    results = builds(registry)
    first = stitch(registry, results, tag="abc123", expected_platforms=["linux/amd64", "linux/arm64"])
    second = stitch(registry, list(reversed(results)), tag="abc123")
    assert first.created and not second.created
    assert first.record == second.record
    # Children first (each tagged <release>-<arch>, so no lifecycle rule sees an untagged child), the index last.
    assert registry.puts == ["abc123-amd64", "abc123-arm64", "abc123"]
    assert set(first.record.platforms) == {"linux/amd64", "linux/arm64"}
    for platform, image in first.record.platforms.items():
        served = registry.get_manifest(RepositoryRef.parse(REPO), f"abc123-{platform.split('/')[1]}", [OCI_MANIFEST])
        assert served.digest == image.digest


def test_stitch_never_moves_a_release_tag() -> None:
    registry = MemoryRegistry()
    stitch(registry, builds(registry), tag="abc123")
    other = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64", layer=b"new"), 1, 1, "x")]
    with pytest.raises(
        StitchError,
        match=r"payments/api:abc123: release tag already points at sha256:\w+, not sha256:\w+; release tags never move",
    ):
        stitch(registry, other, tag="abc123")


def test_a_rebuild_of_a_released_commit_is_published_beside_it() -> None:
    """The weekly base rebuild: same commit, new packages, another index. Published as <commit>.2 (then .3), the
    earlier release untouched; a retry of the same rebuild finds its own tag and changes nothing."""
    registry = MemoryRegistry()
    first = stitch(registry, builds(registry), tag="abc123", commit="abc123", rebuilds=True).record
    newer = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64", layer=b"new"), 1, 1, "x")]
    second = stitch(registry, newer, tag="abc123", commit="abc123", rebuilds=True)
    retry = stitch(registry, newer, tag="abc123", commit="abc123", rebuilds=True)
    newest = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64", layer=b"newer"), 1, 1, "x")]
    third = stitch(registry, newest, tag="abc123", commit="abc123", rebuilds=True).record
    assert (second.record.tag, retry.record.tag, third.tag) == ("abc123.2", "abc123.2", "abc123.3")
    assert second.created and not retry.created
    assert second.record.commit == "abc123"  # the index still names its commit, whatever its tag
    served = registry.get_manifest(RepositoryRef.parse(REPO), "abc123", [OCI_INDEX])
    assert served.digest == first.index_digest


def test_fails_on_missing_platform_and_tags_nothing() -> None:
    registry = MemoryRegistry()
    with pytest.raises(
        StitchError, match=r"image registry.example/payments/api: no build result for platform linux/arm64"
    ):
        stitch(registry, builds(registry)[:1], tag="abc123", expected_platforms=["linux/amd64", "linux/arm64"])
    assert registry.puts == []


def test_fails_when_bytes_do_not_hash_to_digest() -> None:
    registry = MemoryRegistry()
    results = builds(registry)
    key = (REPO, results[1].digest)
    registry.manifests[key] = Manifest(registry.manifests[key].data + b" ", OCI_MANIFEST)
    with pytest.raises(
        ManifestError,
        match=r"@sha256:\w+ \(linux/arm64\): registry served bytes hashing to sha256:\w+, expected",
    ):
        stitch(registry, results, tag="abc123")
    assert registry.puts == []


def test_fails_when_config_is_another_architecture() -> None:
    registry = MemoryRegistry()
    wrong = BuildRecord(REPO, "linux/arm64", registry.add_image(REPO, "linux", "amd64"), 1, 1, "docker")
    with pytest.raises(ManifestError, match=r"\(linux/arm64\): image config says linux/amd64, expected linux/arm64"):
        stitch(registry, [wrong], tag="abc123")
    assert registry.puts == []


def test_fails_on_wrong_child_media_type() -> None:
    registry = MemoryRegistry()
    index = oci.build_index([child("a", AMD)])
    registry.manifests[REPO, index.digest] = index
    bad = BuildRecord(REPO, "linux/amd64", index.digest, 1, 1, "docker")
    with pytest.raises(
        ManifestError,
        match=r"\(linux/amd64\): expected a single-platform manifest .* got 'application/vnd.oci.image.index.v1\+json'",
    ):
        stitch(registry, [bad], tag="abc123")
    assert registry.puts == []


def test_registry_refusing_the_push_fails_the_step() -> None:
    registry = MemoryRegistry()
    registry.refuse_push = True
    with pytest.raises(
        RegistryError, match=r"push of image registry.example/payments/api:abc123-amd64: registry answered HTTP 403"
    ):
        stitch(registry, builds(registry), tag="abc123")
    assert ("registry.example/payments/api", "abc123") not in registry.manifests, "no release tag on failure"


def test_verify_catches_a_tag_that_moved() -> None:
    registry = MemoryRegistry()
    record = stitch(registry, builds(registry), tag="abc123").record
    other = oci.build_index([child("f", AMD)])
    registry.manifests[REPO, "abc123"] = other
    with pytest.raises(StitchError, match=r"payments/api:abc123: tag serves sha256:\w+, image.json says"):
        verify(registry, record)


def test_verify_catches_platform_missing_from_index() -> None:
    registry = MemoryRegistry()
    record = stitch(registry, builds(registry), tag="abc123").record
    claimed = ImageRecord(
        record.repository,
        record.tag,
        record.index_digest,
        {**record.platforms, "linux/s390x": record.platforms["linux/amd64"]},
    )
    with pytest.raises(StitchError, match=r"index lacks platform linux/s390x"):
        verify(registry, claimed)


def test_stitch_command_writes_image_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = MemoryRegistry()
    paths = []
    for build in builds(registry):
        path = tmp_path / f"{build.platform.split('/')[1]}.json"
        records.write(path, build)
        paths.append(path)
    out = tmp_path / "image.json"
    assert stitch_command(repository=REPO, tag="abc123", builds=paths, out=out, client=registry) == 0
    written = ImageRecord.load(out)
    assert written.index_uri.startswith(f"{REPO}@sha256:")
    assert written.index_digest in capsys.readouterr().out


def test_stitch_command_refuses_build_from_another_repository(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    records.write(path, BuildRecord("registry.example/other/x", "linux/amd64", "sha256:" + "a" * 64, 1, 1, "docker"))
    with pytest.raises(
        StitchError,
        match=r"b.json: build pushed to registry.example/other/x, expected registry.example/payments/api",
    ):
        stitch_command(repository=REPO, tag="t", builds=[path], out=tmp_path / "i.json", client=MemoryRegistry())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", r"i.json: not JSON"),
        (
            '{"repository": "r", "tag": "t", "index_digest": "latest", "platforms": {}}',
            r"field 'platforms': expected at least one",
        ),
        (
            '{"repository": "r", "tag": "t", "index_digest": "latest", "platforms": {"linux/amd64": {"digest": "sha256:'
            + "a" * 64
            + '", "size": 1, "media_type": "m"}}}',
            r"field 'index_digest': expected a digest",
        ),
    ],
)
def test_image_json_rejects_malformed(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "i.json"
    path.write_text(content)
    with pytest.raises(SlipwayError, match=message):
        ImageRecord.load(path)
