"""What signing a release costs (#28): Stitch's `attest` and every deploy's check, against a real registry and KMS.

Starts Debian's docker-registry and moto's KMS on 127.0.0.1 (no `make demo` needed), pushes a stitched two-platform
release, then times `attest` (four DSSE attestations and the cosign-format signature) and `verify` (what each deploy
action runs before it touches its target), and counts the KMS calls and the bytes the attestations add to the
repository. docker-registry 2.8 has no referrers API, so this is the OCI 1.1 fallback path (one more index read and
write than ECR's). moto answers in-process; AWS KMS adds a network round trip a call. Writes
benchmarks/results/attest.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from pipeline.attest import referrers  # noqa: E402
from pipeline.attest.cosign import signature_tag  # noqa: E402
from pipeline.attest.release import attest, verify  # noqa: E402
from pipeline.attest.signer import KmsSigner  # noqa: E402
from pipeline.attest.statements import Provenance  # noqa: E402
from pipeline.local import services  # noqa: E402
from pipeline.oci import INDEXES, OCI_MANIFEST, digest_of  # noqa: E402
from pipeline.records import BuildRecord  # noqa: E402
from pipeline.registry import RepositoryRef  # noqa: E402
from pipeline.registry.distribution import DistributionClient  # noqa: E402
from pipeline.stitch import stitch  # noqa: E402
from tests.fakes import MemoryRegistry  # noqa: E402

RELEASES, CHECKS = (1, 1) if "--smoke" in sys.argv[1:] else (5, 5)
SERVICES, DEPLOY_ACTIONS = 500, 4
"""The scale the README checks: 500 services, each released weekly (the base refresh) and deployed by 4 actions
(dev and prod, a Lambda function and an ECS service each)."""


PACKAGES = [
    {"SPDXID": f"SPDXRef-Package-deb-{n}", "name": f"package-{n}", "versionInfo": "1.2.3-4",
     "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                       "referenceLocator": f"pkg:deb/debian/package-{n}@1.2.3-4?arch=amd64"}]}
    for n in range(100)
]  # fmt: skip
"""An SBOM's size is its packages' (payments/api's Debian base lists 91 in the replay): 100 each here."""


class Counting:
    def __init__(self, inner: KmsSigner) -> None:
        self.inner, self.key_id, self.calls = inner, inner.key_id, {"Sign": 0, "Verify": 0}

    def sign(self, message: bytes) -> bytes:
        self.calls["Sign"] += 1
        return self.inner.sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        self.calls["Verify"] += 1
        return self.inner.verify(message, signature)


def pushed_release(client: DistributionClient, repository: str, tag: str) -> Any:
    """A stitched two-platform release of its own content (real manifests and digests), copied into the registry."""
    memory = MemoryRegistry()
    layer = f"the layer of {tag}".encode()
    builds = [
        BuildRecord(repository, p, memory.add_image(repository, *p.split("/"), layer=layer), 1000, 1.0, "buildx")
        for p in ("linux/amd64", "linux/arm64")
    ]
    record = stitch(memory, builds, tag=tag).record
    repo = RepositoryRef.parse(repository)
    with tempfile.TemporaryDirectory() as directory:
        for data in [layer, *memory.blobs.values()]:
            path = Path(directory) / "blob"
            path.write_bytes(data)
            client.put_blob(repo, digest_of(data), path)
    manifests = {m.digest: m for m in memory.manifests.values()}
    for digest, manifest in manifests.items():
        if manifest.media_type not in INDEXES:
            client.put_manifest(repo, digest, manifest)
    client.put_manifest(repo, tag, manifests[record.index_digest])
    return record


def attestation_bytes(client: DistributionClient, repo: RepositoryRef, index_digest: str) -> int:
    """Every manifest and blob the attestations added (the empty config counted once)."""
    total, blobs = 0, set()
    digests = [str(d["digest"]) for d in referrers.listed(client, repo, index_digest)]
    fallback = client.get_manifest(repo, referrers.fallback_tag(index_digest), INDEXES)
    total += len(fallback.data)
    for reference in [*digests, signature_tag(index_digest)]:
        manifest = client.get_manifest(repo, reference, (OCI_MANIFEST,))
        total += len(manifest.data)
        document = json.loads(manifest.data)
        for descriptor in [document["config"], *document["layers"]]:
            if descriptor["digest"] not in blobs:
                blobs.add(descriptor["digest"])
                total += int(descriptor["size"])
    return total


def main() -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"})  # fmt: skip
    import boto3

    with tempfile.TemporaryDirectory(prefix="slipway-bench-attest-") as directory:
        state = Path(directory)
        registry_port, moto_port = services.free_port(), services.free_port()
        with services.running(services.registry_service(state, registry_port)), \
                services.running(services.moto_service(state, moto_port)):  # fmt: skip
            kms = boto3.client("kms", endpoint_url=f"http://127.0.0.1:{moto_port}")
            key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
            signer = Counting(KmsSigner(key, kms))
            client = DistributionClient()
            repository = f"127.0.0.1:{registry_port}/payments/api"
            rows = []
            for i in range(RELEASES):
                record = pushed_release(client, repository, tag=f"r{i}")
                made = Provenance(source="acme/payments-api", commit=record.commit or "c0ffee1",
                                  builder="arn:aws:codebuild:eu-west-1:111111111111:project/slipway_payments_x_Stitch")  # fmt: skip
                sboms = {p: {"spdxVersion": "SPDX-2.3", "name": p, "packages": PACKAGES} for p in record.platforms}
                signer.calls = {"Sign": 0, "Verify": 0}
                started = time.perf_counter()
                attest(client, record, signer, made, sboms)
                attest_seconds, signs = time.perf_counter() - started, signer.calls["Sign"]
                checks = []
                for _ in range(CHECKS):
                    signer.calls["Verify"] = 0
                    started = time.perf_counter()
                    verify(client, record, signer)
                    checks.append(time.perf_counter() - started)
                rows.append({
                    "release": record.tag, "attest_seconds": round(attest_seconds, 3), "kms_sign_calls": signs,
                    "verify_seconds_median": round(statistics.median(checks), 3),
                    "kms_verify_calls": signer.calls["Verify"],
                    "attestation_bytes": attestation_bytes(client, RepositoryRef.parse(repository), record.index_digest),
                })  # fmt: skip
    signs, verifies = rows[-1]["kms_sign_calls"], rows[-1]["kms_verify_calls"]
    emit(
        "attest",
        rows,
        tuple(rows[0]),
        note=f"{RELEASES} releases (two platforms, SBOMs of {len(PACKAGES)} packages), {CHECKS} checks each; "
        "docker-registry (fallback tag) and moto KMS",
        summary={
            "attest_seconds_median": round(statistics.median(r["attest_seconds"] for r in rows), 3),
            "verify_seconds_median": round(statistics.median(r["verify_seconds_median"] for r in rows), 3),
            "kms_sign_calls_per_release": signs,
            "kms_verify_calls_per_deploy_action": verifies,
            f"kms_calls_per_weekly_wave_at_{SERVICES}_services": SERVICES * (signs + DEPLOY_ACTIONS * verifies),
            "attestation_bytes_per_release": rows[-1]["attestation_bytes"],
        },
    )


if __name__ == "__main__":
    main()
