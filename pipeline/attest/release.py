"""Attest a release (the Stitch job) and verify it (every deploy, ``slipway verify --attestations``).

Both sides read and write the registry the same way, through :mod:`pipeline.attest.referrers`, and sign or verify
through one :class:`pipeline.attest.signer.Signer`: KMS in AWS, moto's KMS in the replay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.attest import cosign, referrers, statements
from pipeline.attest.dsse import AttestationError, Envelope, opened, seal
from pipeline.attest.signer import Signer
from pipeline.attest.statements import PROVENANCE, SBOM, SIGNED, Provenance, subject_digest
from pipeline.oci import INDEXES, OCI_MANIFEST, check_bytes, digest_of
from pipeline.platforms import slug
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.registry.base import ManifestNotFoundError, RegistryError

ENVELOPE = "application/vnd.dsse.envelope.v1+json"
PREDICATE = "in-toto.io/predicate-type"
KINDS = {SIGNED: "sig", PROVENANCE: "provenance", SBOM: "sbom"}
"""Each attestation's predicate type and the suffix of its tag (``<release>-sig``, ``<release>-provenance``, and an
SBOM per platform child, ``<release>-<arch>-sbom``)."""
COSIGN = cosign.SIMPLE_SIGNING
"""The kind of :class:`Found` for the release's cosign-format signature (``sha256-<hex>.sig``:
:mod:`pipeline.attest.cosign`)."""
_PROJECT = re.compile(r"^arn:aws[a-z-]*:codebuild:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):project/slipway_\S+$")


@dataclass(frozen=True)
class Found:
    """One verified attestation: its predicate type, where it is, and what it says in one line."""

    kind: str
    digest: str
    says: str


def attest(
    client: RegistryClient, record: ImageRecord, signer: Signer, made: Provenance,
    sboms: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Found]:  # fmt: skip
    """Sign the release, its provenance and each platform child's SBOM (``sboms``: by platform), each an artifact
    whose subject is the index, then the index in cosign's format (each kept when a retry of the same Stitch finds
    it already there and valid: tags never move)."""
    repo = RepositoryRef.parse(record.repository)
    index = client.get_manifest(repo, record.index_digest, INDEXES)
    check_bytes(index, record.index_digest, f"image {record.index_uri}")
    wanted = [
        (SIGNED, f"{record.tag}-sig", statements.signature(record.repository, record.tag, record.index_digest)),
        (PROVENANCE, f"{record.tag}-provenance",
         statements.provenance(record.repository, record.tag, record.index_digest, made)),
    ]  # fmt: skip
    for platform, document in sorted((sboms or {}).items()):
        child = record.platforms[platform].digest
        wanted.append((SBOM, f"{record.tag}-{slug(platform)}-sbom", statements.sbom(child, document)))
    done = []
    for predicate, tag, statement in wanted:
        try:
            present = client.get_manifest(repo, tag, (OCI_MANIFEST,))
        except ManifestNotFoundError:
            envelope = seal(statement, signer).to_bytes()
            manifest = referrers.artifact(index, ENVELOPE, envelope, {PREDICATE: predicate})
            referrers.push(client, repo, tag, manifest, envelope)
            done.append(Found(predicate, manifest.digest, "signed and pushed"))
            continue
        opened_statement = _open(client, repo, present.digest, record, signer, predicate)
        done.append(Found(predicate, present.digest, f"already there ({_says(opened_statement)})"))
    done.append(Found(COSIGN, *cosign.sign(client, record, signer)))
    return done


def verify(client: RegistryClient, record: ImageRecord, verifier: Signer, *, source: str = "") -> list[Found]:
    """The release's signature and provenance (about this index) and an SBOM of each of its platform children, each
    signed by the release key; the provenance naming ``source`` (when given), image.json's commit, and a Slipway
    CodeBuild project of the registry's account and region as its builder. Every attestation of those kinds referring
    to the release must verify, and so must its cosign-format signature (what the cluster's admission policy checks).
    Anything else: AttestationError, one line naming what failed."""
    repo = RepositoryRef.parse(record.repository)
    what = f"release {record.index_uri}"
    try:
        listed = referrers.listed(client, repo, record.index_digest)
    except RegistryError as exc:
        raise AttestationError(f"{what}: its attestations cannot be listed ({exc})") from exc
    found, described = [], set()
    for predicate in (SIGNED, PROVENANCE, SBOM):
        candidates = [d for d in listed if (d.get("annotations") or {}).get(PREDICATE) == predicate]
        if not candidates:
            raise AttestationError(f"{what}: no {KINDS[predicate]} attestation refers to it (not a release Stitch "
                                   "signed: pushed another way?)")  # fmt: skip
        # Every one must verify: an attestation nobody can vouch for, beside a release, is tampering -- refused,
        # not skipped for a valid one next to it.
        for candidate in candidates:
            statement = _open(client, repo, str(candidate["digest"]), record, verifier, predicate)
            if predicate == PROVENANCE:
                _check_provenance(statement, record, source, what)
            if predicate == SBOM:
                described.add(subject_digest(statement))
            found.append(Found(predicate, str(candidate["digest"]), _says(statement)))
    for platform, child in sorted(record.platforms.items()):
        if child.digest not in described:
            raise AttestationError(f"{what}: no SBOM attestation describes its {platform} child {child.digest}")
    found.append(Found(COSIGN, *cosign.verify(client, record, verifier)))
    return found


def _open(
    client: RegistryClient, repo: RepositoryRef, digest: str, record: ImageRecord, verifier: Signer, predicate: str
) -> dict[str, Any]:
    what = f"{KINDS[predicate]} attestation {repo}@{digest}"
    try:
        manifest = client.get_manifest(repo, digest, (OCI_MANIFEST,))
        check_bytes(manifest, digest, what)
        document = json.loads(manifest.data)
        layer = document["layers"][0]
        blob = client.get_blob(repo, str(layer["digest"]))
    except (RegistryError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise AttestationError(f"{what}: cannot be read ({exc})") from exc
    if digest_of(blob) != layer["digest"]:
        raise AttestationError(f"{what}: its envelope does not match its digest")
    if (document.get("subject") or {}).get("digest") != record.index_digest:
        raise AttestationError(f"{what}: refers to another digest than {record.index_digest}")
    statement = opened(Envelope.parse(blob, what), verifier, what)
    if statement.get("predicateType") != predicate:
        raise AttestationError(f"{what}: predicate {statement.get('predicateType')!r}, expected {predicate!r}")
    # The signature and provenance are about the index; an SBOM about one of its platform children.
    about = {c.digest for c in record.platforms.values()} if predicate == SBOM else {record.index_digest}
    if subject_digest(statement) not in about:
        raise AttestationError(f"{what}: signed for {subject_digest(statement) or 'no digest'}, not "
                               f"{' or '.join(sorted(about))}")  # fmt: skip
    return statement


def _check_provenance(statement: dict[str, Any], record: ImageRecord, source: str, what: str) -> None:
    predicate = statement.get("predicate") or {}
    external = (predicate.get("buildDefinition") or {}).get("externalParameters") or {}
    named = external.get("source") or {}
    commit = (named.get("digest") or {}).get("gitCommit", "")
    if record.commit and commit != record.commit:
        raise AttestationError(f"{what}: its provenance names commit {commit!r}, image.json {record.commit!r}")
    if source and named.get("uri") != source:
        raise AttestationError(f"{what}: its provenance names source {named.get('uri')!r}, the pipeline {source!r}")
    builder = str(((predicate.get("runDetails") or {}).get("builder") or {}).get("id", ""))
    home = RepositoryRef.parse(record.repository).ecr_account_region
    project = _PROJECT.match(builder)
    if project is None or (home is not None and (project["account"], project["region"]) != home):
        raise AttestationError(f"{what}: built by {builder!r}, not a Slipway CodeBuild project of the platform")


def _says(statement: dict[str, Any]) -> str:
    predicate = statement.get("predicate") or {}
    if statement.get("predicateType") == SIGNED:
        return f"signed: {predicate.get('repository')}:{predicate.get('tag')}"
    if statement.get("predicateType") == SBOM:
        return f"SBOM of {predicate.get('name')}: {len(predicate.get('packages') or [])} package(s)"
    external = (predicate.get("buildDefinition") or {}).get("externalParameters") or {}
    source = external.get("source") or {}
    bases = len((predicate.get("buildDefinition") or {}).get("resolvedDependencies") or [])
    builder = ((predicate.get("runDetails") or {}).get("builder") or {}).get("id", "")
    return (
        f"built from {source.get('uri')}@{(source.get('digest') or {}).get('gitCommit')} by {builder}, {bases} base(s)"
    )
