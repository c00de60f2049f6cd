"""The platform's image supply: service and base repositories, pull-through cache, creation templates."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from infra.creation_templates import RepositoryCreationTemplates, RepositoryCreationTemplatesProps
from infra.image_repository import ImageRepository, ImageRepositoryProps
from infra.pull_through_cache import PullThroughCache, PullThroughCacheProps
from pipeline.config import PlatformConfig, Service, Team
from pipeline.naming import base_repository_name, service_repository_name


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
        self.service_repositories: dict[tuple[str, str], ImageRepository] = {}
        self.base_repositories: dict[tuple[str, str], ImageRepository] = {}
        for team in config.teams:
            team_scope = Construct(self, f"Team-{team.name}")
            for base in team.base_images:
                self.base_repositories[team.name, base.name] = ImageRepository(
                    team_scope,
                    f"Base-{base.name}",
                    self._props(config, team, base_repository_name(team.name, base.name)),
                )
            for service in team.services:
                self.service_repositories[team.name, service.name] = ImageRepository(
                    team_scope,
                    f"Service-{service.name}",
                    self._props(config, team, service_repository_name(team.name, service.name), service),
                )

    @staticmethod
    def _props(config: PlatformConfig, team: Team, name: str, service: Service | None = None) -> ImageRepositoryProps:
        """A service with environments is pulled by exactly their accounts, and by Lambda for exactly their
        functions; otherwise by the team's workload accounts (and any function in them)."""
        settings = config.registry
        environments = service.environments if service else ()
        pull_accounts = tuple(dict.fromkeys(e.account for e in environments)) or team.workload_accounts
        functions = tuple(
            f"arn:aws:lambda:{e.region or config.platform.region}:{e.account}:function:{e.lambda_.function_name}"
            for e in environments
            if e.lambda_ is not None
        )
        return ImageRepositoryProps(
            repository_name=name,
            team=team.name,
            pull_accounts=pull_accounts,
            lambda_functions=functions,
            scan_on_push=settings.scan == "basic",
            kms_key_arn=settings.kms_key_arn,
            untagged_expiry_days=settings.untagged_expiry_days,
            keep_releases=settings.keep_releases,
            keep_cache_images=settings.keep_cache_images,
        )
