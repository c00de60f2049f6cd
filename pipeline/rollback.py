"""Return a target to the digest its deploy record names as ``previous_image``, checked and verified like a deploy."""

from __future__ import annotations

from pipeline.deployers.base import Deployer, DeployError, DeployRecord, DeployTarget
from pipeline.oci import index_children
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import get_index, inspect_child


def rollback(
    deployer: Deployer,
    target: DeployTarget,
    record: DeployRecord,
    *,
    timeout: float,
    registry: RegistryClient | None = None,
) -> DeployRecord:
    if record.target != target.label:
        raise DeployError(f"rollback of {target.label}: the record is of {record.target}")
    if not record.previous_image:
        raise DeployError(f"rollback of {target.label}: the record names no previous image (the first deploy)")
    repository, _, digest = record.previous_image.partition("@")
    repo = RepositoryRef.parse(repository)
    client = registry or client_for(repo)
    platform = getattr(target, "platform", None)
    if target.kind == "lambda" and platform:
        # A single-platform child of the function's architecture, as the registry serves it.
        inspect_child(client, repo, digest, platform)
    else:
        index = get_index(client, repo, digest)
        if platform and platform not in {str(c.platform) for c in index_children(index)}:
            raise DeployError(f"rollback of {target.label}: {record.previous_image} lacks {platform}")
    return deployer.deploy_ref(record.previous_image, target, timeout=timeout)
