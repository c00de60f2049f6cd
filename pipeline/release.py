"""One release, the way the cloud pipeline makes it: build every platform in parallel, stitch, verify -- or reuse the
release a tag already names. Services, curated bases and seeded upstream bases all go through :func:`release`.

Local mode has no commit per image, so the default release tag is a hash of everything that goes into the build
(Dockerfile, context files, resolved build arguments, target, platforms): the same inputs give the same tag, and
stitch turns an identical re-run into "already tagged". A seeded upstream passes its own tag (``bookworm``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline.bases import declared_args
from pipeline.build import build_image
from pipeline.builders import BuildSecretSource
from pipeline.progress import progress
from pipeline.records import BuildRecord, ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.reproducible import source_date_epoch
from pipeline.stitch import read_release, stitch


@dataclass(frozen=True)
class Release:
    name: str
    record: ImageRecord
    builds: tuple[BuildRecord, ...]
    created: bool


def source_tag(context: Path, dockerfile: Path, args: Mapping[str, str], target: str, platforms: Sequence[str]) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if dockerfile not in files:
        files.append(dockerfile)
    for path in files:
        digest.update(str(path.relative_to(context) if path.is_relative_to(context) else path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps([sorted(args.items()), target, sorted(platforms)]).encode())
    return "src-" + digest.hexdigest()[:16]


def release(
    client: RegistryClient,
    *,
    name: str,
    repository: str,
    context: Path,
    dockerfile: Path,
    platforms: Sequence[str],
    build_args: Mapping[str, str],
    target: str = "",
    builder: str = "buildx",
    secrets: Sequence[BuildSecretSource] = (),
    tag: str = "",
    network_host: bool = True,
) -> Release:
    """``tag``: the release tag (default: :func:`source_tag` of the inputs). A tag that already serves every platform
    is reused as it is -- a release tag never moves."""
    # Only what the Dockerfile declares: an unrelated base changing in the lock must not retag (and rebuild) this one.
    declared = declared_args(dockerfile)
    build_args = {k: v for k, v in build_args.items() if k in declared}
    tag = tag or source_tag(context, dockerfile, build_args, target, platforms)
    # Same inputs, same release: reuse it rather than rebuild (a rebuild would give the same digests, only slower).
    existing = read_release(client, RepositoryRef.parse(repository), tag)
    if existing is not None and set(platforms) <= set(existing.platforms):
        progress(f"  {name:<18} already released as {existing.index_uri} (inputs unchanged)")
        reused = tuple(
            BuildRecord(repository, p, i.digest, i.size, 0.0, "reused") for p, i in sorted(existing.platforms.items())
        )
        return Release(name, existing, reused, created=False)

    epoch = source_date_epoch(context)

    def one(platform: str) -> BuildRecord:
        record = build_image(
            repository=repository, platform=platform, context=context, dockerfile=dockerfile, builder=builder,
            network_host=network_host, build_args=dict(build_args), target=target, client=client, secrets=list(secrets),
            source_date_epoch=epoch,
        )  # fmt: skip
        progress(f"  {name:<18} {platform:<12} built in {record.seconds:>6.1f}s  ({record.cache_hits} cached steps)")
        return record

    progress(f"  {name:<18} building {', '.join(platforms)} in parallel …")
    with ThreadPoolExecutor(max_workers=len(platforms)) as pool:
        builds = list(pool.map(one, platforms))
    result = stitch(client, builds, tag=tag, expected_platforms=list(platforms), commit=tag)
    state = "stitched" if result.created else "already tagged"
    progress(f"  {name:<18} {state} {result.record.index_uri}")
    return Release(name, result.record, tuple(builds), result.created)
