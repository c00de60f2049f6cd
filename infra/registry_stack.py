"""The platform's image supply, registry-wide: pull-through cache, creation templates, scanning. Each team's
repositories are in stacks of their own (:mod:`infra.repositories_stack`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.creation_templates import RepositoryCreationTemplates, RepositoryCreationTemplatesProps
from infra.image_repository import ImageRepositoryProps, lifecycle_rules
from infra.pull_through_cache import PullThroughCache, PullThroughCacheProps
from infra.release_key import ReleaseKey, ReleaseKeyProps
from infra.warm_builders import Arm64Fleet, Arm64FleetProps
from pipeline import replication, runner_image
from pipeline.config import PlatformConfig


class RegistryStack(Stack):
    """Composes the registry constructs from ``platform.toml``; holds no resource logic of its own."""

    def __init__(self, scope: Construct, id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        settings = config.registry
        self.pull_through_cache = (
            PullThroughCache(self, "PullThroughCache", PullThroughCacheProps(upstreams=config.upstreams))
            if config.upstreams
            else None
        )
        if config.upstreams or settings.root_creation_template:
            RepositoryCreationTemplates(
                self,
                "CreationTemplates",
                RepositoryCreationTemplatesProps(
                    pull_through_prefixes=tuple(u.prefix for u in config.upstreams),
                    include_root=settings.root_creation_template,
                    kms_key_arn=settings.kms_key_arn,
                    untagged_expiry_days=settings.untagged_expiry_days,
                    platform=config.platform.name,
                ),
            )
        self.runner = runner_repository(self, config)
        self.release_key = ReleaseKey(self, "ReleaseKey", ReleaseKeyProps(platform=config.platform.name))
        if (builders := config.builders).arm64_fleet:
            Arm64Fleet(self, "Arm64Fleet", Arm64FleetProps(
                platform=config.platform.name, hosts=builders.arm64_fleet, compute=builders.arm64_fleet_compute,
                overflow=builders.arm64_fleet_overflow,
            ))  # fmt: skip
        if rules := replication.plan(config):
            registry_replication(self, rules)
        if settings.scan == "enhanced":
            ecr.CfnRegistryScanningConfiguration(
                self,
                "EnhancedScanning",
                scan_type="ENHANCED",
                rules=[
                    ecr.CfnRegistryScanningConfiguration.ScanningRuleProperty(
                        scan_frequency="CONTINUOUS_SCAN",
                        repository_filters=[
                            ecr.CfnRegistryScanningConfiguration.RepositoryFilterProperty(
                                filter="*", filter_type="WILDCARD"
                            )
                        ],
                    )
                ],
            )


def runner_repository(scope: Construct, config: PlatformConfig) -> ecr.Repository:
    """``slipway/runner``: Slipway's runner image (:mod:`pipeline.runner_image`), released by ``slipway runner
    bootstrap`` as whoever the platform team deploys as (no push Deny: no job pushes here). Immutable release tags,
    the registry's key and lifecycle, and retained like every repository of released images."""
    settings = config.registry
    props = ImageRepositoryProps(
        repository_name=runner_image.REPOSITORY, team="slipway", kms_key_arn=settings.kms_key_arn,
        untagged_expiry_days=settings.untagged_expiry_days, keep_releases=settings.keep_releases,
        keep_cache_images=settings.keep_cache_images,
    )  # fmt: skip
    key = kms.Key.from_key_arn(scope, "RunnerKey", settings.kms_key_arn) if settings.kms_key_arn else None
    return ecr.Repository(
        scope, "Runner", repository_name=runner_image.REPOSITORY, image_scan_on_push=True,
        image_tag_mutability=ecr.TagMutability.IMMUTABLE,
        encryption=ecr.RepositoryEncryption.KMS if key else ecr.RepositoryEncryption.AES_256, encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN, lifecycle_rules=lifecycle_rules(props),
    )  # fmt: skip


def registry_replication(scope: Stack, rules: list[replication.Rule]) -> ecr.CfnReplicationConfiguration:
    """The registry's one replication configuration (:mod:`pipeline.replication`): each service's repository to the
    regions of its environments, in this account. It replaces any configuration the registry had: a platform's
    registry replicates what the platform says."""
    cfn = ecr.CfnReplicationConfiguration
    return cfn(
        scope,
        "Replication",
        replication_configuration=cfn.ReplicationConfigurationProperty(
            rules=[
                cfn.ReplicationRuleProperty(
                    destinations=[
                        cfn.ReplicationDestinationProperty(region=r, registry_id=scope.account) for r in rule.regions
                    ],
                    repository_filters=[
                        cfn.RepositoryFilterProperty(filter=name, filter_type="PREFIX_MATCH")
                        for name in rule.repositories
                    ],
                )
                for rule in rules
            ]
        ),
    )
