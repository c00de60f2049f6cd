"""Signed releases (#28): attest at Stitch, verify before every deploy -- against a registry with the referrers API
and one without (the OCI 1.1 fallback tag), with a KMS stand-in that signs digests as KMS does (``DIGEST``)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pipeline.attest import referrers
from pipeline.attest.cosign import signature_tag
from pipeline.attest.dsse import AttestationError, Envelope, pae, seal
from pipeline.attest.release import COSIGN, ENVELOPE, PREDICATE, attest, verify
from pipeline.attest.signer import KmsSigner, SigningError
from pipeline.attest.statements import PROVENANCE, SBOM, SIGNED, Provenance
from pipeline.oci import INDEXES, OCI_MANIFEST, Manifest, canonical_json, digest_of
from pipeline.registry import RepositoryRef
from tests.fakes import MemoryRegistry, released

REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
KEY = "arn:aws:kms:eu-west-1:111111111111:alias/slipway-acme-releases"
SOURCE = "acme/payments-api"
MADE = Provenance(
    source=SOURCE, commit="c0ffee1", builder="arn:aws:codebuild:eu-west-1:111111111111:project/slipway_payments_payments-api_Stitch",
    invocation="arn:aws:codebuild:eu-west-1:111111111111:build/slipway_payments_payments-api_Stitch:1",
    buildspecs={"Build-amd64": "1" * 64},
    bases={"python": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/bases/python@sha256:" + "2" * 64},
)  # fmt: skip


SBOMS = {
    platform: {"spdxVersion": "SPDX-2.3", "name": f"{REPO} {platform}", "packages": [{"name": "libc6"}]}
    for platform in ("linux/amd64", "linux/arm64")
}


class Kms:
    """KMS's Sign and Verify for one ECC_NIST_P256 key, as AWS answers them: ``MessageType=DIGEST`` signs the given
    32 bytes as the SHA-256 of the message (moto signs them as a message: FACTS, the README says so)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[str] = []

    def sign(self, *, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        self.calls.append("sign")
        assert (KeyId, MessageType, SigningAlgorithm, len(Message)) == (KEY, "DIGEST", "ECDSA_SHA_256", 32)
        return {"Signature": self.private.sign(Message, ec.ECDSA(Prehashed(hashes.SHA256())))}

    def verify(self, *, KeyId: str, Message: bytes, MessageType: str, Signature: bytes, SigningAlgorithm: str) -> Any:
        assert (KeyId, MessageType, len(Message)) == (KEY, "DIGEST", 32)
        try:
            self.private.public_key().verify(Signature, Message, ec.ECDSA(Prehashed(hashes.SHA256())))
        except InvalidSignature:
            raise ClientError({"Error": {"Code": "KMSInvalidSignatureException", "Message": "no"}}, "Verify") from None
        return {"SignatureValid": True}


@pytest.fixture
def kms() -> Kms:
    return Kms()


def _release(api: bool = True) -> tuple[MemoryRegistry, Any]:
    registry, record = released(REPO, tag="c0ffee1")
    registry.referrers_api = api
    return registry, replace(record, commit="c0ffee1")


@pytest.mark.parametrize("api", [True, False], ids=["referrers API", "fallback tag"])
def test_a_release_is_signed_beside_its_index_and_verifies(api: bool, kms: Kms) -> None:
    registry, record = _release(api)
    repo = RepositoryRef.parse(REPO)
    index_before = registry.get_manifest(repo, record.tag, INDEXES).data
    done = attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    assert [f.kind for f in done] == [SIGNED, PROVENANCE, SBOM, SBOM, COSIGN]
    found = verify(registry, record, KmsSigner(KEY, kms), source=SOURCE)
    assert [f.says for f in found] == [
        f"signed: {REPO}:c0ffee1",
        f"built from {SOURCE}@c0ffee1 by {MADE.builder}, 1 base(s)",
        f"SBOM of {REPO} linux/amd64: 1 package(s)",
        f"SBOM of {REPO} linux/arm64: 1 package(s)",
        f"cosign signature of {record.index_digest}: 1 layer(s)",
    ]
    # the index Lambda and ECS pull is untouched: its platform children only
    assert registry.get_manifest(repo, record.tag, INDEXES).data == index_before
    assert set(registry.list_tags(repo)) >= {
        "c0ffee1-sig",
        "c0ffee1-provenance",
        "c0ffee1-amd64-sbom",
        "c0ffee1-arm64-sbom",
        signature_tag(record.index_digest),
    }
    fallback = referrers.fallback_tag(record.index_digest)
    assert (fallback in registry.list_tags(repo)) is (not api)
    listed = referrers.listed(registry, repo, record.index_digest)
    assert sorted(d["annotations"][PREDICATE] for d in listed) == sorted([SIGNED, PROVENANCE, SBOM, SBOM])
    assert {d["artifactType"] for d in listed} == {ENVELOPE}


def test_the_signature_is_plain_ecdsa_sha256_over_the_dsse_encoding(kms: Kms) -> None:
    """What KMS signs in DIGEST mode is what any verifier holding the public key checks (cosign, openssl)."""
    envelope = seal({"_type": "x"}, KmsSigner(KEY, kms))
    [(keyid, signature)] = envelope.signatures
    assert keyid == KEY
    kms.private.public_key().verify(signature, pae(envelope.payload_type, envelope.payload), ec.ECDSA(hashes.SHA256()))


def test_a_retry_of_stitch_keeps_the_attestations_already_there(kms: Kms) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    signed, pushes = kms.calls.count("sign"), len(registry.puts)
    again = attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    assert all(f.says.startswith("already there") for f in again)
    assert (kms.calls.count("sign"), len(registry.puts)) == (signed, pushes)


def test_an_image_pushed_by_hand_under_a_release_path_is_refused(kms: Kms) -> None:
    registry, record = _release()
    with pytest.raises(AttestationError, match=rf"^release {REPO}@{record.index_digest}: no sig attestation refers"):
        verify(registry, record, KmsSigner(KEY, kms))


def _tamper(registry: MemoryRegistry, record: Any, predicate: str, change: Any) -> None:
    """Push another envelope for ``predicate``, its statement changed, its signature copied from the real one."""
    repo = RepositoryRef.parse(REPO)
    real = next(
        d for d in referrers.listed(registry, repo, record.index_digest) if d["annotations"][PREDICATE] == predicate
    )
    manifest = registry.get_manifest(repo, real["digest"], (OCI_MANIFEST,))
    envelope = Envelope.parse(registry.get_blob(repo, json.loads(manifest.data)["layers"][0]["digest"]), "x")
    statement = json.loads(envelope.payload)
    change(statement)
    forged = replace(envelope, payload=json.dumps(statement).encode()).to_bytes()
    index = registry.get_manifest(repo, record.index_digest, INDEXES)
    # the genuine one stays: a forged one beside it is refused all the same
    referrers.push(registry, repo, f"{record.tag}-forged", referrers.artifact(index, ENVELOPE, forged,
                                                                               {PREDICATE: predicate}), forged)  # fmt: skip


@pytest.mark.parametrize("predicate", [SIGNED, PROVENANCE, SBOM])
def test_a_tampered_attestation_is_refused(predicate: str, kms: Kms) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)

    def change(statement: dict[str, Any]) -> None:
        statement["predicate"]["tampered"] = True

    _tamper(registry, record, predicate, change)
    with pytest.raises(AttestationError, match="no signature verifies with the platform's release key"):
        verify(registry, record, KmsSigner(KEY, kms))


def test_attestations_signed_by_another_key_are_refused(kms: Kms) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, Kms()), MADE, SBOMS)
    with pytest.raises(AttestationError, match=f"no signature verifies with the platform's release key {KEY}"):
        verify(registry, record, KmsSigner(KEY, kms))


@pytest.mark.parametrize(
    ("made", "source", "message"),
    [
        (replace(MADE, commit="beef"), SOURCE, "its provenance names commit 'beef', image.json 'c0ffee1'"),
        (MADE, "acme/other", f"its provenance names source '{SOURCE}', the pipeline 'acme/other'"),
        (replace(MADE, builder="arn:aws:codebuild:eu-west-1:999999999999:project/slipway_x"), SOURCE,
         "built by 'arn:aws:codebuild:eu-west-1:999999999999:project/slipway_x', not a Slipway CodeBuild project"),
        (replace(MADE, builder="https://github.com/actions/runner"), SOURCE, "not a Slipway CodeBuild project"),
    ],
)  # fmt: skip
def test_a_provenance_naming_another_commit_source_or_builder_is_refused(
    made: Provenance, source: str, message: str, kms: Kms
) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), made, SBOMS)
    with pytest.raises(AttestationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify(registry, record, KmsSigner(KEY, kms), source=source)


def test_a_release_without_an_sbom_of_each_child_is_refused(kms: Kms) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, {"linux/amd64": SBOMS["linux/amd64"]})
    arm = record.platforms["linux/arm64"].digest
    with pytest.raises(AttestationError, match=f"no SBOM attestation describes its linux/arm64 child {arm}$"):
        verify(registry, record, KmsSigner(KEY, kms))


def test_another_releases_valid_attestations_do_not_vouch_for_this_one(kms: Kms) -> None:
    registry, record = _release()
    other = replace(record, tag="beef", commit="beef")
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    with pytest.raises(AttestationError, match="no sig attestation refers to it"):
        verify(registry, replace(other, index_digest="sha256:" + "9" * 64), KmsSigner(KEY, kms))


def test_a_key_that_cannot_be_used_is_a_clear_error() -> None:
    class Denied:
        def sign(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not the Stitch role"}}, "Sign")

    with pytest.raises(SigningError, match=f"^release key {KEY}: cannot sign \\(AccessDeniedException: not the Stitch"):
        KmsSigner(KEY, Denied()).sign(b"x")


def test_the_cli_attests_in_a_codebuild_job_and_deploy_refuses_an_unsigned_release(
    kms: Kms, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.attest import signer
    from pipeline.attest.sbom import sbom_path
    from pipeline.cli import main
    from pipeline.commands import attest as attest_command
    from pipeline.commands import deploy as deploy_command
    from pipeline.commands import verify as verify_command
    from pipeline.records import BuildRecord, write

    registry, record = _release()
    image_json = tmp_path / "image.json"
    write(image_json, record)
    for module in (attest_command, deploy_command, verify_command):
        monkeypatch.setattr(module, "client_for", lambda repo: registry)
    monkeypatch.setattr(signer.boto3, "client", lambda *a, **k: kms)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    deploy = [
        "deploy",
        "lambda",
        "--image-json",
        str(image_json),
        "--out",
        str(tmp_path / "deployed.json"),
        "--function-name",
        "payments-api",
        "--architecture",
        "arm64",
        "--release-key",
        KEY,
        "--source",
        SOURCE,
    ]
    assert main(deploy) == 2  # nothing signed it yet: refused before any AWS call
    assert "no sig attestation refers to it" in capsys.readouterr().err
    attest_args = ["attest", "--image-json", str(image_json), "--key", KEY, "--source", SOURCE]
    for platform, child in record.platforms.items():
        build = tmp_path / f"build-{platform.split('/')[1]}.json"
        write(build, BuildRecord(REPO, platform, child.digest, child.size, 1.0, "buildx"))
        attest_args += ["--build", str(build)]
        if platform == "linux/amd64":
            assert main([*attest_args, "--buildspec", "Build-amd64=" + "1" * 64]) == 2  # no SBOM beside it yet
            assert (
                "build-amd64.spdx.json: the SBOM the linux/amd64 build wrote cannot be read" in capsys.readouterr().err
            )
        sbom_path(build).write_text(json.dumps(SBOMS[platform]))
    monkeypatch.delenv("CODEBUILD_BUILD_ARN", raising=False)
    assert main(attest_args) == 2
    assert (
        "CODEBUILD_BUILD_ARN: expected a CodeBuild build ARN (attest runs in the Stitch job)" in capsys.readouterr().err
    )
    monkeypatch.setenv("CODEBUILD_BUILD_ARN", MADE.invocation)
    assert main([*attest_args, "--buildspec", "Build-amd64=" + "1" * 64]) == 0
    printed = capsys.readouterr().out
    assert f"built from {SOURCE}@c0ffee1 by {MADE.builder}" not in printed  # a new one: signed and pushed
    assert main(["verify", "--image-json", str(image_json), "--attestations", KEY, "--source", SOURCE]) == 0
    assert f"built from {SOURCE}@c0ffee1 by {MADE.builder}, 0 base(s)" in capsys.readouterr().out


def _cosign_layers(registry: MemoryRegistry, record: Any) -> tuple[RepositoryRef, dict[str, Any]]:
    repo = RepositoryRef.parse(REPO)
    return repo, json.loads(registry.get_manifest(repo, signature_tag(record.index_digest), (OCI_MANIFEST,)).data)


def test_the_cosign_signature_is_what_cosign_and_kyverno_check_with_the_public_key_alone(kms: Kms) -> None:
    """cosign's spec: tag ``sha256-<hex>.sig``, a simple signing layer naming the index digest, its ECDSA P-256 /
    SHA-256 signature in the layer's annotation -- checked here with the key's public half only, as Kyverno does."""
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    repo, manifest = _cosign_layers(registry, record)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = registry.get_blob(repo, layer["digest"])
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    kms.private.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    assert json.loads(payload)["critical"] == {
        "identity": {"docker-reference": "payments/api"},
        "image": {"docker-manifest-digest": record.index_digest},
        "type": "cosign container image signature",
    }


def test_a_release_without_its_cosign_signature_is_refused(kms: Kms) -> None:
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    del registry.manifests[REPO, signature_tag(record.index_digest)]
    with pytest.raises(AttestationError, match=rf"^release {REPO}@{record.index_digest}: no cosign signature"):
        verify(registry, record, KmsSigner(KEY, kms))


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        ("copied signature", "a signature does not verify with the platform's release key"),
        ("another digest", "a signed payload names 'sha256:9999"),
    ],
)
def test_a_forged_layer_beside_the_genuine_cosign_signature_is_refused(forge: str, message: str, kms: Kms) -> None:
    """A second layer at the ``.sig`` tag: its signature copied from the genuine one, or genuinely signed by the key
    for another release's digest (a signature replayed onto this one). Both refused, not skipped."""
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    repo, manifest = _cosign_layers(registry, record)
    [genuine] = manifest["layers"]
    other = registry.get_blob(repo, genuine["digest"]).replace(record.index_digest.encode(), b"sha256:" + b"9" * 64)
    signature = genuine["annotations"]["dev.cosignproject.cosign/signature"]
    if forge == "another digest":
        signature = base64.b64encode(KmsSigner(KEY, kms).sign(other)).decode()
    registry.blobs[digest_of(other)] = other
    manifest["layers"].append({**genuine, "digest": digest_of(other), "size": len(other),
                               "annotations": {"dev.cosignproject.cosign/signature": signature}})  # fmt: skip
    registry.put_manifest(repo, signature_tag(record.index_digest), Manifest(canonical_json(manifest), OCI_MANIFEST))
    with pytest.raises(AttestationError, match=message):
        verify(registry, record, KmsSigner(KEY, kms))
