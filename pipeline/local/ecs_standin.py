"""ECS's UpdateService inside the AWS stand-in makes a new deployment, as ECS does.

moto 5.2.5 changes the service's task definition on ``UpdateService`` but leaves its one deployment on the old
revision, so a deploy that waits for steady state (the new revision PRIMARY, alone, ``COMPLETED``) would wait out its
timeout. Here a new task definition replaces the deployments with one PRIMARY deployment of that revision, rolled out
(the stand-in runs no tasks: what it proves is left to the replay's check of the deployed digest). So
``slipway deploy ecs`` waits for steady state in the replay with the cloud's own timeout -- no local one.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import utcnow
from moto.moto_api._internal import mock_random


def rolled_out(service: Any) -> None:
    """The service's deployments after a completed rollout of its task definition."""
    now = utcnow()
    previous = service.deployments[0] if service.deployments else {}
    service.deployments = [
        {
            **previous,
            "id": f"ecs-svc/{mock_random.randint(0, 32**12)}",
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "rolloutState": "COMPLETED",
            "rolloutStateReason": "ECS deployment completed.",
            "desiredCount": service.desired_count,
            "runningCount": service.desired_count,
            "pendingCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
        }
    ]


def install() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.update_service

    def patched(self: Any, service_properties: dict[str, Any]) -> Any:
        new_revision = service_properties.get("task_definition")
        service = original(self, service_properties)
        if new_revision:
            rolled_out(service)
        return service

    EC2ContainerServiceBackend.update_service = patched  # type: ignore[method-assign]
