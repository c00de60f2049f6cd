"""The platform's image supply, registry-wide: pull-through cache, creation templates, scanning. Each team's
repositories are in stacks of their own (:mod:`infra.repositories_stack`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from infra.creation_templates import RepositoryCreationTemplates, RepositoryCreationTemplatesProps
from infra.pull_through_cache import PullThroughCache, PullThroughCacheProps
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
