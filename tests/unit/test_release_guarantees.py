"""Where Slipway's promises about releases live, each asserted as behaviour a user relies on (issue #19): the index
bytes every release digest depends on, a registry that lies, the commit a release names, and references that name
a registry with a port."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from pipeline import oci
from pipeline.config import Upstream
from pipeline.oci import OCI_INDEX, OCI_MANIFEST, Descriptor, Manifest, ManifestError, Platform
from pipeline.records import BuildRecord, PlatformImage
from pipeline.references import ImageReference, ImageReferenceError, ecr_registry, pinned, pull_through_uri
from pipeline.registry.base import ManifestNotFoundError, RepositoryRef
from pipeline.stitch import StitchError, read_release, stitch, verify
from tests.fakes import MemoryRegistry

REPO = "registry.example:5000/payments/api"
AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
# The exact bytes of a two-platform release index: any change here changes every release digest Slipway has made.
GOLDEN = (
    '{"annotations":{"org.opencontainers.image.revision":"c0ffee1"},"manifests":[{"digest":"sha256:' + "a" * 64 + '",'
    '"mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{"architecture":"amd64","os":"linux"},'
    '"size":100},{"digest":"sha256:' + "b" * 64 + '","mediaType":"application/vnd.oci.image.manifest.v1+json",'
    '"platform":{"architecture":"arm64","os":"linux"},"size":200}],'
    '"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}'
)
GOLDEN_DIGEST = "sha256:c3f11afd43415465ebabd9b6713f4f17f1783b36990ade2785c1f7a3dc3c4845"


def test_the_release_index_bytes_and_digest_are_pinned() -> None:
    children = [
        Descriptor(OCI_MANIFEST, "sha256:" + "b" * 64, 200, ARM),
        Descriptor(OCI_MANIFEST, "sha256:" + "a" * 64, 100, AMD),
    ]
    index = oci.build_index(children, annotations={"org.opencontainers.image.revision": "c0ffee1"})
    assert index.data.decode() == GOLDEN
    assert index.digest == GOLDEN_DIGEST == "sha256:" + hashlib.sha256(GOLDEN.encode()).hexdigest()
    assert index.media_type == OCI_INDEX


def test_a_variant_is_kept_in_the_index_except_arm64s_v8() -> None:
    assert Platform("linux", "arm", "v7").to_json() == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert (
        Platform.parse("linux/arm/v7") == Platform("linux", "arm", "v7")
        and str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    )
    assert Platform("linux", "arm64", "v8").to_json() == {"architecture": "arm64", "os": "linux"}
    for bad in ("linux", "linux/", "a/b/c/d", "/amd64"):
        with pytest.raises(ManifestError, match=r"expected 'os/arch' or 'os/arch/variant'"):
            Platform.parse(bad)


def test_an_attestation_listed_first_is_skipped_and_the_rest_kept() -> None:
    attestation = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 5,
                   "platform": {"os": "unknown", "architecture": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}  # fmt: skip
    arm = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 7,
           "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}  # fmt: skip
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [attestation, Descriptor(OCI_MANIFEST, "sha256:" + "a" * 64, 3, AMD).to_json(), arm],
    }
    children = oci.index_children(Manifest(oci.canonical_json(document), OCI_INDEX))
    assert children == [
        Descriptor(OCI_MANIFEST, "sha256:" + "a" * 64, 3, AMD),
        Descriptor(OCI_MANIFEST, "sha256:" + "b" * 64, 7, Platform("linux", "arm", "v7")),
    ]
    with pytest.raises(ManifestError, match=r"expected an image index"):
        oci.index_children(Manifest(b"{}", OCI_MANIFEST))


def test_image_size_and_platform_come_from_the_manifest_and_config() -> None:
    manifest = Manifest(
        json.dumps({"config": {"size": 10}, "layers": [{"size": 5}, {"size": 7}]}).encode(), OCI_MANIFEST
    )
    assert oci.image_size(manifest) == 22
    assert oci.image_platform(b'{"os": "linux", "architecture": "arm", "variant": "v7"}', "sha256:x") == Platform(
        "linux", "arm", "v7"
    )
    with pytest.raises(ManifestError, match=r"manifest sha256:x: config blob has no os/architecture"):
        oci.image_platform(b'{"os": "linux"}', "sha256:x")


def released(registry: MemoryRegistry, commit: str = "c0ffee1") -> tuple[list[BuildRecord], object]:
    builds = [
        BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 10, 1.0, "buildx"),
        BuildRecord(REPO, "linux/arm64", registry.add_image(REPO, "linux", "arm64"), 11, 1.0, "buildx"),
    ]
    return builds, stitch(registry, builds, tag=commit, commit=commit).record


def test_a_release_names_its_commit_in_the_index_and_in_image_json() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    index = registry.get_manifest(RepositoryRef.parse(REPO), "c0ffee1", [OCI_INDEX])
    assert index.json()["annotations"] == {"org.opencontainers.image.revision": "c0ffee1"}
    assert record.commit == "c0ffee1" and record.tag == "c0ffee1"  # type: ignore[attr-defined]


def test_a_release_without_a_commit_carries_no_revision_and_reads_back_with_none() -> None:
    registry = MemoryRegistry()
    builds = [BuildRecord(REPO, f"linux/{arch}", registry.add_image(REPO, "linux", arch), 1, 1, "buildx")
              for arch in ("amd64", "arm64")]  # fmt: skip
    record = stitch(registry, builds, tag="manual-1").record
    repo = RepositoryRef.parse(REPO)
    assert "annotations" not in registry.get_manifest(repo, "manual-1", [OCI_INDEX]).json()
    found = read_release(registry, repo, "manual-1")
    assert found is not None and found.commit == record.commit == ""


def test_verify_refuses_a_tampered_config_blob() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    arm = record.platforms["linux/arm64"].digest  # type: ignore[attr-defined]
    config = registry.get_manifest(RepositoryRef.parse(REPO), arm, [OCI_MANIFEST]).json()["config"]["digest"]
    registry.blobs[config] = registry.blobs[config].replace(b"arm64", b"amd64")
    with pytest.raises(ManifestError, match=rf"config blob hashes to sha256:\w+, the manifest names {config}"):
        verify(registry, record)  # type: ignore[arg-type]


def test_verify_refuses_image_json_naming_another_child_or_missing_a_platform() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    other = registry.add_image(REPO, "linux", "arm64", layer=b"other")
    swapped = record.platforms | {"linux/arm64": PlatformImage(other, 1, OCI_MANIFEST)}  # type: ignore[attr-defined]
    with pytest.raises(StitchError, match=rf"\(linux/arm64\): index names sha256:\w+, image.json says {other}"):
        verify(registry, record.__class__(**{**record.__dict__, "platforms": swapped}))  # type: ignore[attr-defined]
    fewer = {"linux/amd64": record.platforms["linux/amd64"]}  # type: ignore[attr-defined]
    with pytest.raises(StitchError, match=r"index has platforms image.json does not list: \['linux/arm64'\]"):
        verify(registry, record.__class__(**{**record.__dict__, "platforms": fewer}))  # type: ignore[attr-defined]


def test_a_registry_storing_another_digest_fails_the_stitch() -> None:
    class Rewriting(MemoryRegistry):
        def put_manifest(self, repo: RepositoryRef, reference: str, manifest: Manifest) -> str:
            super().put_manifest(repo, reference, manifest)
            return "sha256:" + "f" * 64

    registry = Rewriting()
    builds = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 10, 1.0, "buildx")]
    with pytest.raises(StitchError, match=r"registry stored digest sha256:f{64}, expected sha256:\w+"):
        stitch(registry, builds, tag="c0ffee1")


def test_a_tag_read_back_with_other_bytes_fails_the_stitch() -> None:
    class Lying(MemoryRegistry):
        def get_manifest(self, repo: RepositoryRef, reference: str, accept: object) -> Manifest:
            served = super().get_manifest(repo, reference, accept)  # type: ignore[arg-type]
            if reference == "c0ffee1" and served.media_type == OCI_INDEX and self.puts[-1:] == ["c0ffee1"]:
                return Manifest(served.data + b" ", served.media_type)
            return served

    registry = Lying()
    builds = [BuildRecord(REPO, "linux/amd64", registry.add_image(REPO, "linux", "amd64"), 10, 1.0, "buildx")]
    with pytest.raises(ManifestError, match=r"image registry.example:5000/payments/api:c0ffee1: registry served bytes"):
        stitch(registry, builds, tag="c0ffee1")


def test_read_release_gives_the_tagged_release_with_sizes_or_none() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    repo = RepositoryRef.parse(REPO)
    found = read_release(registry, repo, "c0ffee1")
    assert found is not None
    stored = {p: registry.get_manifest(repo, i.digest, [OCI_MANIFEST]) for p, i in record.platforms.items()}  # type: ignore[attr-defined]
    assert found.platforms == {p: PlatformImage(m.digest, oci.image_size(m), OCI_MANIFEST) for p, m in stored.items()}
    assert (found.repository, found.tag, found.index_digest, found.commit) == (
        REPO,
        "c0ffee1",
        record.index_digest,
        "c0ffee1",
    )  # type: ignore[attr-defined]
    assert read_release(registry, repo, "nosuch") is None


def test_a_release_read_back_with_a_corrupted_child_is_refused() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    repo = RepositoryRef.parse(REPO)
    arm = record.platforms["linux/arm64"].digest  # type: ignore[attr-defined]
    good = registry.manifests[str(repo), arm]
    registry.manifests[str(repo), arm] = Manifest(good.data + b"\n", good.media_type)
    with pytest.raises(ManifestError, match=rf"image {REPO}@{arm} \(linux/arm64\): registry served bytes hashing to"):
        read_release(registry, repo, "c0ffee1")


def test_a_tag_naming_a_single_platform_image_is_not_a_release() -> None:
    registry = MemoryRegistry()
    _, record = released(registry)
    repo = RepositoryRef.parse(REPO)
    amd = record.platforms["linux/amd64"].digest  # type: ignore[attr-defined]
    registry.manifests[str(repo), "c0ffee1"] = registry.manifests[str(repo), amd]
    expected = f"image {REPO}:c0ffee1: names a single-platform manifest ({OCI_MANIFEST}), not an image index"
    with pytest.raises(StitchError, match=re.escape(expected)):
        verify(registry, record)  # type: ignore[arg-type]


def test_the_fake_registry_honours_accept_as_a_registry_does() -> None:
    registry = MemoryRegistry()
    released(registry)
    with pytest.raises(
        ManifestNotFoundError, match=r"c0ffee1: not found as application/vnd.oci.image.manifest.v1\+json"
    ):
        registry.get_manifest(RepositoryRef.parse(REPO), "c0ffee1", [OCI_MANIFEST])


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("registry.example:5000/team/app:1.2", "registry.example:5000", "team/app", "1.2"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", ""),
        ("localhost/app:latest", "localhost", "app", "latest"),
        ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", ""),
        ("index.docker.io/python:3.12", "docker.io", "library/python", "3.12"),
        ("team/app", "docker.io", "team/app", ""),
    ],
)
def test_references_with_a_registry_port_or_localhost(text: str, registry: str, repository: str, tag: str) -> None:
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, "")
    assert not ref.is_pinned


def test_pinning_on_a_registry_with_a_port() -> None:
    digest = "sha256:" + "1" * 64
    assert pinned("127.0.0.1:5000/team/app", digest) == f"127.0.0.1:5000/team/app@{digest}"
    with pytest.raises(ImageReferenceError, match=r"expected a repository URI without tag or digest"):
        pinned("127.0.0.1:5000/team/app:1", digest)
    with pytest.raises(ImageReferenceError, match=r"tags are not deployable"):
        pinned("127.0.0.1:5000/team/app", "latest")
    assert str(ImageReference.parse(f"127.0.0.1:5000/team/app:1@{digest}")) == f"127.0.0.1:5000/team/app:1@{digest}"


def test_pull_through_paths_are_under_the_accounts_own_registry() -> None:
    assert ecr_registry("111111111111", "eu-west-1") == "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
    upstreams = [Upstream(prefix="docker-hub", registry="docker-hub"), Upstream(prefix="quay", registry="quay")]
    host = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
    assert pull_through_uri("python:3.12", upstreams, host) == f"{host}/docker-hub/library/python:3.12"
    assert pull_through_uri("registry-1.docker.io/team/app:1", upstreams, host) == f"{host}/docker-hub/team/app:1"
    assert pull_through_uri("quay.io/org/img:2", upstreams, host) == f"{host}/quay/org/img:2"
    with pytest.raises(ImageReferenceError, match=r"no pull-through-cache rule for registry 'ghcr.io' \(configured: "
                                                  r"docker-hub \(docker.io\), quay \(quay.io\)\)"):  # fmt: skip
        pull_through_uri("ghcr.io/org/img:1", upstreams, host)
