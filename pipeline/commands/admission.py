"""``slipway admission-policy``: the Kyverno ClusterPolicy an EKS cluster enforces so that every image of a Slipway
repository it runs carries the release key's signature, checked at admission as every deploy job checks it.

A platform administrator applies it once per cluster, and again when a service starts deploying there::

    slipway admission-policy --cluster payments | kubectl apply -f -

It covers every repository whose EKS target names the cluster (a replica in the cluster's region reads its
signatures in the platform's repository); the public key comes from KMS (``kms:GetPublicKey`` on the release key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from pipeline import config, status
from pipeline.attest import admission
from pipeline.config.model import EksTarget
from pipeline.errors import InputError
from pipeline.naming import release_key_arn, service_repository_name
from pipeline.references import ecr_registry


def register(commands: Any) -> None:
    parser = commands.add_parser("admission-policy", help="the EKS admission policy: signed Slipway images only",
                                 description=__doc__)  # fmt: skip
    parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    parser.add_argument("--cluster", required=True, help="the EKS cluster's name, as deploy targets name it")
    parser.add_argument("--release-key", default="", help="the release key (default: the platform's alias ARN)")
    parser.add_argument("--output", type=Path, help="write the policy here (default: standard output)")
    parser.set_defaults(
        run=lambda a: render(config_path=a.config, cluster=a.cluster, key=a.release_key, output=a.output)
    )


def render(*, config_path: Path, cluster: str, key: str = "", output: Path | None = None, kms: Any = None) -> int:
    loaded = config.load(config_path)
    platform = loaded.platform
    places = [p for p in status.places(loaded) if isinstance(p.target, EksTarget) and p.target.cluster == cluster]
    if not places:
        raise InputError(f"{config_path}: teams.services.deploy.eks.cluster: no EKS target names cluster {cluster!r}")
    home = ecr_registry(platform.account, platform.region)
    repositories = {p.repository: f"{home}/{service_repository_name(p.team, p.service)}" for p in places}
    key = key or release_key_arn(platform.name, platform.account, platform.region)
    kms = kms or boto3.client("kms", region_name=key.split(":")[3] if key.startswith("arn:") else platform.region)
    policy = admission.cluster_policy(
        admission.policy_name(platform.name, cluster), repositories, admission.public_key_pem(kms, key)
    )
    text = json.dumps(policy, indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)
        print(f"{output}: ClusterPolicy {policy['metadata']['name']}: {len(repositories)} repository(ies) of {cluster}")
    return 0
