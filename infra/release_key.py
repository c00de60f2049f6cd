"""The platform's release key: an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) Stitch signs releases with (#28).

Why KMS rather than ECR managed signing (AWS Signer, Notation): Lambda's code signing does not cover container images,
so the deploy job is where every target's check happens, and it must verify the same way for Lambda, ECS and EKS, in
the cloud and in the replay (moto's KMS signs and verifies; Signer has no stand-in) -- and KMS signs Slipway's
provenance, not only the image. Only roles under the Stitch path (:data:`pipeline.naming.STITCH_ROLES`) may sign: the
key policy denies ``kms:Sign`` to every other principal, administrators and the build jobs that run teams' Dockerfiles
included. Any role of the account its IAM policy allows may verify (the deploy roles).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.nag import acknowledge
from infra.validation import raise_if_any
from pipeline.naming import STITCH_ROLES, release_key_alias


@dataclass(frozen=True, kw_only=True)
class ReleaseKeyProps:
    platform: str
    """The platform's name: the key's alias is ``alias/slipway-<platform>-releases``."""


class ReleaseKey(Construct):
    def __init__(self, scope: Construct, id: str, props: ReleaseKeyProps) -> None:
        super().__init__(scope, id)
        if not props.platform:
            raise_if_any("ReleaseKey", ["platform: expected the platform's name, got ''"])
        stack = Stack.of(self)
        self.key = kms.Key(
            self, "Key", key_spec=kms.KeySpec.ECC_NIST_P256, key_usage=kms.KeyUsage.SIGN_VERIFY,
            alias=release_key_alias(props.platform), removal_policy=RemovalPolicy.RETAIN,
            description=f"Slipway {props.platform}: signs every release (Stitch only) and verifies it (every deploy)",
        )  # fmt: skip
        stitch = f"arn:{Aws.PARTITION}:iam::{stack.account}:role{STITCH_ROLES.format(team='*')}*"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyStitchSigns",
                effect=iam.Effect.DENY,
                actions=["kms:Sign"],
                principals=[iam.AnyPrincipal()],
                resources=["*"],
                conditions={"ArnNotLike": {"aws:PrincipalArn": stitch}},
            )
        )
        acknowledge(self.key, "KMS5", "An asymmetric signing key cannot rotate automatically in KMS")


def grant_use(role: iam.IRole, alias: str, *actions: str) -> None:
    """``kms:Sign`` and/or ``kms:Verify`` on the release key, named by its alias (``alias/…``: no reference to the
    Registry stack; the job names the key by that alias)."""
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[f"arn:{Aws.PARTITION}:kms:{stack.region}:{stack.account}:key/*"],
            conditions={"StringEquals": {"kms:RequestAlias": alias}},
        )
    )
    acknowledge(
        role, "IAM5", "The release key by its alias (kms:RequestAlias): the key's ID is not known outside its stack",
        applies_to=f"Resource::arn:<AWS::Partition>:kms:{stack.region}:{stack.account}:key/*",
    )  # fmt: skip


def release_key_alias_of(arn: str) -> str:
    """``alias/…`` of the key's alias ARN (what the jobs name it by, and their policies allow)."""
    return arn.split(":", 5)[5]
