"""Repository names: one rule, used by the CDK app, local mode and the lock alike."""

from __future__ import annotations

from pipeline import partitions


def service_repository_name(team: str, service: str) -> str:
    """``<team>/<service>``: where a service's releases (and its registry cache) live."""
    return f"{team}/{service}"


def base_repository_name(team: str, base: str) -> str:
    """``<team>/bases/<name>``: a curated base image; SW001 allows ``<team>/bases/`` as a base-image prefix."""
    return f"{team}/bases/{base}"


CURATED_BASES = "*/bases/*"
"""Every team's curated base repositories (:func:`base_repository_name`): a service's repository, ``<team>/<service>``,
has one ``/`` and never matches."""


def base_prefix(team: str) -> str:
    return f"{team}/bases"


def deploy_role_path(team: str, environment: str = "") -> str:
    """IAM path of the platform-account role that deploys ``team``'s services to ``environment`` (none: the
    platform account's own targets): a workload role trusts exactly the roles under it (``aws:PrincipalArn``)."""
    return f"/slipway/deploy/{team}/{environment}/" if environment else f"/slipway/deploy/{team}/"


def job_project_name(team: str, pipeline: str, job: str) -> str:
    """``slipway_<team>_<pipeline>_<job>``: a team's shared roles reach its CodeBuild projects (and their log
    groups) by the prefix :func:`team_projects` alone. Team names hold no ``_``, so one team's prefix never matches
    another team's projects (``payments`` against ``payments-eu``)."""
    return f"slipway_{team}_{pipeline}_{job}"


def team_projects(team: str) -> str:
    """The name pattern of every CodeBuild project of ``team``'s pipelines (:func:`job_project_name`)."""
    return f"slipway_{team}_*"


def workload_role_name(team: str, service: str, environment: str) -> str:
    """The role in a workload account that a service's deploys to ``environment`` assume."""
    return _role_name(f"slipway-deploy-{team}-{service}-{environment}")


def gate_role_name(team: str, environment: str) -> str:
    """The role in a workload account that the team's pipelines read ``environment``'s alarms with, before the next
    environment's stage starts (its entry condition, :mod:`infra.stage_gates`): one per team, not per service."""
    return _role_name(f"slipway-gate-{team}-{environment}")


def _role_name(name: str) -> str:
    """IAM names stop at 64 characters: a longer one keeps its start and gets a stable hash of the whole."""
    import hashlib

    if len(name) <= 64:
        return name
    return f"{name[:55]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def partition_for(region: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-eusc``…): ARNs in buildspecs stay
    literal."""
    return partitions.partition_for(region)


STITCH_ROLES = "/slipway/build/{team}/stitch/"
"""IAM path of a team's Stitch roles: under the team's build path (they push its releases), and the only roles the
platform's release key lets sign (:mod:`infra.release_key`)."""


def release_key_alias(platform: str) -> str:
    """The release key's alias: what jobs name it by (``kms:RequestAlias`` is what their policies allow)."""
    return f"alias/slipway-{platform.lower()}-releases"


def release_key_arn(platform: str, account: str, region: str) -> str:
    return f"arn:{partition_for(region)}:kms:{region}:{account}:{release_key_alias(platform)}"


def arm64_fleet_name(platform: str) -> str:
    """The platform's reserved-capacity fleet for arm64 builds (``[builders] arm64_fleet``)."""
    return f"slipway-{platform}-arm64"


def arm64_fleet_parameter(platform: str) -> str:
    """The SSM parameter holding that fleet's ARN: build projects in every pipelines stack read it when CloudFormation
    deploys them (a dynamic reference), so no export ties those stacks to the registry stack that owns the fleet."""
    return f"/slipway/{platform}/fleets/arm64"
