"""``slipway attest``: sign the release in image.json and its SLSA provenance with the platform's release key.

Runs in the Stitch job, after ``slipway verify``: the builder is the job's own CodeBuild project (from
``CODEBUILD_BUILD_ARN``, which CodeBuild sets in every build), the bases are what the build records say the builds
resolved, the buildspecs' digests are what the synthesis wrote, and each child's SBOM is what its build read from the
layers it built (``build-<arch>.spdx.json`` beside its record).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pipeline import records
from pipeline.attest.release import attest as attest_release
from pipeline.attest.sbom import sbom_path
from pipeline.attest.signer import KmsSigner, Signer
from pipeline.attest.statements import Provenance
from pipeline.errors import InputError
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef, client_for

BUILD_ARN_ENV = "CODEBUILD_BUILD_ARN"
_BUILD = re.compile(r"^(?P<head>arn:[^:]+:codebuild:[^:]+:\d{12}):build/(?P<project>[^:]+):\S+$")
_DIGEST = re.compile(r"^[A-Za-z0-9_.-]+=[0-9a-f]{64}$")


def register(commands: Any) -> None:
    parser = commands.add_parser("attest", help="sign a release and its provenance", description=__doc__)
    parser.add_argument("--image-json", type=Path, default=Path("image.json"))
    parser.add_argument("--key", required=True, help="the release key's ARN or alias ARN")
    parser.add_argument("--source", required=True, help="the source repository the pipeline builds")
    parser.add_argument("--build", action="append", type=Path, default=[], help="build record (repeatable)")
    parser.add_argument("--buildspec", action="append", default=[], metavar="JOB=SHA256",
                        help="the SHA-256 (hex) of a job's buildspec, as synthesized (repeatable)")  # fmt: skip
    parser.set_defaults(run=_run)


def _run(args: Any) -> int:
    return attest(image_json=args.image_json, signer=KmsSigner(args.key), source=args.source, builds=args.build,
                  buildspecs=args.buildspec)  # fmt: skip


def builder(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, str]:
    """``(project ARN, build ARN)`` of the job this runs in."""
    arn = environ.get(BUILD_ARN_ENV, "")
    found = _BUILD.match(arn)
    if found is None:
        raise InputError(
            f"{BUILD_ARN_ENV}: expected a CodeBuild build ARN (attest runs in the Stitch job), got {arn!r}"
        )
    return f"{found['head']}:project/{found['project']}", arn


def attest(*, image_json: Path, signer: Signer, source: str, builds: list[Path], buildspecs: list[str],
           client: RegistryClient | None = None) -> int:  # fmt: skip
    record = ImageRecord.load(image_json)
    for given in buildspecs:
        if not _DIGEST.fullmatch(given):
            raise InputError(f"--buildspec: expected JOB=<64 hex of its SHA-256>, got {given[:120]!r}")
    bases: dict[str, str] = {}
    sboms: dict[str, dict[str, Any]] = {}
    for path in builds:
        built = records.BuildRecord.load(path)
        bases.update(built.bases)
        try:
            sboms[built.platform] = json.loads(sbom_path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{sbom_path(path)}: the SBOM the {built.platform} build wrote cannot be read ({exc})"
            ) from exc
    project, build = builder()
    made = Provenance(source=source, commit=record.commit or record.tag, builder=project, invocation=build,
                      buildspecs=dict(b.split("=", 1) for b in buildspecs), bases=bases)  # fmt: skip
    found = attest_release(client or client_for(RepositoryRef.parse(record.repository)), record, signer, made, sboms)
    for one in found:
        print(f"{record.index_uri}: {one.kind}: {one.digest} {one.says}")
    return 0
