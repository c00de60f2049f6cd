"""What a platform creates in its account against AWS's quotas: counted from the synthesized assembly, compared with
the account's applied quotas (IAM's account summary, Service Quotas ``GetServiceQuota``), falling back to the
documented defaults where a quota is not readable -- the numbers behind ``slipway preflight``'s quota checks.

Counted from the assembly, not estimated: what ``cdk deploy --all`` would create is exactly what these templates
hold. Only the platform account's stacks count (workload accounts hold their own few roles).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import assembly

Clients = Callable[[str], Any]


@dataclass(frozen=True)
class Quota:
    name: str
    counts: tuple[str, ...]
    """CloudFormation resource types that count against it (``AWS::CloudFormation::Stack``: the stacks themselves)."""
    default: int
    """AWS's documented default, used when the applied value cannot be read."""
    documented: str
    """The AWS page that documents it (README, "Limits and quotas")."""
    service_code: str = ""
    quota_code: str = ""
    """Service Quotas codes; both empty: not readable there (IAM is read from its account summary instead)."""


STACK = "AWS::CloudFormation::Stack"
IAM_ROLES = Quota(
    "IAM roles per account", ("AWS::IAM::Role",), 1_000,
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
)  # fmt: skip
QUOTAS = (
    IAM_ROLES,
    Quota(
        "CloudFormation stacks per Region", (STACK,), 2_000,
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html",
        "cloudformation", "L-0485CB21",
    ),
    Quota(
        "CodePipeline pipelines per Region", ("AWS::CodePipeline::Pipeline",), 1_000,
        "https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html",
    ),
    Quota(
        "CodeBuild projects per Region", ("AWS::CodeBuild::Project",), 5_000,
        "https://docs.aws.amazon.com/codebuild/latest/userguide/limits.html",
    ),
    Quota(
        "EventBridge rules per event bus", ("AWS::Events::Rule",), 300,
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html",
    ),
    Quota(
        "ECR repositories per Region", ("AWS::ECR::Repository",), 100_000,
        "https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class QuotaCheck:
    quota: str
    needed: int
    """What the platform's stacks create in the platform account."""
    in_use: int
    """What the account already holds that the platform does not (readable for IAM roles only; else 0)."""
    applied: int
    source: str
    """``applied`` (read from the account) or ``default`` (documented; the reason it was not read)."""

    @property
    def fits(self) -> bool:
        return self.in_use + self.needed <= self.applied


def footprint(directory: Path, account: str) -> Counter[str]:
    """Resources by type in ``account``'s stacks of the assembly in ``directory``, and the stacks themselves."""
    found: Counter[str] = Counter()
    for stack in assembly.stacks(directory):
        if stack.resolve.account != account:
            continue
        found[STACK] += 1
        found.update(r["Type"] for r in stack.resources.values())
    return found


def check(quotas: tuple[Quota, ...], needs: Counter[str], clients: Clients, owned_path: str) -> Iterator[QuotaCheck]:
    """``owned_path``: the IAM path prefix of the platform's own roles -- already there on a re-deploy, so not
    counted as in use by others. (The platform pipeline's own, Source and events roles and the registry's creation
    role carry no path: on a re-deploy those four count as in use, an overcount of four.)"""
    for quota in quotas:
        needed = sum(needs[t] for t in quota.counts)
        if quota is IAM_ROLES:
            yield _iam_roles(quota, needed, clients, owned_path)
        else:
            applied, source = _applied(quota, clients)
            yield QuotaCheck(quota.name, needed, 0, applied, source)


def _applied(quota: Quota, clients: Clients) -> tuple[int, str]:
    if not quota.quota_code:
        return quota.default, "default (not in Service Quotas: raised through AWS Support)"
    try:
        found = clients("service-quotas").get_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)
        return int(found["Quota"]["Value"]), "applied"
    except (ClientError, BotoCoreError) as exc:
        return quota.default, f"default ({_code(exc)} reading {quota.service_code}/{quota.quota_code})"


def _iam_roles(quota: Quota, needed: int, clients: Clients, owned_path: str) -> QuotaCheck:
    iam = clients("iam")
    try:
        summary = iam.get_account_summary()["SummaryMap"]
        owned = sum(len(page["Roles"]) for page in iam.get_paginator("list_roles").paginate(PathPrefix=owned_path))
    except (ClientError, BotoCoreError) as exc:
        return QuotaCheck(quota.name, needed, 0, quota.default, f"default ({_code(exc)} reading the IAM summary)")
    return QuotaCheck(quota.name, needed, int(summary["Roles"]) - owned, int(summary["RolesQuota"]), "applied")


def _code(exc: ClientError | BotoCoreError) -> str:
    return exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
