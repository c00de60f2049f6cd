"""The platform deploying itself: what the platform pipeline's Deploy action does (``slipway platform deploy``).

CDK Pipelines calls it self-mutation. The checkout -- the platform repository at the pushed commit: platform.toml,
images/, lambda_base/, Slipway's own code -- is synthesized; every stack is deployed as ``cdk deploy --all`` deploys
it, through the bootstrap roles of each stack's account (a workload account trusts the platform's through ``cdk
bootstrap --trust``); then each pipeline whose definition changed is started, because CloudFormation's update of a
pipeline starts nothing. A new pipeline needs no start: CodePipeline starts it when it is created.

A pipeline's *definition* is what CodePipeline runs (its stages, actions, triggers, schedule) and what its CodeBuild
projects run (buildspec, image, environment, role), read from the deployed templates before and from the new ones --
with one thing left out: the image a project runs in (Slipway's runner, by digest). A new runner alone would otherwise
rebuild every service at once (500 pipelines for a change to a log line); it reaches each pipeline at its next run
instead, as CodeBuild starts each build in the project's current image.

The stacks are deployed by a backend (one interface, a module per backend): :class:`pipeline.cdk_cli.CdkCli` in
the cloud (the CDK CLI and CloudFormation), the replay's CloudFormation stand-in locally
(:mod:`pipeline.local.cloudformation_standin`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline import assembly
from pipeline.config import PlatformConfig

BOOTSTRAP_QUALIFIER = "hnb659fds"
"""``cdk bootstrap``'s default qualifier: the bootstrap roles are ``cdk-<qualifier>-<kind>-role-<account>-<region>``."""
BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")


def bootstrap_role(kind: str, account: str, region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-{kind}-role-{account}-{region}"


def environments(config: PlatformConfig) -> list[tuple[str, str]]:
    """``(account, region)`` of every place the platform's stacks deploy to: each needs ``cdk bootstrap`` (a
    workload account with ``--trust`` of the platform's), and the platform's deploy job may assume its roles."""
    found = [(config.platform.account, config.platform.region)]
    for _, service in config.services():
        for environment in service.environments:
            region = environment.region or config.platform.region
            # Another region also holds the platform account's replica of the service's repository.
            places = [(environment.account, region)] + [(config.platform.account, region)] * (
                region != config.platform.region
            )
            found.extend(p for p in places if p not in found)
    return found


class Stacks(Protocol):
    """Where the stacks live: the templates deployed now, and the deployment of an assembly."""

    def deployed(self, assembly_dir: Path, into: Path) -> Path:
        """An assembly directory holding the deployed template of each of ``assembly_dir``'s stacks (an empty one
        for a stack not deployed yet); ``into``: a scratch directory the backend may write it in."""
        ...

    def deploy(self, assembly_dir: Path) -> None:
        """Every stack of the assembly, in dependency order, as ``cdk deploy --all`` does; raises on a failure."""
        ...


@dataclass(frozen=True)
class Outcome:
    started: tuple[str, ...]
    """Pipelines whose definition changed: started by this deploy."""
    created: tuple[str, ...]
    """New pipelines: CodePipeline starts each when it creates it."""
    unchanged: tuple[str, ...]

    def json(self) -> dict[str, Any]:
        return {"started": list(self.started), "created": list(self.created), "unchanged": list(self.unchanged)}


def _masked(properties: dict[str, Any]) -> dict[str, Any]:
    return {**properties, "Environment": {**properties.get("Environment", {}), "Image": "<runner>"}}


def definitions(directory: Path) -> dict[str, str]:
    """``{pipeline name: fingerprint}`` of every pipeline in the assembly at ``directory`` (none: no manifest)."""
    if not (directory / "manifest.json").exists():
        return {}
    found = {}
    for stack in assembly.stacks(directory):
        projects = stack.of_type("AWS::CodeBuild::Project")
        by_name = {str(stack.resolve({"Ref": logical})): props for logical, props in projects.items()}
        pipelines = {p.name: p for p in assembly.load_stack(stack)}
        for properties in stack.of_type("AWS::CodePipeline::Pipeline").values():
            name = str(properties.get("Name", ""))
            pipeline = pipelines[name]
            used = sorted(
                {str(a.configuration["ProjectName"]) for _, a in pipeline.actions() if a.provider == "CodeBuild"}
            )
            body = {
                "pipeline": properties,
                "schedules": list(pipeline.schedules),
                "projects": {project: _masked(by_name.get(project, {})) for project in used},
            }
            found[name] = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return found


def compare(before: dict[str, str], after: dict[str, str]) -> Outcome:
    return Outcome(
        started=tuple(sorted(n for n in after if n in before and before[n] != after[n])),
        created=tuple(sorted(n for n in after if n not in before)),
        unchanged=tuple(sorted(n for n in after if before.get(n) == after[n])),
    )


def deploy(assembly_dir: Path, stacks: Stacks, codepipeline: Any, scratch: Path) -> Outcome:
    """Deploy the assembly and start each pipeline whose definition changed. A start carries the new definition's
    fingerprint as its token: a retried deploy (the same assembly) starts nothing twice."""
    after = definitions(assembly_dir)
    outcome = compare(definitions(stacks.deployed(assembly_dir, scratch)), after)
    stacks.deploy(assembly_dir)
    for name in outcome.started:
        codepipeline.start_pipeline_execution(name=name, clientRequestToken=f"definition-{after[name][:40]}")
    return outcome
