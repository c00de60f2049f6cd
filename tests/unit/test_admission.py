"""The EKS admission policy (#28): a Kyverno ClusterPolicy, schema-checked strictly, whose public key verifies the
cosign-format signature Stitch writes -- and nothing Stitch did not sign."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.attest import admission
from pipeline.attest.cosign import signature_tag
from pipeline.attest.release import attest
from pipeline.attest.signer import KmsSigner
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.oci import OCI_MANIFEST
from pipeline.registry import RepositoryRef
from tests.unit.test_attest import KEY, MADE, REPO, SBOMS, Kms, _release

ROOT = Path(__file__).resolve().parents[2]
HOME = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


class PublicKeys:
    """KMS's GetPublicKey: the DER SubjectPublicKeyInfo of the key."""

    def __init__(self, kms: Kms) -> None:
        self.kms = kms

    def get_public_key(self, *, KeyId: str) -> dict[str, Any]:
        der = self.kms.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": KeyId, "PublicKey": der, "KeySpec": "ECC_NIST_P256"}


def _render(cluster: str, kms: Kms, tmp_path: Path) -> dict[str, Any]:
    from pipeline.commands import admission as command

    out = tmp_path / "policy.json"
    assert command.render(config_path=ROOT / "platform.toml", cluster=cluster, output=out, kms=PublicKeys(kms)) == 0
    return dict(json.loads(out.read_text()))


def test_the_policy_admits_only_what_the_release_key_signed_in_cosigns_format(tmp_path: Path) -> None:
    """The public key the policy holds verifies the signature Stitch wrote, as Kyverno reads it: the layer at
    ``sha256-<hex>.sig``, ECDSA P-256 over the payload; a signature by another key does not."""
    kms = Kms()
    registry, record = _release()
    attest(registry, record, KmsSigner(KEY, kms), MADE, SBOMS)
    policy = _render("search", kms, tmp_path)
    [rule] = policy["spec"]["rules"]
    [images] = rule["verifyImages"]
    [[entry]] = [a["entries"] for a in images["attestors"]]
    public = serialization.load_pem_public_key(entry["keys"]["publicKeys"].encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    repo = RepositoryRef.parse(REPO)
    [layer] = json.loads(registry.get_manifest(repo, signature_tag(record.index_digest), (OCI_MANIFEST,)).data)[
        "layers"
    ]
    payload = registry.get_blob(repo, layer["digest"])
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    forged = ec.generate_private_key(ec.SECP256R1()).sign(payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(forged, payload, ec.ECDSA(hashes.SHA256()))


def test_the_policy_covers_exactly_the_repositories_deploying_to_the_cluster_by_digest(tmp_path: Path) -> None:
    policy = _render("search", Kms(), tmp_path)
    assert (policy["apiVersion"], policy["kind"]) == ("kyverno.io/v1", "ClusterPolicy")
    assert policy["metadata"]["name"] == "slipway-acme-search-signed"
    assert policy["spec"]["webhookConfiguration"]["failurePolicy"] == "Fail"
    [rule] = policy["spec"]["rules"]
    assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
    [images] = rule["verifyImages"]
    assert images["imageReferences"] == [f"{HOME}/search/indexer:*", f"{HOME}/search/indexer@*"]
    assert (images["failureAction"], images["verifyDigest"], images["mutateDigest"], images["required"]) == (
        "Enforce", True, False, True,
    )  # fmt: skip
    assert "repository" not in images
    keys = images["attestors"][0]["entries"][0]["keys"]
    assert (keys["rekor"], keys["ctlog"]) == ({"ignoreTlog": True}, {"ignoreSCT": True})


def test_a_replica_reads_its_signatures_in_the_platforms_repository() -> None:
    replica = "111111111111.dkr.ecr.eu-central-1.amazonaws.com/payments/api"
    policy = admission.cluster_policy(
        "slipway-acme-x-signed", {replica: f"{HOME}/payments/api", f"{HOME}/search/a": f"{HOME}/search/a"}, "PEM"
    )
    home, remote = policy["spec"]["rules"][0]["verifyImages"]
    assert (home["imageReferences"], "repository" in home) == ([f"{HOME}/search/a:*", f"{HOME}/search/a@*"], False)
    assert (remote["imageReferences"][1], remote["repository"]) == (f"{replica}@*", f"{HOME}/payments/api")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda images: images["attestors"][0]["entries"][0]["keys"].update(publicKey="PEM"),
         r"spec\.rules\.0\.verifyImages\.0\.attestors\.0\.entries\.0\.keys: Additional properties are not allowed "
         r"\('publicKey' was unexpected\)"),
        (lambda images: images.update(failureAction="Deny"),
         r"spec\.rules\.0\.verifyImages\.0\.failureAction: 'Deny' is not one of \['Audit', 'Enforce'\]"),
        (lambda images: images.update(verifyDigest="yes"),
         r"spec\.rules\.0\.verifyImages\.0\.verifyDigest: 'yes' is not of type 'boolean'"),
    ],
)  # fmt: skip
def test_a_policy_kyverno_would_refuse_is_an_error_naming_the_field(change: Any, message: str) -> None:
    policy = admission.cluster_policy("slipway-acme-x-signed", {f"{HOME}/a/b": f"{HOME}/a/b"}, "PEM")
    broken = copy.deepcopy(policy)
    change(broken["spec"]["rules"][0]["verifyImages"][0])
    with pytest.raises(InputError, match=rf"^admission policy slipway-acme-x-signed: {message}"):
        admission.check(broken)


def test_policy_names_are_dns_labels() -> None:
    name = admission.policy_name("Acme_Platform", "c" * 100)
    assert len(name) <= 63
    assert name == name.lower()
    assert "_" not in name


def test_a_cluster_no_target_names_is_exit_2_naming_the_file_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    config = ROOT / "platform.toml"
    assert main(["admission-policy", "--config", str(config), "--cluster", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"slipway admission-policy: {config}: teams.services.deploy.eks.cluster: no EKS target names cluster 'nope'\n"
    )


def test_every_job_command_runs_without_the_admission_extra() -> None:
    """The runner image holds the jobs' dependencies only: the CLI must import without jsonschema and cryptography,
    and the admission command says what to install."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['jsonschema'] = None; sys.modules['cryptography'] = None\n"
        "from pipeline.attest import admission; from pipeline.cli import main\n"
        "try:\n    admission.check({})\nexcept Exception as exc:\n    print(exc)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert completed.stdout == "admission policy: needs jsonschema and cryptography: pip install 'slipway[admission]'\n"


def test_at_500_services_a_clusters_policy_stays_far_under_etcds_request_limit() -> None:
    """The worst case at 500 services: all on one cluster, each from a replica in another region (one rule each,
    each with the key). etcd refuses a request over 1.5 MiB (https://etcd.io/docs/v3.5/dev-guide/limit/)."""
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    replicas = {
        f"111111111111.dkr.ecr.eu-central-1.amazonaws.com/team-{t:02d}/service-{s:02d}": f"{HOME}/team-{t:02d}/service-{s:02d}"
        for t in range(50)
        for s in range(10)
    }
    policy = admission.cluster_policy("slipway-acme-main-signed", replicas, pem)
    size = len(json.dumps(policy))
    assert len(policy["spec"]["rules"][0]["verifyImages"]) == 500
    assert size < 1.5 * 2**20 / 3, size
