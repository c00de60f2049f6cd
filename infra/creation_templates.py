"""Repository creation templates: the settings ECR applies to repositories it creates by itself.

Pull-through cache creates a repository on the first pull of each upstream image; without a template it gets ECR's
defaults (no lifecycle, no scan, AWS-owned key). Cached upstream repositories are MUTABLE on purpose: the cache
refreshes upstream tags, and Slipway pins bases by digest, so a moving tag cannot change what a build uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge
from infra.validation import check_range, raise_if_any

ROOT = "ROOT"


@dataclass(frozen=True, kw_only=True)
class RepositoryCreationTemplatesProps:
    pull_through_prefixes: tuple[str, ...]
    """One template per pull-through-cache prefix."""
    include_root: bool = False
    """Add a ``ROOT`` template for repositories created on push outside those prefixes."""
    kms_key_arn: str = ""
    """Customer-managed key for created repositories; default AES-256."""
    untagged_expiry_days: int = 14
    keep_images: int = 100
    """Cached upstream images kept per repository (a re-pull by digest restores an expired one)."""
    platform: str = "slipway"
    """Tag value of ``slipway:platform`` on every created repository."""


def lifecycle_policy(untagged_expiry_days: int, keep_images: int) -> str:
    """ECR lifecycle JSON (the L1 template takes the document, not L2 rules)."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Untagged manifests",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_expiry_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": "Bound the cache",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


def creation_role_reason(name: str) -> str:
    """Why the creation role's wildcard is as wide as it is: the reason matches the scope it acknowledges."""
    if name == "*":
        return (
            "ROOT creation template: ECR applies it to repositories created on push under any name, so the role may "
            "tag any repository of this registry as it is created"
        )
    return f"ECR names cache repositories after upstream images, known only at first pull; scoped to {name}"


class RepositoryCreationTemplates(Construct):
    def __init__(self, scope: Construct, id: str, props: RepositoryCreationTemplatesProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        # ECR needs a role of its own to tag repositories and use a customer-managed key while creating them.
        self.role = iam.Role(
            self,
            "CreationRole",
            assumed_by=iam.ServicePrincipal("ecr.amazonaws.com"),
            description="Lets ECR apply Slipway's creation templates (tags, KMS)",
        )
        stack = Stack.of(self)
        names = ["*"] if props.include_root else [f"{p}/*" for p in props.pull_through_prefixes]
        resources = [stack.format_arn(service="ecr", resource="repository", resource_name=n) for n in names]
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:CreateRepository", "ecr:TagResource"], resources=resources)
        )
        for name in names:
            acknowledge(
                self.role,
                "IAM5",
                creation_role_reason(name),
                applies_to=f"Resource::arn:<AWS::Partition>:ecr:{stack.region}:{stack.account}:repository/{name}",
            )
        if props.kms_key_arn:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey"],
                    resources=[props.kms_key_arn],
                )
            )
        encryption = (
            {"encryptionType": "KMS", "kmsKey": props.kms_key_arn}
            if props.kms_key_arn
            else {"encryptionType": "AES256"}
        )
        policy = lifecycle_policy(props.untagged_expiry_days, props.keep_images)
        self.templates: dict[str, ecr.CfnRepositoryCreationTemplate] = {}
        targets = [(p, ["PULL_THROUGH_CACHE"]) for p in props.pull_through_prefixes]
        if props.include_root:
            targets.append((ROOT, ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"]))
        for prefix, applied_for in targets:
            self.templates[prefix] = ecr.CfnRepositoryCreationTemplate(
                self,
                f"Template-{prefix}",
                prefix=prefix,
                applied_for=applied_for,
                description=f"Slipway defaults for repositories created under {prefix}",
                image_tag_mutability="MUTABLE",
                lifecycle_policy=policy,
                encryption_configuration=encryption,
                custom_role_arn=self.role.role_arn,
                resource_tags=[{"key": "slipway:platform", "value": props.platform}],
            )

    @staticmethod
    def _validate(props: RepositoryCreationTemplatesProps) -> None:
        problems: list[str] = []
        if not props.pull_through_prefixes and not props.include_root:
            problems.append("pull_through_prefixes: expected at least one prefix or include_root=True, got none")
        if ROOT in props.pull_through_prefixes:
            problems.append("pull_through_prefixes: 'ROOT' is not a prefix; set include_root=True instead")
        check_range(problems, "untagged_expiry_days", props.untagged_expiry_days, 1, 3650)
        check_range(problems, "keep_images", props.keep_images, 1, 10000)
        raise_if_any("RepositoryCreationTemplates", problems)
