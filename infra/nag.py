"""cdk-nag acknowledgments: every suppression names its rule and says why it does not apply."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str, *, applies_to: str = "", pack: str = PACK) -> None:
    """Acknowledge ``<pack>-<rule>`` (optionally one granular finding) on ``construct`` and its children."""
    if len(reason) < 20:
        raise ValueError(f"acknowledge {rule}: give a reason a reviewer can check, got {reason!r}")
    finding = f"[{applies_to}]" if applies_to else ""
    rule_id = f"{pack}::{pack}-{rule}{finding}" if pack == PACK else f"{pack}::{rule}"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


ECR_AUTH_TOKEN = "ecr:GetAuthorizationToken has no resource-level permission in IAM; it only issues a login token"
