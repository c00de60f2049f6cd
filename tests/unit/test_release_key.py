"""The release key (#28): only Stitch signs, deploys verify, by the key's alias; builds never touch it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

ALIAS = "alias/slipway-acme-releases"


def _statements(template: Template, path: str) -> list[dict[str, Any]]:
    roles = {k for k, r in template.find_resources("AWS::IAM::Role").items() if r["Properties"]["Path"] == path}
    return [
        s for p in template.find_resources("AWS::IAM::Policy").values()
        if any(r.get("Ref") in roles for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip


def test_the_key_signs_and_verifies_with_ecdsa_p256_and_only_stitch_roles_may_sign(synthesized: dict[str, Any]) -> None:
    registry: Template = synthesized["templates"]["Slipway-Acme-Registry"]
    registry.has_resource_properties("AWS::KMS::Key", {
        "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
        "KeyPolicy": {"Statement": Match.array_with([{
            "Sid": "OnlyStitchSigns", "Effect": "Deny", "Action": "kms:Sign", "Principal": {"AWS": "*"},
            "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": {"Fn::Join": ["", [
                "arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:role/slipway/build/*/stitch/*"]]}}},
        }])},
    })  # fmt: skip
    registry.has_resource_properties("AWS::KMS::Alias", {"AliasName": ALIAS})


def test_stitch_signs_deploys_verify_and_builds_cannot_use_the_key(synthesized: dict[str, Any]) -> None:
    pipelines: Template = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    by_alias = {"StringEquals": {"kms:RequestAlias": ALIAS}}

    def kms(path: str) -> set[str]:
        found = set()
        for statement in _statements(pipelines, path):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in (a for a in actions if a.startswith("kms:") and a in ("kms:Sign", "kms:Verify")):
                assert statement.get("Condition") == by_alias, statement
                found.add(action)
        return found

    assert kms("/slipway/build/payments/stitch/") == {"kms:Sign", "kms:Verify"}  # a retry checks what is there
    # Stitch also ends its rebuild lane turn (`slipway bases continue` rewrites its own registration).
    writes = [s for s in _statements(pipelines, "/slipway/build/payments/stitch/") if s["Action"] == "ssm:PutParameter"]
    assert writes and all("dependents/slipway-payments-api" in json.dumps(s["Resource"]) for s in writes)
    # ... and a failed build gives the lane up too (its post_build), as the build role: both may continue the lane.
    for path in ("/slipway/build/payments/", "/slipway/build/payments/stitch/"):
        actions = {a for s in _statements(pipelines, path) for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                                    else s["Action"])}  # fmt: skip
        assert {"ssm:GetParametersByPath", "codepipeline:StartPipelineExecution"} <= actions, path
    assert kms("/slipway/build/payments/") == set()  # the jobs that run the team's Dockerfile
    assert kms("/slipway/deploy/payments/dev/") == kms("/slipway/deploy/payments/prod/") == {"kms:Verify"}
    specs = [json.loads(p["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"]
             for p in pipelines.find_resources("AWS::CodeBuild::Project").values()]  # fmt: skip
    [stitch] = [c for c in specs if c[0].startswith("slipway stitch")]
    assert stitch[2].startswith(f"slipway attest --image-json image.json --key arn:aws:kms:eu-west-1:111111111111:{ALIAS} "
                                "--source acme/payments-api --build ")  # fmt: skip
    assert stitch[2].count("--buildspec Build-") == 2  # each build's buildspec, by its SHA-256


def test_every_attestation_tag_has_its_lifecycle_rule() -> None:
    """An attestation tag no rule of its own claims would count as a release under the "*" rule."""
    from infra.image_repository import ATTESTATION_TAGS
    from pipeline.attest.release import KINDS

    assert {suffix for _, suffix in ATTESTATION_TAGS} == set(KINDS.values())
