"""ECR pull-through cache rules: upstream registries served from the platform's own ECR.

Builds pull ``<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream path>`` and never the public registry, so
a Docker Hub rate limit or outage cannot stop a release. The first pull of an image creates its cache repository,
which is why build roles get ``ecr:CreateRepository`` and ``ecr:BatchImportUpstreamImage`` -- on the cache prefixes
only (see :meth:`PullThroughCache.grant_pull_through`).

Credentials for Docker Hub, GHCR, GitLab and ACR live in Secrets Manager under ``ecr-pullthroughcache/...`` (a name
ECR requires). The stack creates an empty secret shell or references an existing one; a value is never in the
template.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import SecretValue, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.image_repository import PULL_ACTIONS
from infra.nag import acknowledge
from infra.validation import raise_if_any
from pipeline.config import PULL_THROUGH_SECRET_PREFIX, Upstream
from pipeline.preflight import CREDENTIAL_KEYS


@dataclass(frozen=True, kw_only=True)
class PullThroughCacheProps:
    upstreams: tuple[Upstream, ...]
    """One rule per upstream; at least one."""


class PullThroughCache(Construct):
    """A pull-through cache rule (and credential secret where needed) per upstream registry."""

    def __init__(self, scope: Construct, id: str, props: PullThroughCacheProps) -> None:
        super().__init__(scope, id)
        self._validate(props)
        self.upstreams = props.upstreams
        self.rules: dict[str, ecr.CfnPullThroughCacheRule] = {}
        self.secrets: dict[str, secretsmanager.ISecret] = {}
        for upstream in props.upstreams:
            scope_id = upstream.prefix
            credential = self._credential(scope_id, upstream)
            if credential is not None:
                self.secrets[upstream.prefix] = credential
            self.rules[upstream.prefix] = ecr.CfnPullThroughCacheRule(
                self,
                f"Rule-{scope_id}",
                ecr_repository_prefix=upstream.prefix,
                # The config's registry kinds are CloudFormation's UpstreamRegistry values.
                upstream_registry=upstream.registry,
                upstream_registry_url=upstream.upstream_url,
                credential_arn=credential.secret_arn if credential is not None else None,
            )

    def _credential(self, scope_id: str, upstream: Upstream) -> secretsmanager.ISecret | None:
        if not upstream.credential_secret:
            return None
        if upstream.create_secret:
            # The shape ECR reads, with empty values: an operator fills {"username", "accessToken"} out of band
            # (`slipway preflight` says when they are still empty). No value is ever in the template.
            secret = secretsmanager.Secret(
                self,
                f"Credential-{scope_id}",
                secret_name=upstream.credential_secret,
                description=f"ECR pull-through cache credential for {upstream.upstream_url} (set out of band)",
                secret_object_value={key: SecretValue.unsafe_plain_text("") for key in CREDENTIAL_KEYS},
            )
            acknowledge(
                secret,
                "SMG4",
                "An upstream registry token is issued and rotated at the upstream (Docker Hub, GHCR), not by Lambda",
            )
            return secret
        return secretsmanager.Secret.from_secret_name_v2(self, f"Credential-{scope_id}", upstream.credential_secret)

    @staticmethod
    def _validate(props: PullThroughCacheProps) -> None:
        problems: list[str] = []
        if not props.upstreams:
            problems.append("upstreams: expected at least one upstream registry, got none")
        seen: set[str] = set()
        for i, upstream in enumerate(props.upstreams):
            if upstream.prefix in seen:
                problems.append(f"upstreams[{i}].prefix: duplicate prefix {upstream.prefix!r}")
            seen.add(upstream.prefix)
            if upstream.needs_credential and not upstream.credential_secret.startswith(PULL_THROUGH_SECRET_PREFIX):
                problems.append(
                    f"upstreams[{i}].credential_secret: {upstream.registry} needs a secret named "
                    f"'{PULL_THROUGH_SECRET_PREFIX}...', got {upstream.credential_secret!r}"
                )
            if not upstream.needs_credential and upstream.credential_secret:
                problems.append(f"upstreams[{i}].credential_secret: {upstream.registry} takes no credential")
        raise_if_any("PullThroughCache", problems)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(u.prefix for u in self.upstreams)

    def grant_pull_through(self, grantee: iam.IGrantable) -> None:
        """Pull cached images, and let the first pull create the cache repository and import the upstream image."""
        stack = Stack.of(self)
        resources = [
            stack.format_arn(service="ecr", resource="repository", resource_name=f"{prefix}/*")
            for prefix in self.prefixes
        ]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*PULL_ACTIONS, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                resources=resources,
            )
        )
        if isinstance(grantee, Construct):
            for prefix in self.prefixes:
                acknowledge(
                    grantee,
                    "IAM5",
                    "Cache repositories are named after upstream images at first pull; scoped to the cache prefix",
                    applies_to=f"Resource::arn:<AWS::Partition>:ecr:{stack.region}:{stack.account}:repository/{prefix}/*",
                )
