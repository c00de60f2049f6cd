"""Opt-in warm builders in the cloud (#30): ``[builders]`` in platform.toml.

Every CodeBuild job starts on a fresh host, so by default a build finds only the registry cache (``cache-<arch>``
tags), which works everywhere and costs nothing while idle. A platform may instead keep builders warm:

- ``docker_server``: each amd64 build project gets a CodeBuild Docker Server of that size -- a persistent Docker
  daemon per project (``AWS::CodeBuild::Project`` ``Environment.DockerServer``). Slipway's build uses any daemon that
  answers before starting the runner image's own (:func:`pipeline.runner_image.ensure_dockerd`), and its BuildKit builder (``slipway``, docker-container driver) lives on
  that server from one build to the next, with its local cache.
- ``arm64_fleet``: arm64 builds run on a reserved-capacity fleet of that many warm hosts (``AWS::CodeBuild::Fleet``,
  ``ARM_CONTAINER``), shared by every arm64 build project of the platform; ``arm64_fleet_overflow`` says what a build
  beyond the fleet's capacity does: wait in line (``queue``) or run on-demand (``on-demand``, billed as usual).

The registry cache stays on either way: a recycled server or a new fleet host starts from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pipeline.config.values import InRange

ComputeSize = Literal["small", "medium", "large", "xlarge", "2xlarge"]
MAX_FLEET_HOSTS = 100
"""An upper bound Slipway sets itself: a fleet bills every host around the clock, so a typo (1000) should not."""


def compute_type(size: str) -> str:
    """CodeBuild's name for a size: ``medium`` -> ``BUILD_GENERAL1_MEDIUM``."""
    return f"BUILD_GENERAL1_{size.upper()}"


@dataclass(frozen=True, kw_only=True)
class Builders:
    docker_server: Literal["", ComputeSize] = ""
    """amd64 builds on a Docker Server of this size per build project; empty: off (a fresh host per build)."""
    arm64_fleet: Annotated[int, InRange(0, MAX_FLEET_HOSTS)] = 0
    """Warm arm64 hosts in a reserved-capacity fleet; 0: off (on-demand ARM_CONTAINER, a fresh host per build)."""
    arm64_fleet_compute: ComputeSize = "medium"
    arm64_fleet_overflow: Literal["queue", "on-demand"] = "on-demand"
