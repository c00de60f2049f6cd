"""The assembly's IAM in the AWS stand-in, and each job acting with its own role.

What CloudFormation would create -- every ``AWS::IAM::Role`` (path, inline policies), every ``AWS::IAM::Policy`` on
its roles and every ``AWS::IAM::ManagedPolicy`` attached to its roles (CDK moves a role's statements there past IAM's
inline size) -- is created in moto, and each job calls AWS with its project's role (``sts:AssumeRole`` credentials).
The replay's admin assumes the roles on behalf of CodeBuild: a role trusted by a service also trusts that admin in
moto, and the template's own trust is checked by :func:`assumer`, from the assembly -- a job's role must trust the
service that runs it. Every other trust policy is the template's, enforced by the AWS stand-in
(:mod:`pipeline.local.iam_enforcement`): a workload role in another account trusts only the platform's deploy roles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import assembly
from pipeline.errors import SlipwayError

SESSION = "slipway-replay"
CODEBUILD = "codebuild.amazonaws.com"
CODEPIPELINE = "codepipeline.amazonaws.com"


class TrustError(SlipwayError):
    pass


def apply(directory: Path, iam_in: Callable[[str], Any], stand_in: str) -> None:
    """Create (or update) the assembly's roles and policies in moto, each stack's in its own account (``iam_in``:
    account → IAM client there). A role whose trust names an AWS service also trusts ``stand_in`` (the admin that
    assumes it for that service; the template's own trust is checked by :func:`assumer`); other trust policies --
    a workload role trusting the platform's deploy roles -- are kept as the template has them, and moto enforces them."""
    for stack in assembly.stacks(directory):
        iam = iam_in(stack.resolve.account)
        for logical, props in stack.of_type("AWS::IAM::Role").items():
            name = str(stack.resolve({"Ref": logical}))
            trust = _trust(props.get("AssumeRolePolicyDocument", {}), stand_in)
            try:
                iam.create_role(RoleName=name, Path=props.get("Path", "/"), AssumeRolePolicyDocument=json.dumps(trust))
            except iam.exceptions.EntityAlreadyExistsException:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            for policy in props.get("Policies", []):
                iam.put_role_policy(
                    RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
                )
        for props in stack.of_type("AWS::IAM::Policy").values():
            for role in props.get("Roles", []):
                iam.put_role_policy(
                    RoleName=str(role),
                    PolicyName=props["PolicyName"],
                    PolicyDocument=json.dumps(props["PolicyDocument"]),
                )
        for logical, props in stack.of_type("AWS::IAM::ManagedPolicy").items():
            arn = str(stack.resolve({"Ref": logical}))
            _managed_policy(iam, arn, props)
            for role in props.get("Roles", []):
                iam.attach_role_policy(RoleName=str(role), PolicyArn=arn)


def _managed_policy(iam: Any, arn: str, props: dict[str, Any]) -> None:
    """Create the policy, or make the template's document its default version (IAM keeps five: the oldest goes)."""
    document = json.dumps(props["PolicyDocument"])
    try:
        name = arn.rsplit("/", 1)[-1]
        iam.create_policy(PolicyName=name, Path=props.get("Path", "/"), PolicyDocument=document)
    except iam.exceptions.EntityAlreadyExistsException:
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        old = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        for version in old[: max(0, len(versions) - 4)]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)


def _trust(template: dict[str, Any], stand_in: str) -> dict[str, Any]:
    statements = list(template.get("Statement", []))
    if not statements or any("Service" in (s.get("Principal") or {}) for s in statements):
        statements.append({"Effect": "Allow", "Principal": {"AWS": stand_in}, "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


def keys(variables: dict[str, str]) -> dict[str, str] | None:
    """An assumed role's ``AWS_*`` variables as a client's credentials; none (the stand-in's admin) without them."""
    if not variables:
        return None
    return {"AccessKeyId": variables["AWS_ACCESS_KEY_ID"], "SecretAccessKey": variables["AWS_SECRET_ACCESS_KEY"],
            "SessionToken": variables["AWS_SESSION_TOKEN"]}  # fmt: skip


def assumer(
    sts: Any, trusts: Callable[[], dict[str, set[str]]], service: str = CODEBUILD, *, enforced: bool = True
) -> Callable[[str], dict[str, str]]:
    """``role ARN → environment`` with that role's temporary credentials (what CodeBuild hands a job), once the
    template's trust policy (``trusts()``: role ARN → services, read from the assembly) lets ``service`` assume it.
    Not ``enforced`` (a stand-in without IAM): no credentials, the caller acts as the stand-in's admin."""

    def assume(role_arn: str) -> dict[str, str]:
        if not enforced:
            return {}
        if service not in trusts().get(role_arn, set()):
            raise TrustError(f"role {role_arn}: its trust policy does not let {service} assume it")
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION)["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    return assume
