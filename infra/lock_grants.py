"""What a job may do with the lock store (:mod:`pipeline.lock_store`), granted on the parameters' own ARNs.

Lint and Build read entries; Build registers its own pipeline as a dependent (that one parameter); a base's Stitch
writes its own entry and starts the pipelines registered for it; the platform pipeline's refresh writes the upstream
entries. No job may write another base's entry, and none holds a digest in its environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam

from infra.nag import acknowledge
from pipeline import lock_store


@dataclass(frozen=True)
class LockStoreNames:
    """The parameter paths of one platform's lock store."""

    lock: str
    dependents: str

    @classmethod
    def of(cls, platform: str) -> LockStoreNames:
        return cls(lock_store.lock_path(platform), lock_store.dependents_path(platform))

    def environment(
        self, pipeline: str, publishes: str = "", *, team: str = "", lanes: int = 0
    ) -> dict[str, codebuild.BuildEnvironmentVariable]:
        """Paths, the job's pipeline name, the key a curated base publishes and the team's rebuild budget: never an
        entry."""
        budget = bool(team and lanes)  # both or neither: a lane is a team's
        values = {
            lock_store.PARAMETERS_ENV: self.lock, lock_store.DEPENDENTS_ENV: self.dependents,
            lock_store.PIPELINE_ENV: pipeline, lock_store.PUBLISHES_ENV: publishes,
            lock_store.TEAM_ENV: team if budget else "", lock_store.LANES_ENV: str(lanes) if budget else "",
        }  # fmt: skip
        return {name: codebuild.BuildEnvironmentVariable(value=value) for name, value in values.items() if value}


def _parameter(stack: Stack, name: str) -> str:
    return f"arn:{Aws.PARTITION}:ssm:{stack.region}:{stack.account}:parameter{name}"


def grant_read(role: iam.IRole, names: LockStoreNames) -> None:
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[_parameter(stack, names.lock + "*")])
    )
    acknowledge(
        role, "IAM5", "Reads the platform's base-lock entries (one parameter per base, under one path)",
        applies_to=f"Resource::arn:<AWS::Partition>:ssm:{stack.region}:{stack.account}:parameter{names.lock}*",
    )  # fmt: skip


def grant_register(role: iam.IRole, names: LockStoreNames, pipeline: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:PutParameter"], resources=[_parameter(Stack.of(role), names.dependents + pipeline)]
        )
    )


def _grant_registrations(role: iam.IRole, names: LockStoreNames) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:GetParametersByPath"], resources=[_parameter(Stack.of(role), names.dependents.rstrip("/"))]
        )
    )


def grant_continue(role: iam.IRole, names: LockStoreNames, team: str) -> None:
    """A Stitch job starts the next pipeline of its team's rebuild lane: it reads the entries and registrations, and
    starts only its own team's pipelines."""
    grant_read(role, names)
    _grant_registrations(role, names)
    grant_start_pipelines(
        role,
        f"slipway-{team}-*",
        "Starts the next of its team's pipelines waiting in a rebuild lane (slipway-<team>-*)",
    )


def grant_publish(role: iam.IRole, names: LockStoreNames, key: str, pipeline: str = "") -> None:
    """``key``: the one entry this role writes (``*``: every entry, the platform refresh's upstreams); ``pipeline``:
    the base's own, whose registration it completes with what the release was built with. It reads every entry and
    registration too: what it starts depends on them."""
    stack = Stack.of(role)
    grant_read(role, names)
    if pipeline:
        grant_register(role, names, pipeline)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:PutParameter"],
            resources=[_parameter(stack, names.lock + key)],
        )
    )
    _grant_registrations(role, names)
    # Any Slipway pipeline may build on a base; starting one runs its own reviewed definition on its branch's head.
    grant_start_pipelines(
        role, "slipway-*", "Starts the Slipway pipelines registered as building on the base it publishes"
    )


def grant_start_pipelines(role: iam.IRole, pattern: str, reason: str) -> None:
    """``codepipeline:StartPipelineExecution`` on the pipelines of this account and region named by ``pattern``
    (``slipway-*``, ``slipway-<team>-*``), acknowledged with ``reason``."""
    stack = Stack.of(role)
    where = f"codepipeline:{stack.region}:{stack.account}:{pattern}"
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["codepipeline:StartPipelineExecution"], resources=[f"arn:{Aws.PARTITION}:{where}"])
    )
    acknowledge(role, "IAM5", reason, applies_to=f"Resource::arn:<AWS::Partition>:{where}")
