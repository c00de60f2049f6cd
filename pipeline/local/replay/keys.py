"""The assembly's signing keys in the AWS stand-in (the CloudFormation stand-in's part): each asymmetric KMS key with
``KeyUsage: SIGN_VERIFY`` and an alias (the platform's release key, :mod:`infra.release_key`) is created in moto with
its key spec, under that alias, once -- as CloudFormation keeps a key across deploys. moto evaluates no key policy:
the key policy's ``OnlyStitchSigns`` deny is held by ``tests/unit/test_release_key.py`` on the template instead, and
the jobs' identity policies (which name the key by ``kms:RequestAlias``) are enforced as everywhere in the replay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import assembly


def create_signing_keys(directory: Path, kms: Callable[[str], Any]) -> list[str]:
    """The aliases of the signing keys, created where missing (in their stack's account)."""
    made = []
    for stack in assembly.stacks(directory):
        for resource in stack.resources.values():
            if resource["Type"] != "AWS::KMS::Alias":
                continue
            properties = resource["Properties"]
            target = properties.get("TargetKeyId")
            logical = target.get("Fn::GetAtt", [""])[0] if isinstance(target, dict) else ""
            key = stack.resources.get(logical, {}).get("Properties", {})
            if key.get("KeyUsage") != "SIGN_VERIFY":
                continue
            client, alias = kms(stack.resolve.account), str(properties["AliasName"])
            known = {
                a["AliasName"] for page in client.get_paginator("list_aliases").paginate() for a in page["Aliases"]
            }
            if alias not in known:
                created = client.create_key(KeySpec=key["KeySpec"], KeyUsage="SIGN_VERIFY",
                                            Description=str(key.get("Description", "")))  # fmt: skip
                client.create_alias(AliasName=alias, TargetKeyId=created["KeyMetadata"]["KeyId"])
            made.append(alias)
    return made
