"""An ECR repository for a service or a curated base image.

Release tags (git commits) are immutable; the BuildKit registry-cache tags (``cache-*``) are excluded from
immutability so the cache can move on every build. Only the owning team's build roles may push: the repository
policy denies push to every other principal, so a misconfigured role elsewhere in the account cannot overwrite it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.validation import check_range, raise_if_any
from pipeline.config import PLATFORMS
from pipeline.platforms import slug
from pipeline.references import DIGEST

PLATFORM_SLUGS = tuple(slug(p) for p in PLATFORMS)

CACHE_TAG_PREFIX = "cache-"
ATTESTATION_TAGS = (("signature", "sig"), ("provenance", "provenance"), ("SBOM", "sbom"))
"""Each attestation Stitch pushes beside a release, and its tag's suffix (:mod:`pipeline.attest.release`)."""
COSIGN_SIGNATURE_TAGS = "sha256-*.sig"
"""The release's signature in cosign's format, tagged by its index digest (:mod:`pipeline.attest.cosign`)."""
PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
PUSH_ACTIONS = (
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
)
_REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_ACCOUNT = re.compile(r"^\d{12}$")


def build_role_path(team: str) -> str:
    """IAM path of a team's build roles; the repository policy keys its push guard on it."""
    return f"/slipway/build/{team}/"


@dataclass(frozen=True, kw_only=True)
class ImageRepositoryProps:
    repository_name: str
    """Full ECR name, ``<team>/<service>`` or ``<team>/bases/<name>``."""
    team: str
    """Owning team: only roles under :func:`build_role_path` of this team may push."""
    pull_accounts: tuple[str, ...] = ()
    """Workload accounts allowed to pull (and whose Lambda functions may pull). The own account always can."""
    scan_on_push: bool = True
    """Basic scan on push. Ignored by ECR when the registry uses enhanced scanning."""
    kms_key_arn: str = ""
    """Customer-managed key; default: AES-256 with an AWS-owned key."""
    kms_managed: bool = False
    """Without ``kms_key_arn``: KMS with the AWS managed key ``aws/ecr`` (a replica of a repository whose customer key
    lives in another region)."""
    untagged_expiry_days: int = 14
    keep_releases: int = 50
    keep_cache_images: int = 10
    extra_mutable_tag_prefixes: tuple[str, ...] = field(default=())
    """Further tag prefixes that may move (besides ``cache-``)."""
    lambda_functions: tuple[str, ...] = ()
    """ARNs of the only Lambda functions that may pull (a service's Lambda targets); empty: none may."""


def lifecycle_rules(props: ImageRepositoryProps) -> list[ecr.LifecycleRule]:
    """Untagged manifests expire; the registry cache and releases are bounded by count.

    Safe whatever ECR does with the children of a kept index. ECR documents that lifecycle rules select images by
    their own tags ("An image that matches the tagging requirements of a rule cannot be expired by a rule with a lower
    priority", https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html) and documents no
    exception for a manifest that a kept image index references; users report untagged children of multi-arch indexes
    expiring under ``tagStatus: untagged`` rules. So no child of a release is ever untagged: stitch tags each one
    ``<release>-<arch>`` (:func:`pipeline.stitch.child_tag`), and each architecture's child tags get their own count
    rule, evaluated before the release rule, so children and releases are kept in step; so do a release's attestations
    (``<release>-sig``, ``<release>-provenance``, ``<release>-<arch>-sbom``, and ``sha256-<hex>.sig``). Only orphans
    (a build whose stitch never ran) are untagged.
    """
    children = [
        ecr.LifecycleRule(
            rule_priority=3 + i,
            description=f"Release children for {slug}",
            tag_status=ecr.TagStatus.TAGGED,
            tag_pattern_list=[f"*-{slug}"],
            max_image_count=props.keep_releases,
        )
        for i, slug in enumerate(PLATFORM_SLUGS)
    ]
    # A release's attestations are tagged <release>-sig, <release>-provenance and <release>-<arch>-sbom
    # (pipeline.attest): kept in step with the releases too, and never counted as releases by the "*" rule.
    children += [
        ecr.LifecycleRule(
            rule_priority=3 + len(children) + i,
            description=f"Release {kind} attestations",
            tag_status=ecr.TagStatus.TAGGED,
            tag_pattern_list=[f"*-{suffix}"],
            # one SBOM a platform child (<release>-<arch>-sbom)
            max_image_count=props.keep_releases * (len(PLATFORM_SLUGS) if suffix == "sbom" else 1),
        )
        for i, (kind, suffix) in enumerate(ATTESTATION_TAGS)
    ]
    # ... and its signature in cosign's format, tagged sha256-<index hex>.sig (pipeline.attest.cosign).
    children.append(
        ecr.LifecycleRule(
            rule_priority=3 + len(children),
            description="Release signatures in cosign's format",
            tag_status=ecr.TagStatus.TAGGED,
            tag_pattern_list=[COSIGN_SIGNATURE_TAGS],
            max_image_count=props.keep_releases,
        )
    )
    return [
        ecr.LifecycleRule(
            rule_priority=1,
            description="Untagged manifests (orphans: every release child is tagged)",
            tag_status=ecr.TagStatus.UNTAGGED,
            max_image_age=Duration.days(props.untagged_expiry_days),
        ),
        ecr.LifecycleRule(
            rule_priority=2,
            description="BuildKit registry cache",
            tag_status=ecr.TagStatus.TAGGED,
            tag_prefix_list=[CACHE_TAG_PREFIX],
            max_image_count=props.keep_cache_images,
        ),
        *children,
        ecr.LifecycleRule(
            rule_priority=3 + len(children),
            description="Releases (immutable commit tags)",
            tag_status=ecr.TagStatus.TAGGED,
            tag_pattern_list=["*"],
            max_image_count=props.keep_releases,
        ),
    ]


class RepositoryAccess:
    """URI and grant methods over an ECR repository, so callers never hand-write image references or IAM."""

    repository: ecr.IRepository

    @property
    def repository_uri(self) -> str:
        return self.repository.repository_uri

    def image_uri(self, digest: str) -> str:
        """``repo@sha256:…``. Refuses tags: CDK renders a non-literal digest as ``repo:sha256:…`` (invalid)."""
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"image_uri: expected a literal digest 'sha256:<64 hex>', got {digest!r}")
        return self.repository.repository_uri_for_digest(digest)

    def grant_push(self, grantee: iam.IGrantable) -> iam.Grant:
        """Push and pull (BuildKit reads its registry cache back) for this repository only."""
        return self.repository.grant_pull_push(grantee)

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.repository.grant_pull(grantee)


class RepositoryByName(Construct, RepositoryAccess):
    """A repository another stack owns, reached by its name: the ARN is derived from this stack's account and region,
    so no ``Fn::ImportValue`` ties the stacks (removing a repository from the Registry stack stays an update)."""

    def __init__(self, scope: Construct, id: str, repository_name: str) -> None:
        super().__init__(scope, id)
        self.repository = ecr.Repository.from_repository_name(self, "Repository", repository_name)


class RepositoryByArn(Construct, RepositoryAccess):
    """A repository of another account (the platform's, seen from a workload account), reached by its ARN."""

    def __init__(self, scope: Construct, id: str, repository_arn: str) -> None:
        super().__init__(scope, id)
        name = repository_arn.split(":repository/", 1)[-1]
        self.repository = ecr.Repository.from_repository_attributes(
            self, "Repository", repository_arn=repository_arn, repository_name=name
        )


class ImageRepository(Construct, RepositoryAccess):
    """One service's or base image's repository, with URI and grant methods so callers never hand-write them."""

    def __init__(self, scope: Construct, id: str, props: ImageRepositoryProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        self.props = props
        encryption_key = kms.Key.from_key_arn(self, "Key", props.kms_key_arn) if props.kms_key_arn else None
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=props.repository_name,
            image_scan_on_push=props.scan_on_push,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
            image_tag_mutability_exclusion_filters=[
                ecr.ImageTagMutabilityExclusionFilter.wildcard(f"{prefix}*")
                for prefix in (CACHE_TAG_PREFIX, *props.extra_mutable_tag_prefixes)
            ],
            encryption=(
                ecr.RepositoryEncryption.KMS
                if encryption_key or props.kms_managed
                else ecr.RepositoryEncryption.AES_256
            ),
            encryption_key=encryption_key,
            # A repository full of released images is never deleted by a stack operation.
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=lifecycle_rules(props),
        )
        self._add_policy(props)

    @staticmethod
    def _validate(props: ImageRepositoryProps) -> None:
        problems: list[str] = []
        if not _REPOSITORY_NAME.fullmatch(props.repository_name) or len(props.repository_name) > 256:
            problems.append(
                f"repository_name: expected a lowercase ECR name like 'team/service', got {props.repository_name!r}"
            )
        check_range(problems, "untagged_expiry_days", props.untagged_expiry_days, 1, 3650)
        check_range(problems, "keep_releases", props.keep_releases, 1, 1000)
        check_range(problems, "keep_cache_images", props.keep_cache_images, 1, 100)
        problems.extend(
            f"pull_accounts[{i}]: expected a 12-digit account id, got {a!r}"
            for i, a in enumerate(props.pull_accounts)
            if not _ACCOUNT.fullmatch(a)
        )
        problems.extend(
            f"lambda_functions[{i}]: expected a Lambda function ARN, got {f!r}"
            for i, f in enumerate(props.lambda_functions)
            if not re.fullmatch(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}", f)
        )
        problems.extend(
            f"extra_mutable_tag_prefixes[{i}]: release tags must stay immutable; "
            f"expected a prefix of at least 2 characters, got {p!r}"
            for i, p in enumerate(props.extra_mutable_tag_prefixes)
            if len(p) < 2 or "*" in p
        )
        raise_if_any("ImageRepository", problems)

    def _add_policy(self, props: ImageRepositoryProps) -> None:
        stack = Stack.of(self)
        if props.pull_accounts:
            self.repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="WorkloadAccountsPull",
                    actions=list(PULL_ACTIONS),
                    principals=[iam.AccountPrincipal(a) for a in props.pull_accounts],
                )
            )
        # Lambda pulls an image as the Lambda service: the repository policy must allow it even for functions in this
        # account (an identity policy cannot), for exactly the functions named (a version or alias of each). A
        # repository no function runs has no such statement.
        if props.lambda_functions:
            self.repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="LambdaPull",
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    principals=[iam.ServicePrincipal("lambda.amazonaws.com")],
                    conditions={
                        "ArnLike": {"aws:sourceArn": [f for arn in props.lambda_functions for f in (arn, f"{arn}:*")]}
                    },
                )
            )
        self.repository.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTeamBuildRolesPush",
                effect=iam.Effect.DENY,
                actions=list(PUSH_ACTIONS),
                principals=[iam.AnyPrincipal()],
                conditions={
                    "ArnNotLike": {
                        "aws:PrincipalArn": (
                            f"arn:{stack.partition}:iam::{stack.account}:role{build_role_path(props.team)}*"
                        )
                    }
                },
            )
        )
