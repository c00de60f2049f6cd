"""Stitch per-platform builds into one OCI image index, tag it once, and prove what the registry serves.

The order matters for "nothing tagged on failure": every child is checked (bytes hash to the digest, media type is a
single-platform manifest, the config's os/architecture is the platform the build claimed) *before* the index is
pushed, and the release tag is written only by that one PUT. A tag that already names this index is success with
nothing to do; a tag that names anything else is an error -- release tags never move.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import InputError, SlipwayError
from pipeline.oci import (
    ANY_MANIFEST,
    IMAGE_MANIFESTS,
    INDEXES,
    Descriptor,
    Manifest,
    ManifestError,
    Platform,
    build_index,
    check_bytes,
    digest_of,
    image_platform,
    image_size,
    index_children,
)
from pipeline.platforms import slug
from pipeline.records import BuildRecord, ImageRecord, PlatformImage
from pipeline.registry.base import ManifestNotFoundError, RegistryClient, RepositoryRef

# OCI distribution's tag grammar.
RELEASE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", re.ASCII)


class StitchError(SlipwayError):
    pass


@dataclass(frozen=True)
class StitchResult:
    record: ImageRecord
    created: bool
    """False when the tag already named this exact index (a re-run)."""


def inspect_child(
    client: RegistryClient, repo: RepositoryRef, digest: str, platform: str
) -> tuple[Descriptor, Manifest]:
    """Read a single-platform manifest by digest and check bytes, media type and the config's platform."""
    what = f"image {repo}@{digest} ({platform})"
    manifest = client.get_manifest(repo, digest, IMAGE_MANIFESTS)
    check_bytes(manifest, digest, what)
    if manifest.media_type not in IMAGE_MANIFESTS:
        raise ManifestError(
            f"{what}: expected a single-platform manifest ({' or '.join(IMAGE_MANIFESTS)}), got {manifest.media_type!r}"
        )
    config_digest = manifest.json().get("config", {}).get("digest", "")
    blob = client.get_blob(repo, config_digest)
    if digest_of(blob) != config_digest:
        raise ManifestError(f"{what}: config blob hashes to {digest_of(blob)}, the manifest names {config_digest}")
    actual = image_platform(blob, digest)
    expected = Platform.parse(platform)
    if actual != expected:
        raise ManifestError(f"{what}: image config says {actual}, expected {expected}")
    return Descriptor(manifest.media_type, digest, len(manifest.data), expected), manifest


def stitch(
    client: RegistryClient,
    builds: Sequence[BuildRecord],
    *,
    tag: str,
    expected_platforms: Sequence[str] = (),
    commit: str = "",
    rebuilds: bool = False,
) -> StitchResult:
    """``rebuilds``: a rebuild of a released commit (the weekly base rebuild, for upstream fixes) that gives another
    index is published as ``<tag>.2``, ``<tag>.3``… beside the earlier release, which is left as it was; without it
    (services) a tag naming another index is refused."""
    if not RELEASE_TAG.fullmatch(tag):
        raise InputError(
            f"release tag {tag[:80]!r}: expected 1-128 letters, digits, '_', '.', '-' (not first: '.', '-')"
        )
    if not builds:
        raise StitchError("no build results given")
    repositories = {b.repository for b in builds}
    if len(repositories) != 1:
        raise StitchError(f"builds name several repositories: {sorted(repositories)}")
    repo = RepositoryRef.parse(builds[0].repository)
    built = {b.platform for b in builds}
    missing = [p for p in expected_platforms if p not in built]
    if missing:
        raise StitchError(f"image {repo}: no build result for platform {', '.join(missing)} (got {sorted(built)})")
    inspected = [inspect_child(client, repo, b.digest, b.platform) for b in builds]
    children = [descriptor for descriptor, _ in inspected]
    index = build_index(children, annotations={"org.opencontainers.image.revision": commit} if commit else None)
    # Each child is tagged too (``<tag>-<arch>``), before the index: an untagged child of a kept release must never be
    # the lifecycle policy's to expire, whatever ECR does with images an index references (see ImageRepository).
    # The release tag is checked first: a tag naming another index is refused before anything is written.
    tag = _free_rebuild_tag(client, repo, tag, index) if rebuilds else tag
    _check_tag(client, repo, tag, index)
    for descriptor, manifest in inspected:
        _push_once(client, repo, child_tag(tag, str(descriptor.platform)), manifest)
    created = _push_once(client, repo, tag, index)
    served = client.get_manifest(repo, tag, INDEXES)
    check_bytes(served, index.digest, f"image {repo}:{tag}")
    record = ImageRecord(
        repository=str(repo),
        tag=tag,
        index_digest=index.digest,
        platforms={str(c.platform): PlatformImage(c.digest, b.size, c.media_type) for c, b in _pairs(children, builds)},
        commit=commit,
    )
    verify(client, record)
    return StitchResult(record, created)


def child_tag(tag: str, platform: str) -> str:
    """``c0ffee1-arm64``: the release tag of one platform's child."""
    return f"{tag}-{slug(platform)}"


def _pairs(children: Sequence[Descriptor], builds: Sequence[BuildRecord]) -> list[tuple[Descriptor, BuildRecord]]:
    by_digest = {b.digest: b for b in builds}
    return [(c, by_digest[c.digest]) for c in children]


MAX_REBUILDS = 999


def _free_rebuild_tag(client: RegistryClient, repo: RepositoryRef, tag: str, index: Manifest) -> str:
    """``tag`` if it is free or already names ``index``; else the first ``tag.N`` (N ≥ 2) that is."""
    for candidate in (tag, *(f"{tag}.{n}" for n in range(2, MAX_REBUILDS + 1))):
        try:
            if client.get_manifest(repo, candidate, ANY_MANIFEST).digest == index.digest:
                return candidate
        except ManifestNotFoundError:
            return candidate
    raise StitchError(f"image {repo}:{tag}: {MAX_REBUILDS} rebuilds of this commit already; release a new commit")


def _check_tag(client: RegistryClient, repo: RepositoryRef, tag: str, manifest: Manifest) -> bool:
    """True when ``tag`` already names ``manifest``; False when it names nothing; an error when it names anything else."""
    try:
        current = client.get_manifest(repo, tag, ANY_MANIFEST)
    except ManifestNotFoundError:
        return False
    if current.digest == manifest.digest:
        return True
    raise StitchError(
        f"image {repo}:{tag}: release tag already points at {current.digest}, not {manifest.digest}; "
        "release tags never move (rebuild under a new commit)"
    )


def _push_once(client: RegistryClient, repo: RepositoryRef, tag: str, manifest: Manifest) -> bool:
    if _check_tag(client, repo, tag, manifest):
        return False
    reported = client.put_manifest(repo, tag, manifest)
    if reported != manifest.digest:
        raise StitchError(f"image {repo}:{tag}: registry stored digest {reported}, expected {manifest.digest}")
    return True


def get_index(client: RegistryClient, repo: RepositoryRef, reference: str) -> Manifest:
    """The image index a tag or digest names; a single-platform manifest there is an error that says so."""
    manifest = client.get_manifest(repo, reference, ANY_MANIFEST)
    if manifest.media_type not in INDEXES:
        raise StitchError(
            f"image {repo}{'@' if reference.startswith('sha256:') else ':'}{reference}: names a single-platform "
            f"manifest ({manifest.media_type or 'no media type'}), not an image index"
        )
    return manifest


def verify(client: RegistryClient, record: ImageRecord) -> None:
    """Everything ``image.json`` says is what the registry serves now, by digest and by tag."""
    repo = RepositoryRef.parse(record.repository)
    index = get_index(client, repo, record.index_digest)
    check_bytes(index, record.index_digest, f"image {record.index_uri}")
    by_tag = get_index(client, repo, record.tag)
    if by_tag.digest != record.index_digest:
        raise StitchError(
            f"image {repo}:{record.tag}: tag serves {by_tag.digest}, image.json says {record.index_digest}"
        )
    served = {str(c.platform): c for c in index_children(index)}
    for platform, image in record.platforms.items():
        child = served.get(platform)
        if child is None:
            raise StitchError(f"image {record.index_uri}: index lacks platform {platform} (has {sorted(served)})")
        if child.digest != image.digest:
            raise StitchError(
                f"image {record.index_uri} ({platform}): index names {child.digest}, image.json says {image.digest}"
            )
        inspect_child(client, repo, child.digest, platform)
    extra = sorted(set(served) - set(record.platforms))
    if extra:
        raise StitchError(f"image {record.index_uri}: index has platforms image.json does not list: {extra}")


def read_release(client: RegistryClient, repo: RepositoryRef, tag: str) -> ImageRecord | None:
    """The release a tag already names (children, sizes), or None when the tag does not exist yet."""
    try:
        index = client.get_manifest(repo, tag, INDEXES)
    except ManifestNotFoundError:
        return None
    platforms = {}
    for child in index_children(index):
        manifest = client.get_manifest(repo, child.digest, IMAGE_MANIFESTS)
        check_bytes(manifest, child.digest, f"image {repo}@{child.digest} ({child.platform})")
        platforms[str(child.platform)] = PlatformImage(child.digest, image_size(manifest), manifest.media_type)
    return ImageRecord(
        str(repo),
        tag,
        index.digest,
        platforms,
        commit=index.json().get("annotations", {}).get("org.opencontainers.image.revision", ""),
    )
