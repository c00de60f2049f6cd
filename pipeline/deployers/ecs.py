"""Deploy to Amazon ECS: a task-definition revision that differs only in one container's image (the index digest).

The service is updated with the deployment circuit breaker and rollback on, then watched for steady state within a
bound. On a timeout the error says so; the circuit breaker (not this step) rolls the service back.
"""

from __future__ import annotations

import argparse
import math
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, ClassVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config.model import EcsTarget
from pipeline.config.strategy import Strategy
from pipeline.deployers import shift
from pipeline.deployers.base import DeployError, DeployRecord, Grant, Permission, Serving, Verification, wait_until
from pipeline.platforms import platform_for_ecs_cpu
from pipeline.records import ImageRecord

PREVIOUS_TAG = "slipway:previous-image"
IMAGE_TAG = "slipway:image"  # on a revision a deploy registered: what Slipway put there (``slipway status``)
VERIFIED_TAG = "slipway:verified"  # on the service: what proved the last deployed image answers
HEALTH_SECONDS = 120.0


def http_status(url: str) -> int:
    """The HTTP status ``url`` answers with (0 when nothing answers, or for anything but an http(s) URL)."""
    if not url.startswith(("http://", "https://")):
        return 0
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status or 0)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


# Keys of describe_task_definition's output that register_task_definition accepts back.
_REGISTERABLE = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform",
)  # fmt: skip


class EcsDeployer:
    kind: ClassVar[str] = EcsTarget.kind
    help: ClassVar[str] = "a new task-definition revision with the index digest"

    def __init__(self, client: Any = None, *, poll_seconds: float = 5.0) -> None:
        self._ecs = client or boto3.Session().client("ecs")
        self._poll = poll_seconds

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> EcsDeployer:
        return cls(session.client("ecs"))

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--service", required=True)
        parser.add_argument("--container", required=True)
        parser.add_argument(
            "--task-role", action="append", default=[], help="an IAM role the task definition may pass (repeatable)"
        )
        parser.add_argument("--health-url", default="", help="GET after steady state; not 200 rolls back")
        parser.add_argument("--health-path", default="", help="the image's own health path (the local replay GETs it)")
        shift.add_arguments(parser)

    @staticmethod
    def target_from_args(args: argparse.Namespace) -> EcsTarget:
        return EcsTarget(
            cluster=args.cluster, service=args.service, container=args.container, task_roles=tuple(args.task_role),
            health_url=args.health_url, health_path=args.health_path, strategy=shift.from_args(args),
        )  # fmt: skip

    @staticmethod
    def permissions(target: EcsTarget) -> Sequence[Permission]:
        service_arn = f"arn:{{partition}}:ecs:{{region}}:{{account}}:service/{target.cluster}/{target.service}"
        grants = [
            # TagResource: the verification mark, on the service the role already updates.
            Grant(("ecs:DescribeServices", "ecs:UpdateService", "ecs:TagResource"), (service_arn,)),
            # Tags on the new revision carry the rollback target (ECS authorizes tag-on-create as TagResource).
            Grant(
                ("ecs:TagResource",),
                ("arn:{partition}:ecs:{region}:{account}:task-definition/*",),
                {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
                reason="Task-definition revisions are numbered at registration; only tag-on-create is allowed",
            ),
            # RegisterTaskDefinition and DescribeTaskDefinition have no resource-level permissions in IAM.
            Grant(
                ("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"),
                ("*",),
                reason="ecs:RegisterTaskDefinition and DescribeTaskDefinition have no resource-level permission in IAM",
            ),
        ]
        if target.task_roles:  # exactly the task's own roles, and only to ECS tasks
            roles = tuple(f"arn:{{partition}}:iam::{{account}}:role/{role}" for role in target.task_roles)
            condition = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
            grants.append(Grant(("iam:PassRole",), roles, condition))
        return grants

    def deploy(self, record: ImageRecord, target: EcsTarget, *, timeout: float = 600) -> DeployRecord:
        """The index: ECS pulls the child of the task's architecture (which the release must have)."""
        return self._deploy(record.index_uri, target, timeout, set(record.platforms), record.index_uri)

    def deploy_ref(self, image: str, target: EcsTarget, *, timeout: float = 600) -> DeployRecord:
        """An index digest already checked against the registry (a rollback)."""
        return self._deploy(image, target, timeout, None, image)

    def _deploy(
        self, image: str, target: EcsTarget, timeout: float, platforms: set[str] | None, shown: str
    ) -> DeployRecord:
        cluster, service, container = target.cluster, target.service, target.container
        label = target.label
        target_name = f"ECS service {cluster}/{service}"
        current = self._service(cluster, service, target_name)
        try:
            described = self._ecs.describe_task_definition(taskDefinition=current["taskDefinition"])
        except ClientError as exc:
            raise DeployError(
                f"{target_name}: cannot read task definition {current['taskDefinition']} ({_error(exc)}); nothing "
                "was changed"
            ) from exc
        definition = described["taskDefinition"]
        containers = definition["containerDefinitions"]
        named = [c for c in containers if c["name"] == container]
        if not named:
            raise DeployError(
                f"{target_name}: task definition has no container {container!r} (has {[c['name'] for c in containers]})"
            )
        architecture = (definition.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")
        platform = platform_for_ecs_cpu(architecture)
        if platforms is not None and platform not in platforms:
            raise DeployError(
                f"{target_name}: runtimePlatform.cpuArchitecture {architecture} needs {platform}, "
                f"which image {shown} lacks (has {', '.join(sorted(platforms))})"
            )
        passed = sorted(
            {definition[key].rsplit("/", 1)[-1] for key in ("taskRoleArn", "executionRoleArn") if definition.get(key)}
        )
        if unlisted := [role for role in passed if role not in target.task_roles]:
            raise DeployError(
                f"{target_name}: the task definition passes role(s) {', '.join(unlisted)}, which ecs.task_roles does "
                "not list (the deploy role may pass only those); add them to platform.toml"
            )
        previous = named[0]["image"]
        current_revision = definition["taskDefinitionArn"]
        if previous == image:
            return self._finish_in_flight(target, current_revision, image, timeout)
        revision = {key: definition[key] for key in _REGISTERABLE if key in definition}
        revision["containerDefinitions"] = [{**c, "image": image} if c["name"] == container else c for c in containers]
        # The rollback target travels with the new revision (a CodeBuild retry starts from a clean workspace).
        revision["tags"] = [{"key": PREVIOUS_TAG, "value": previous}, {"key": IMAGE_TAG, "value": image}]
        try:
            registered = self._ecs.register_task_definition(**revision)["taskDefinition"]["taskDefinitionArn"]
        except ClientError as exc:
            raise DeployError(f"{target_name}: {_error(exc)}; nothing was changed ({current_revision} serves)") from exc
        try:
            self._ecs.update_service(
                cluster=cluster,
                service=service,
                taskDefinition=registered,
                deploymentConfiguration=deployment_configuration(target.strategy),
            )
        except (ClientError, BotoCoreError) as exc:
            # The answer may be lost after the change was made: what the service names now decides, read back.
            why = _error(exc) if isinstance(exc, ClientError) else str(exc)
            if self._live_revision(cluster, service) != registered:
                raise DeployError(
                    f"{target_name}: UpdateService failed ({why}); {self._live(cluster, service, target_name)}"
                ) from exc
        verified = None
        if timeout > 0:
            try:
                wait_until(
                    lambda: self._steady(cluster, service, registered, target_name),
                    timeout=timeout + target.strategy.seconds,
                    interval=self._poll,
                    what=f"{target_name}: waiting for steady state on {registered} (the circuit breaker rolls back a failed rollout)",
                )
            except DeployError as exc:
                if target.strategy.kind == "all-at-once" or "rolled back" not in str(exc):
                    raise
                # ECS's own canary or linear deployment rolled back (an alarm, or the circuit breaker)
                stopped = shift.Shift(target.strategy.kind, (), shift.ROLLED_BACK, f"ECS rolled {registered} back")
                rolled = shift.RolledBackError(f"{exc}; ECS's {target.strategy.kind} deployment rolled back", stopped)
                rolled.record = DeployRecord(label, previous, previous, changed=False, revision=current_revision,
                                             strategy=stopped.json())  # fmt: skip
                raise rolled from exc
            verified = Verification(True, "steady", 0)
            if target.health_url:
                verified = self._health(target, registered, current_revision, timeout)
        moved = None if target.strategy == Strategy() else shift.Shift(
            target.strategy.kind, tuple(shift.Step(p, s) for p, s in target.strategy.steps())).json()  # fmt: skip
        return DeployRecord(label, image, previous, changed=True, revision=registered, waited=timeout > 0,
                            verified=verified, strategy=moved)  # fmt: skip

    def _health(self, target: EcsTarget, revision: str, previous_revision: str, timeout: float) -> Verification:
        """After steady state, the service's own health URL must answer 200; otherwise the service goes back to the
        previous revision and the deploy fails saying so."""
        name = f"ECS service {target.cluster}/{target.service}"
        status = 0
        deadline = time.monotonic() + min(timeout, HEALTH_SECONDS)
        while time.monotonic() < deadline:
            status = http_status(target.health_url)
            if status == 200:
                return Verification(True, f"GET {target.health_url}", status)
            time.sleep(self._poll)
        unhealthy = f"{name}: {revision} is steady but GET {target.health_url} answered {status or 'nothing'}"
        try:
            self._ecs.update_service(cluster=target.cluster, service=target.service, taskDefinition=previous_revision)
        except (ClientError, BotoCoreError) as exc:
            why = _error(exc) if isinstance(exc, ClientError) else str(exc)
            raise DeployError(
                f"{unhealthy}; switching back to {previous_revision} failed ({why}); "
                f"{self._live(target.cluster, target.service, name)}: roll back by hand or run the deploy again"
            ) from exc
        raise DeployError(f"{unhealthy}; the service is back on {previous_revision}")

    def _live_revision(self, cluster: str, service: str) -> str | None:
        """The task definition the service names now, or None when it cannot be read."""
        try:
            services = self._ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
        except (ClientError, BotoCoreError):
            return None
        return str(services[0].get("taskDefinition", "")) if services else None

    def _live(self, cluster: str, service: str, name: str) -> str:
        """What serves now, read back from the service (never assumed)."""
        revision = self._live_revision(cluster, service)
        if revision is None:
            return f"what {name} runs now could not be read back; run the deploy again to find out and finish"
        return f"the service names {revision} now"

    def _finish_in_flight(self, target: EcsTarget, revision: str, image: str, timeout: float) -> DeployRecord:
        """The service already runs a revision with this image: a retry judges its deployment (waiting for it when
        it is still rolling out) instead of reporting "nothing changed" over a rollout nobody watched."""
        name = f"ECS service {target.cluster}/{target.service}"
        try:
            described = self._ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
        except ClientError as exc:
            raise DeployError(f"{name}: cannot read task definition {revision} ({_error(exc)})") from exc
        previous = next((t["value"] for t in described.get("tags", []) if t.get("key") == PREVIOUS_TAG), "")
        deployments = self._service(target.cluster, target.service, name).get("deployments", [])
        _refuse_failed(deployments, revision, name)
        primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
        in_flight = primary.get("rolloutState") == "IN_PROGRESS" or len(deployments) > 1
        if in_flight and timeout > 0:
            wait_until(
                lambda: self._steady(target.cluster, target.service, revision, name),
                timeout=timeout + target.strategy.seconds,
                interval=self._poll,
                what=f"{name}: waiting for steady state on {revision} (a retry finishing the deploy)",
            )
        return DeployRecord(
            target.label, image, previous, changed=in_flight, revision=revision, waited=in_flight and timeout > 0
        )

    def serving(self, target: EcsTarget) -> Serving:
        """The container's image in the service's task definition, and the image Slipway tagged that revision with
        when its deploy registered it (none: the revision was registered another way)."""
        name = f"ECS service {target.cluster}/{target.service}"
        service = self._service(target.cluster, target.service, name, tags=True)
        revision = str(service["taskDefinition"])
        try:
            described = self._ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
        except ClientError as exc:
            raise DeployError(f"{name}: cannot read task definition {revision} ({_error(exc)})") from exc
        definition = described["taskDefinition"]
        image = next((c["image"] for c in definition["containerDefinitions"] if c["name"] == target.container), "")
        tags = {t.get("key"): t.get("value", "") for t in described.get("tags", [])}
        marks = {t.get("key"): t.get("value", "") for t in service.get("tags", [])}
        return Serving(str(image), str(tags.get(IMAGE_TAG, "")), revision, str(definition.get("registeredAt", "")),
                       verified=str(marks.get(VERIFIED_TAG, "")))  # fmt: skip

    def record_verified(self, target: EcsTarget, image: str, verified: str) -> None:
        arn = self._service(target.cluster, target.service, f"ECS service {target.cluster}/{target.service}")
        self._ecs.tag_resource(resourceArn=arn["serviceArn"], tags=[{"key": VERIFIED_TAG, "value": verified}])

    def _service(self, cluster: str, service: str, target: str, *, tags: bool = False) -> dict[str, Any]:
        try:
            tagged = {"include": ["TAGS"]} if tags else {}
            response = self._ecs.describe_services(cluster=cluster, services=[service], **tagged)
        except ClientError as exc:
            raise DeployError(f"{target}: {exc.response['Error']['Code']}: {exc.response['Error']['Message']}") from exc
        services = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            raise DeployError(f"{target}: service not found")
        return dict(services[0])

    def _steady(self, cluster: str, service: str, revision: str, target: str) -> bool:
        deployments = self._service(cluster, service, target).get("deployments", [])
        _refuse_failed(deployments, revision, target)
        primary = [d for d in deployments if d.get("status") == "PRIMARY"]
        if not primary or primary[0].get("taskDefinition") != revision:
            return False
        return len(deployments) == 1 and primary[0].get("rolloutState") in (None, "COMPLETED")


def deployment_configuration(strategy: Strategy) -> dict[str, Any]:
    """The service's deployment configuration: the circuit breaker always; ECS's own ``CANARY`` or ``LINEAR``
    strategy (ECS shifts the traffic between its target groups, bakes, and rolls back on an alarm) when asked, else
    ``ROLLING`` (so a strategy turned off is off). ECS counts its bakes in whole minutes."""
    breaker: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    if strategy.kind == "all-at-once":
        return {**breaker, "strategy": "ROLLING"}
    minutes = math.ceil((strategy.bake_seconds if strategy.kind == "canary" else strategy.interval_seconds) / 60)
    shape = (
        {"canaryConfiguration": {"canaryPercent": float(strategy.percent), "canaryBakeTimeInMinutes": minutes}}
        if strategy.kind == "canary"
        else {"linearConfiguration": {"stepPercent": float(strategy.step_percent), "stepBakeTimeInMinutes": minutes}}
    )
    alarms = (
        {"alarms": {"alarmNames": list(strategy.alarms), "enable": True, "rollback": True}} if strategy.alarms else {}
    )
    return {**breaker, "strategy": strategy.kind.upper(), **shape, "bakeTimeInMinutes": minutes, **alarms}


def _error(exc: ClientError) -> str:
    return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"


def _refuse_failed(deployments: list[dict[str, Any]], revision: str, target: str) -> None:
    """A deployment of ``revision`` that failed ends the deploy. The circuit breaker's rollback makes a new PRIMARY of
    the last completed revision and leaves the failed deployment listed as ACTIVE/FAILED; with nothing to go back to,
    the PRIMARY itself is FAILED."""
    if any(d.get("taskDefinition") == revision and d.get("rolloutState") == "FAILED" for d in deployments):
        raise DeployError(f"{target}: rollout of {revision} failed; the circuit breaker rolled back")
