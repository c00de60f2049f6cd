"""Deployers: one interface (:class:`pipeline.deployers.base.Deployer`), a module per target kind.

``DEPLOYERS`` is the registration: a new target kind is its module plus one entry here (and its typed target in the
config model). The CLI, the pipeline model, the CDK rendering and local mode find deployers only through it.
"""

from __future__ import annotations

from pipeline.deployers.base import Deployer, DeployError, DeployRecord, DeployTarget
from pipeline.deployers.ecs import EcsDeployer
from pipeline.deployers.eks import EksDeployer
from pipeline.deployers.lambda_ import LambdaDeployer

DEPLOYERS: dict[str, type[Deployer]] = {
    LambdaDeployer.kind: LambdaDeployer,
    EcsDeployer.kind: EcsDeployer,
    EksDeployer.kind: EksDeployer,
}


def deployer_for(kind: str) -> type[Deployer]:
    try:
        return DEPLOYERS[kind]
    except KeyError:
        raise DeployError(f"deploy target kind {kind!r}: expected one of {', '.join(DEPLOYERS)}") from None


__all__ = ["DEPLOYERS", "DeployError", "DeployRecord", "DeployTarget", "Deployer", "deployer_for"]
