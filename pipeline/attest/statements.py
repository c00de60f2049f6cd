"""The in-toto statements (v1) Slipway signs for a release: its signature and its SLSA provenance (v1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATEMENT = "https://in-toto.io/Statement/v1"
SIGNED = "https://slipway.dev/attestations/release/v1"
"""The signature's predicate: which release of which repository the signed digest is."""
PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://slipway.dev/buildtypes/codebuild-stitch/v1"
SBOM = "https://spdx.dev/Document/v2.3"


@dataclass(frozen=True)
class Provenance:
    """What made a release: read from the Stitch job (CodeBuild's own variables) and the build records."""

    source: str
    """The source repository (``owner/name`` of the connection), as the pipeline's synthesis names it."""
    commit: str
    builder: str
    """The CodeBuild project that stitched and signed (its ARN; locally the replay's job, named the same way)."""
    invocation: str = ""
    """The build's ARN (``CODEBUILD_BUILD_ARN``)."""
    buildspecs: Mapping[str, str] = field(default_factory=dict)
    """Each job's name and the SHA-256 (hex) of its buildspec as synthesized."""
    bases: Mapping[str, str] = field(default_factory=dict)
    """Every base the lock gave the builds: its key and ``repo@sha256:…``."""


def _subject(repository: str, digest: str) -> list[dict[str, Any]]:
    algorithm, _, value = digest.partition(":")
    return [{"name": repository, "digest": {algorithm: value}}]


def signature(repository: str, tag: str, digest: str) -> dict[str, Any]:
    return {"_type": STATEMENT, "subject": _subject(repository, digest), "predicateType": SIGNED,
            "predicate": {"repository": repository, "tag": tag}}  # fmt: skip


def provenance(repository: str, tag: str, digest: str, made: Provenance) -> dict[str, Any]:
    dependencies = []
    for key, reference in sorted(made.bases.items()):
        name, _, base_digest = reference.partition("@")
        algorithm, _, value = base_digest.partition(":")
        dependencies.append({"uri": f"oci://{name}", "name": key, "digest": {algorithm: value}})
    return {
        "_type": STATEMENT,
        "subject": _subject(repository, digest),
        "predicateType": PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": {"uri": made.source, "digest": {"gitCommit": made.commit}},
                    "release": {"repository": repository, "tag": tag},
                    "buildspecs": {job: {"sha256": hex_} for job, hex_ in sorted(made.buildspecs.items())},
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": {"id": made.builder}, "metadata": {"invocationId": made.invocation}},
        },
    }


def sbom(child: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """One platform child's SBOM (SPDX 2.3, :mod:`pipeline.attest.sbom`) as an in-toto statement about that child."""
    return {"_type": STATEMENT, "subject": _subject(str(document.get("name", "")), child), "predicateType": SBOM,
            "predicate": dict(document)}  # fmt: skip


def subject_digest(statement: Mapping[str, Any]) -> str:
    """``sha256:…`` of the statement's one subject ("" when it has not exactly one)."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        return ""
    digests = subjects[0].get("digest") or {}
    return f"sha256:{digests.get('sha256', '')}" if isinstance(digests, dict) and digests.get("sha256") else ""
