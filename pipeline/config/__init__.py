"""The platform model (``model``), its loader (``loader``) and cross-value rules (``checks``)."""

from __future__ import annotations

from pipeline.config.error import ConfigError
from pipeline.config.loader import load, parse
from pipeline.config.model import (
    PLATFORMS,
    PULL_THROUGH_SECRET_PREFIX,
    UPSTREAM_REGISTRIES,
    BaseImage,
    BuildSecret,
    DeployTargets,
    EcsTarget,
    EksTarget,
    Environment,
    LambdaArchitecture,
    LambdaTarget,
    Notifications,
    Platform,
    PlatformConfig,
    PlatformSettings,
    RegistrySettings,
    Service,
    Team,
    Upstream,
)

__all__ = [
    "PLATFORMS",
    "PULL_THROUGH_SECRET_PREFIX",
    "UPSTREAM_REGISTRIES",
    "BaseImage",
    "BuildSecret",
    "ConfigError",
    "DeployTargets",
    "EcsTarget",
    "EksTarget",
    "Environment",
    "LambdaArchitecture",
    "LambdaTarget",
    "Notifications",
    "Platform",
    "PlatformConfig",
    "PlatformSettings",
    "RegistrySettings",
    "Service",
    "Team",
    "Upstream",
    "load",
    "parse",
]
