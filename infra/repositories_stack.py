"""One team's ECR repositories, in stacks of their own: the registry stack holds only what is registry-wide.

At 150 repositories one registry stack was 648 KB and passed CloudFormation's 1,000,000-byte template limit near 240.
A team's repositories (its bases and services) go to ``<prefix>-Registry-<team>-<n>`` stacks, split by the same
byte and resource headroom as the pipelines (:func:`shard_repositories`); a new service or team never moves another
team's repositories -- moving would make CloudFormation create a repository that already exists. Logical IDs keep
the construct path they had in the registry stack (``Team-<team>/Service-<name>``), so a platform deployed before
the split moves its repositories with CloudFormation's stack refactoring instead of replacing them (README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.blueprint import BYTES_MARGIN, MAX_RESOURCES_PER_STACK, MAX_TEMPLATE_BYTES, fill
from infra.image_repository import ImageRepository, ImageRepositoryProps
from infra.notifications import TeamNotifications, TeamNotificationsProps
from pipeline.config import PlatformConfig, Service, Team
from pipeline.naming import base_repository_name, partition_for, service_repository_name
from pipeline.replication import replica_regions

# Bytes one repository adds to its template (measured on the example: 3.3-3.7 KB with its push-deny statement and the
# lifecycle rules); each pulling account adds an ARN; the Lambda statement, when a function runs the image, its frame
# and two ARNs a function.
BYTES_PER_REPOSITORY = 3_500
BYTES_PER_PULL_ACCOUNT = 150
BYTES_LAMBDA_STATEMENT = 500
BYTES_PER_FUNCTION = 350
REPOSITORIES_STACK_BYTES = 1_500  # the template's own frame: parameters, rules, metadata
# A team's notifications (infra.notifications, in its first stack): the topic, its policy and the failure rule
# (measured on the example: 2.0 KB with five pipelines; a channel 0.8 KB), each pipeline the rule names, and a Chatbot channel with its role.
NOTIFICATIONS_BYTES = 2_200
BYTES_PER_TOLD_PIPELINE = 60
CHATBOT_BYTES = 1_200


@dataclass(frozen=True)
class PlannedRepository:
    """``id``: the construct id under the team's scope (``Service-<name>``, ``Base-<name>``), pinned: logical IDs."""

    id: str
    props: ImageRepositoryProps

    @property
    def estimated_bytes(self) -> int:
        made = BYTES_PER_REPOSITORY + BYTES_PER_PULL_ACCOUNT * len(self.props.pull_accounts)
        functions = self.props.lambda_functions
        made += (BYTES_LAMBDA_STATEMENT + BYTES_PER_FUNCTION * len(functions)) if functions else 0
        return int(made * BYTES_MARGIN)


def shard_repositories(
    planned: Sequence[PlannedRepository],
    byte_limit: int = MAX_TEMPLATE_BYTES,
    limit: int = MAX_RESOURCES_PER_STACK,
    *,
    reserved: int = 0,
) -> list[list[PlannedRepository]]:
    """One team's repositories in config order, split where a stack would pass ``byte_limit`` estimated bytes or
    ``limit`` resources (one each); ``reserved`` bytes are kept free in each (the first holds the notifications)."""

    def fits(group: list[PlannedRepository]) -> bool:
        return estimate_repositories(group) + reserved <= byte_limit and len(group) + 6 * bool(reserved) <= limit

    return fill(planned, fits)


def estimate_repositories(group: Sequence[PlannedRepository], told: TeamNotificationsProps | None = None) -> int:
    """Template bytes of the stack holding ``group`` (and ``told``: the team's notifications), never undercounted."""
    return REPOSITORIES_STACK_BYTES + notifications_bytes(told) + sum(r.estimated_bytes for r in group)


def notifications_bytes(told: TeamNotificationsProps | None) -> int:
    if told is None:
        return 0
    made = NOTIFICATIONS_BYTES + BYTES_PER_TOLD_PIPELINE * len(told.pipelines)
    return int((made + CHATBOT_BYTES * bool(told.slack_channel_id)) * BYTES_MARGIN)


class RepositoriesStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, team: str, repositories: Sequence[PlannedRepository],
        notifications: TeamNotificationsProps | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """``notifications``: the team's topic and failure rule live in its first repositories stack (every team with
        a pipeline has one, and it is deployed before any of them)."""
        super().__init__(scope, id, **kwargs)
        team_scope = Construct(self, f"Team-{team}")
        self.repositories = {r.props.repository_name: ImageRepository(team_scope, r.id, r.props) for r in repositories}
        if notifications is not None:
            TeamNotifications(team_scope, "Notifications", notifications)


def planned_repositories(config: PlatformConfig, team: Team) -> list[PlannedRepository]:
    """The team's repositories, bases first, each with its pinned construct id."""
    bases = [
        PlannedRepository(
            f"Base-{base.name}", repository_props(config, team, base_repository_name(team.name, base.name))
        )
        for base in team.base_images
    ]
    return bases + planned_services(config, team, config.platform.region)


def planned_services(config: PlatformConfig, team: Team, region: str) -> list[PlannedRepository]:
    """The repositories of the team's services in ``region``: the platform's own, or their replicas in an
    environment's region (:mod:`pipeline.replication`) -- only services with an environment there."""
    home = region == config.platform.region
    return [
        PlannedRepository(
            f"Service-{service.name}",
            repository_props(config, team, service_repository_name(team.name, service.name), service, region),
        )
        for service in team.services
        if home or region in replica_regions(config.platform.region, service)
    ]


def repository_props(
    config: PlatformConfig, team: Team, name: str, service: Service | None = None, region: str = ""
) -> ImageRepositoryProps:
    """A service's repository in ``region`` (default: the platform's) is pulled by exactly the accounts that deploy
    it there (the platform's own always can), and by Lambda for exactly its functions there -- none when it has no
    Lambda target there; a curated base by the team's workload accounts, and by no Lambda function (a function runs a
    service's image, never a base). A replica is encrypted with the AWS managed key when the platform's repositories
    use a customer key: that key lives in the platform's region."""
    settings = config.registry
    region = region or config.platform.region
    home = region == config.platform.region
    functions: tuple[str, ...] = ()
    if service is None:
        pull_accounts = team.workload_accounts
    else:
        environments = [e for e in service.environments if (e.region or config.platform.region) == region]
        pull_accounts = tuple(dict.fromkeys(e.account for e in environments if e.account != config.platform.account))
        places = [(config.platform.account, service.deploy.lambda_)] if home else []
        places += [(e.account, e.lambda_) for e in environments]
        functions = tuple(
            f"arn:{partition_for(region)}:lambda:{region}:{account}:function:{target.function_name}"
            for account, target in places
            if target is not None
        )
    return ImageRepositoryProps(
        repository_name=name,
        team=team.name,
        pull_accounts=pull_accounts,
        lambda_functions=functions,
        scan_on_push=settings.scan == "basic",
        kms_key_arn=settings.kms_key_arn if home else "",
        kms_managed=bool(settings.kms_key_arn) and not home,
        untagged_expiry_days=settings.untagged_expiry_days,
        keep_releases=settings.keep_releases,
        keep_cache_images=settings.keep_cache_images,
    )
