"""cdk-nag acknowledgments: every suppression names its rule and says why it does not apply."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str, *, applies_to: str = "") -> None:
    """Acknowledge ``AwsSolutions-<rule>`` (optionally one granular finding) on ``construct`` and its children."""
    if len(reason) < 20:
        raise ValueError(f"acknowledge {rule}: give a reason a reviewer can check, got {reason!r}")
    finding = f"[{applies_to}]" if applies_to else ""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{rule}{finding}", reason=reason))
