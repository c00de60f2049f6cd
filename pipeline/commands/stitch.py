"""``slipway stitch``: one OCI index from per-platform builds, tagged once with the commit, written to image.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import bases as lock
from pipeline import records
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import StitchError
from pipeline.stitch import stitch as stitch_images
from pipeline.table import render


def register(commands: Any) -> None:
    parser = commands.add_parser("stitch", help="stitch platform builds into one OCI index", description=__doc__)
    parser.add_argument("--repository", required=True, help="host/name the builds pushed to")
    parser.add_argument("--tag", required=True, help="release tag (the git commit); written once, never moved")
    parser.add_argument("--build", action="append", type=Path, required=True, help="build record (repeatable)")
    parser.add_argument("--platform", action="append", default=[], help="platform that must be present (repeatable)")
    parser.add_argument(
        "--rebuilds",
        action="store_true",
        help="a rebuild of a released commit that gives another index is published as TAG.2, TAG.3… (base images' "
        "weekly rebuild) instead of refused",
    )
    parser.add_argument(
        "--bases",
        default="",
        help="the base-image lock the builds resolved their FROM lines with: its hash joins the tag (TAG-<8 hex>), so "
        "the same commit on other bases is another release, and on the same bases the same one",
    )
    parser.add_argument(
        "--bases-from-builds",
        action="store_true",
        help="the bases are those the build records say they resolved (read from the lock store when they ran): "
        "every build must name the same ones, and their hash joins the tag as with --bases",
    )
    parser.add_argument("--out", type=Path, default=Path("image.json"))
    parser.set_defaults(run=_run)


def _run(args: Any) -> int:
    given = builds_bases(args.build) if args.bases_from_builds else args.bases
    return stitch(repository=args.repository, tag=release_tag(args.tag, given), builds=args.build,
                  platforms=args.platform, out=args.out, rebuilds=args.rebuilds, commit=args.tag)  # fmt: skip


def builds_bases(paths: list[Path]) -> str:
    """The one set of bases every build resolved, as the lock's JSON text (empty when they used none). Builds that
    read the lock store at different moments -- a base published between them -- are not one release: stitch
    refuses them, and the execution the publication started builds all platforms on the new base."""
    seen = {path: records.BuildRecord.load(path).bases for path in paths}
    first_path, first = next(iter(seen.items()))
    for path, used in seen.items():
        if used != first:
            changed = sorted(k for k in set(used) | set(first) if used.get(k) != first.get(k))
            raise StitchError(
                f"{path}: built on other bases than {first_path} ({', '.join(changed)}): a base was published while "
                "this execution built; the execution that publication started releases on the new base"
            )
    return json.dumps(dict(sorted(first.items())), separators=(",", ":")) if first else ""


def release_tag(commit: str, bases: str) -> str:
    """``<commit>`` alone, or ``<commit>-<8 hex of the lock>`` when the builds' bases are given: a release is the
    commit *and* the pinned bases it was built on (same both, same digests). ``bases`` is the lock's JSON text (what
    CodeBuild passes in ``SLIPWAY_BASE_LOCK``), checked as a lock: a file name or a typo is not hashed into a tag."""
    if not bases:
        return commit
    lock.parse(bases, "--bases")
    return f"{commit}-{hashlib.sha256(bases.encode()).hexdigest()[:8]}"


def stitch(
    *,
    repository: str,
    tag: str,
    builds: list[Path],
    out: Path,
    platforms: list[str] | None = None,
    client: RegistryClient | None = None,
    rebuilds: bool = False,
    commit: str = "",
) -> int:
    records.reserve(out, "stitch", nothing="nothing was pushed or tagged")
    repo = RepositoryRef.parse(repository)
    loaded = [records.BuildRecord.load(path) for path in builds]
    for path, build in zip(builds, loaded, strict=True):
        if build.repository != str(repo):
            raise StitchError(f"{path}: build pushed to {build.repository}, expected {repo}")
    result = stitch_images(
        client or client_for(repo),
        loaded,
        tag=tag,
        expected_platforms=platforms or (),
        commit=commit or tag,
        rebuilds=rebuilds,
    )
    try:
        records.write(out, result.record)
    except OSError as exc:
        raise StitchError(
            f"{result.record.repository}:{result.record.tag} -> {result.record.index_digest} is published, but "
            f"{out} could not be written ({exc.strerror or exc}); run stitch again: it finds the tag on this index "
            "and writes the record"
        ) from exc
    state = "created" if result.created else "already tagged (nothing to do)"
    print(f"{result.record.repository}:{result.record.tag} -> {result.record.index_digest} [{state}]")
    rows = [(p, i.digest, str(i.size), i.media_type) for p, i in sorted(result.record.platforms.items())]
    print(render(("platform", "digest", "bytes", "media type"), rows))
    return 0
