"""Opt-in warm builders (``[builders]``, :mod:`pipeline.config.builders`): a Docker Server per amd64 build project,
and one reserved-capacity fleet for every arm64 build of the platform.

The fleet lives in the registry stack (platform-wide; every pipelines stack already deploys after it) with its ARN in
an SSM parameter. Build projects name it through a CloudFormation dynamic reference to that parameter, as the
pipelines stacks reach repositories by name: a shard of 500 services never imports an export, so turning the fleet
off or moving a service between shards updates the stacks instead of failing on an export in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.validation import check_range, raise_if_any
from pipeline.config import PlatformConfig
from pipeline.config.builders import MAX_FLEET_HOSTS, compute_type
from pipeline.naming import arm64_fleet_name, arm64_fleet_parameter

_OVERFLOW = {"queue": codebuild.FleetOverflowBehavior.QUEUE, "on-demand": codebuild.FleetOverflowBehavior.ON_DEMAND}
_FLEET_COMPUTE = {
    "small": codebuild.FleetComputeType.SMALL, "medium": codebuild.FleetComputeType.MEDIUM,
    "large": codebuild.FleetComputeType.LARGE, "xlarge": codebuild.FleetComputeType.X_LARGE,
    "2xlarge": codebuild.FleetComputeType.X2_LARGE,
}  # fmt: skip


@dataclass(frozen=True)
class WarmBuilders:
    """What a build project takes of the platform's warm builders. Empty fields: off."""

    docker_server: str = ""
    """CodeBuild compute type of each amd64 build project's Docker Server (``BUILD_GENERAL1_MEDIUM``)."""
    fleet_arn: str = ""
    """The arm64 fleet's ARN as a dynamic reference (``{{resolve:ssm:…}}``)."""
    fleet_compute: str = ""

    @classmethod
    def of(cls, config: PlatformConfig) -> WarmBuilders:
        settings = config.builders
        fleet = settings.arm64_fleet > 0
        return cls(
            docker_server=compute_type(settings.docker_server) if settings.docker_server else "",
            fleet_arn=f"{{{{resolve:ssm:{arm64_fleet_parameter(config.platform.name)}}}}}" if fleet else "",
            fleet_compute=compute_type(settings.arm64_fleet_compute) if fleet else "",
        )

    def apply(self, project: codebuild.CfnProject, runner: str) -> None:
        """Put an image-building project (privileged) on its architecture's warm builder, if the platform has one."""
        if runner == "x86" and self.docker_server:
            project.add_property_override("Environment.DockerServer", {"ComputeType": self.docker_server})
        if runner == "arm" and self.fleet_arn:
            # A fleet's project runs on the fleet's hosts: its compute type is the fleet's.
            project.add_property_override("Environment.Fleet", {"FleetArn": self.fleet_arn})
            project.add_property_override("Environment.ComputeType", self.fleet_compute)


@dataclass(frozen=True, kw_only=True)
class Arm64FleetProps:
    platform: str
    hosts: int
    compute: str = "medium"
    overflow: str = "on-demand"

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_range(problems, "hosts", self.hosts, 1, MAX_FLEET_HOSTS)
        if self.compute not in _FLEET_COMPUTE:
            problems.append(f"compute: expected one of {', '.join(_FLEET_COMPUTE)}, got {self.compute!r}")
        if self.overflow not in _OVERFLOW:
            problems.append(f"overflow: expected one of {', '.join(_OVERFLOW)}, got {self.overflow!r}")
        raise_if_any("Arm64FleetProps", problems)


class Arm64Fleet(Construct):
    """The platform's reserved-capacity ``ARM_CONTAINER`` fleet and the SSM parameter build projects find it by."""

    def __init__(self, scope: Construct, id: str, props: Arm64FleetProps) -> None:
        super().__init__(scope, id)
        self.fleet = codebuild.Fleet(
            self, "Fleet", fleet_name=arm64_fleet_name(props.platform), base_capacity=props.hosts,
            compute_type=_FLEET_COMPUTE[props.compute], environment_type=codebuild.EnvironmentType.ARM_CONTAINER,
            overflow_behavior=_OVERFLOW[props.overflow],
        )  # fmt: skip
        ssm.StringParameter(
            self, "Arn", parameter_name=arm64_fleet_parameter(props.platform), string_value=self.fleet.fleet_arn,
            description="Slipway's arm64 build fleet: arm64 build projects name it through this parameter",
        )  # fmt: skip
