"""Least privilege the templates keep (issue #27, policies 2 and 3; 1 is in test_registry_stack, 4 in
test_partitions)."""

from __future__ import annotations

import json
from typing import Any


def roles(synthesized: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical, role["Properties"])
        for stack, template in synthesized["templates"].items()
        for logical, role in template.find_resources("AWS::IAM::Role").items()
    ]


def test_only_build_roles_live_under_the_path_the_repositories_let_push(synthesized: dict[str, Any]) -> None:
    """Repositories deny pushes to every principal outside ``/slipway/build/<team>/``: a deploy, lint or pipeline
    role there could push."""
    under = [(s, k) for s, k, p in roles(synthesized) if str(p.get("Path", "")).startswith("/slipway/build/")]
    assert under and all("BuildRole" in logical or "StitchRole" in logical for _, logical in under), under
    services = {json.dumps(p["AssumeRolePolicyDocument"]) for _, k, p in roles(synthesized)
                if "BuildRole" in k or "StitchRole" in k}  # fmt: skip
    assert services == {json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                                   "Principal": {"Service": "codebuild.amazonaws.com"}}],
                                    "Version": "2012-10-17"})}  # fmt: skip


def test_no_role_trusts_a_whole_account_without_naming_who(synthesized: dict[str, Any]) -> None:
    """A role trusted by an account's root with no condition may be assumed by anyone there whom IAM allows: the
    platform pipeline's Source action had such a role; now it acts as the pipeline's role. Workload roles trust the
    platform account only for the deploy roles of their team and environment (``aws:PrincipalArn``)."""
    for stack, logical, props in roles(synthesized):
        for statement in props["AssumeRolePolicyDocument"]["Statement"]:
            if "AWS" in statement.get("Principal", {}):
                assert "aws:PrincipalArn" in json.dumps(statement.get("Condition", {})), (stack, logical)
    assert not [k for _, k, _ in roles(synthesized) if "SourceRole" in k]
