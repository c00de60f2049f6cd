"""What every deployer returns, and the errors they share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import SlipwayError
from pipeline.records import ImageRecord
from pipeline.references import pinned


class DeployError(SlipwayError):
    """The deploy did not happen or did not finish; the previous version is still serving."""


@dataclass(frozen=True)
class DeployRecord:
    """What was deployed where, and what it replaced: the basis for a rollback."""

    target: str
    """``lambda:<function>``, ``ecs:<cluster>/<service>``, ``eks:<cluster>/<namespace>/<deployment>``."""
    image: str
    """``repo@sha256:…`` now serving."""
    previous_image: str
    changed: bool
    """False when the target already ran this digest (nothing was touched)."""
    revision: str = ""
    """Lambda version, ECS task-definition ARN, or Kubernetes rollout revision."""
    waited: bool = False


def platform_image(record: ImageRecord, platform: str, target: str) -> str:
    """``repo@<child digest>`` for one platform: never the index (Lambda runs single-platform images only)."""
    image = record.platforms.get(platform)
    if image is None:
        raise DeployError(
            f"image {record.index_uri} lacks platform {platform} needed by {target} (has {', '.join(sorted(record.platforms))})"
        )
    if image.digest == record.index_digest:
        raise DeployError(f"{target}: refusing the index digest {image.digest}; expected the {platform} child")
    return pinned(record.repository, image.digest)


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float, what: str) -> None:
    """Poll ``check`` until it holds; ``timeout`` bounds the wait so a test (or a stuck rollout) cannot hang."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise DeployError(f"{what}: timed out after {timeout:.0f}s")
        time.sleep(interval)
