"""The EKS admission policy: a Kyverno ``ClusterPolicy`` that admits a Slipway image only with its release signature.

The deploy job checks every release before it touches a target (:func:`pipeline.attest.release.verify`); the cluster
checks again at admission, so a Deployment applied by hand, or a Pod created by anything else, cannot run an image
of a Slipway repository that Stitch did not sign. Kyverno's ``verifyImages`` reads cosign's format, which Stitch
writes beside each release (:mod:`pipeline.attest.cosign`), with the release key's public half (``publicKeys``: the
cluster needs no KMS permission). No transparency log is involved (the key is the platform's, not a keyless identity),
so Rekor and the CT log are turned off for it.

The policy is cluster-scoped and guards what the deploy roles cannot change: a platform administrator applies it
(``slipway admission-policy --cluster NAME | kubectl apply -f -``), never a team's deploy job (whose access entry is
scoped to its namespace). Before it is printed it is checked against Kyverno's ``ClusterPolicy`` schema
(``schemas/kyverno.io_clusterpolicy_v1.json``, from datreeio/CRDs-catalog, descriptions removed), strictly: a field
Kyverno does not know is an error, as kubernetes-validate is strict about the Deployment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

SCHEMA = Path(__file__).with_name("schemas") / "kyverno.io_clusterpolicy_v1.json"
_EXTRA = "needs jsonschema and cryptography: pip install 'slipway[admission]'"


def policy_name(platform: str, cluster: str) -> str:
    """``slipway-<platform>-<cluster>-signed``, cut to a DNS label's 63 characters."""
    return f"slipway-{platform}-{cluster}"[:56].lower().replace("_", "-").rstrip("-") + "-signed"


def cluster_policy(name: str, repositories: Mapping[str, str], public_key_pem: str) -> dict[str, Any]:
    """``repositories``: each repository a cluster pulls Slipway images from, and the one its signatures are read in
    (itself, or the platform's repository when it is a replica in another region: the deploy checks attestations
    there too). Images are matched by tag and by digest (``<repository>:*``, ``<repository>@*``) and must be named by
    digest (``verifyDigest``), which Slipway's deploys always do; Kyverno does not rewrite them (``mutateDigest``)."""
    if not repositories:
        raise InputError(f"admission policy {name}: no Slipway repository deploys to this cluster")
    keys = {"publicKeys": public_key_pem.strip(), "signatureAlgorithm": "sha256",
            "rekor": {"ignoreTlog": True}, "ctlog": {"ignoreSCT": True}}  # fmt: skip
    home = sorted(r for r, signed_in in repositories.items() if signed_in == r)
    replicas = sorted((r, signed_in) for r, signed_in in repositories.items() if signed_in != r)
    groups: list[tuple[list[str], str]] = [(home, "")] if home else []
    groups += [([repository], signed_in) for repository, signed_in in replicas]
    rules = []
    for matched, signed_in in groups:
        rule: dict[str, Any] = {
            "imageReferences": [pattern for r in matched for pattern in (f"{r}:*", f"{r}@*")],
            "failureAction": "Enforce", "mutateDigest": False, "verifyDigest": True, "required": True,
            # ECR's credential helper, as Kyverno's own identity (EKS Pod Identity or IRSA): the README says which
            "imageRegistryCredentials": {"providers": ["amazon"]},
            "attestors": [{"count": 1, "entries": [{"keys": keys}]}],
        }  # fmt: skip
        if signed_in:
            rule["repository"] = signed_in
        rules.append(rule)
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": name, "annotations": {
            "policies.kyverno.io/title": "Slipway releases are signed",
            "policies.kyverno.io/description": "A Slipway image is admitted only by digest, with the cosign-format "
            "signature Stitch made with the platform's release key.",
        }},
        "spec": {
            "background": False,
            "webhookConfiguration": {"failurePolicy": "Fail", "timeoutSeconds": 30},
            "rules": [{"name": "slipway-release-signature", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                       "verifyImages": rules}],
        },
    }  # fmt: skip
    check(policy)
    return policy


def check(policy: Mapping[str, Any]) -> None:
    """Kyverno's ClusterPolicy schema, strictly; the first error names its field (InputError, exit 2)."""
    validator = _validator()
    errors = sorted(validator.iter_errors(policy), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(the policy)"
        raise InputError(f"admission policy {policy.get('metadata', {}).get('name', '')}: {where}: "
                         f"{errors[0].message} (Kyverno's ClusterPolicy schema)")  # fmt: skip


@cache
def _validator() -> Any:
    # Imported here: a job's runner image runs every other command without it.
    try:
        import jsonschema
    except ImportError as exc:
        raise InputError(f"admission policy: {_EXTRA}") from exc
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def public_key_pem(kms: Any, key_id: str) -> str:
    """The release key's public half, PEM (SubjectPublicKeyInfo), as Kyverno and ``cosign verify --key`` read it."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:
        raise InputError(f"admission policy: {_EXTRA}") from exc

    answer = kms.get_public_key(KeyId=key_id)
    key = serialization.load_der_public_key(bytes(answer["PublicKey"]))
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()
