"""Before a deploy job runs: does the synthesized IAM let it do what its deployer needs?

Each deployer declares what its role needs as data (``Deployer.permissions``); the replay parses the job's own
``slipway deploy`` command, asks its deployer, and evaluates every grant against the policies the template attaches to
the project's role (:mod:`pipeline.local.replay.policy`). A Lambda deploy also needs the repository policy to let
``lambda.amazonaws.com`` pull for that function (``aws:sourceArn``). A problem fails the action before it runs, with
the AccessDenied AWS would give -- what moto cannot check (see the README).
"""

from __future__ import annotations

import argparse
import functools
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import assembly
from pipeline.assembly import Project
from pipeline.config import LambdaTarget
from pipeline.deployers import DEPLOYERS, workload
from pipeline.deployers.base import Grant, PullImages
from pipeline.local.replay import policy
from pipeline.registry.base import RepositoryRef

PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


@dataclass
class Policies:
    """The assembly's identity policies by role ARN, and repository policies by repository name."""

    account: str = ""
    region: str = ""
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    trusts: dict[str, set[str]] = field(default_factory=dict)
    """Role ARN → the AWS services its trust policy lets assume it."""
    immutable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Repository name → the tag patterns excluded from its immutability (repositories with mutable tags: absent)."""
    pull_through: tuple[str, ...] = ()
    """The pull-through cache rules' repository prefixes (``docker-hub``…)."""
    replicas: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Region → repository name → the policy of a replica there (the Replicas stacks' repositories)."""
    replication: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    """The registry's replication rules: ``(destination regions, repository prefixes)``."""

    def repository_policy(self, name: str, region: str = "") -> dict[str, Any]:
        """The policy of repository ``name`` in ``region`` (default: the platform's)."""
        if region and region != self.region:
            return self.replicas.get(region, {}).get(name, {})
        return self.repositories.get(name, {})


def collect(directory: Path) -> Policies:
    found, registry = Policies(), False
    for stack in assembly.stacks(directory):
        if not registry:  # the platform's, where the registry is: the first stack with repositories (Registry)
            found.account, found.region = stack.resolve.account, stack.resolve.region
            registry = bool(stack.of_type("AWS::ECR::Repository"))
        replica = stack.resolve.region if registry and stack.resolve.region != found.region else ""
        arns = {}
        for logical, props in stack.of_type("AWS::IAM::Role").items():
            arn = str(stack.resolve({"Fn::GetAtt": [logical, "Arn"]}))
            arns[str(stack.resolve({"Ref": logical}))] = arn
            found.trusts[arn] = policy.trusted_services(props["AssumeRolePolicyDocument"])
            found.roles.setdefault(arn, []).extend(p["PolicyDocument"] for p in props.get("Policies", []))
        policies = [*stack.of_type("AWS::IAM::Policy").values(), *stack.of_type("AWS::IAM::ManagedPolicy").values()]
        for props in policies:
            for role in props.get("Roles", []):
                found.roles.setdefault(arns.get(str(role), str(role)), []).append(props["PolicyDocument"])
        for props in stack.of_type("AWS::ECR::Repository").values():
            if replica:
                found.replicas.setdefault(replica, {})[str(props["RepositoryName"])] = props["RepositoryPolicyText"]
                continue
            if "RepositoryPolicyText" in props:
                found.repositories[str(props["RepositoryName"])] = props["RepositoryPolicyText"]
            if str(props.get("ImageTagMutability", "MUTABLE")).startswith("IMMUTABLE"):
                filters = props.get("ImageTagMutabilityExclusionFilters", [])
                excluded = tuple(str(f["ImageTagMutabilityExclusionFilterValue"]) for f in filters)
                found.immutable[str(props["RepositoryName"])] = excluded
        for props in stack.of_type("AWS::ECR::ReplicationConfiguration").values():
            found.replication += tuple(
                (tuple(str(d["Region"]) for d in rule["Destinations"]),
                 tuple(str(f["Filter"]) for f in rule["RepositoryFilters"]))
                for rule in props["ReplicationConfiguration"]["Rules"]
            )  # fmt: skip
        rules = stack.of_type("AWS::ECR::PullThroughCacheRule").values()
        found.pull_through += tuple(str(props["EcrRepositoryPrefix"]) for props in rules)
    return found


def current(directory: Path) -> Policies:
    """:func:`collect` of the assembly as it is now, read once per synthesis (not once per job). Read-only."""
    return _collect_once(str(directory), (directory / "manifest.json").stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _collect_once(directory: str, stamp: int) -> Policies:
    return collect(Path(directory))


def _grant_context(grant: Grant) -> dict[str, str]:
    """The condition keys a request for this grant carries (``iam:PassedToService`` for a PassRole…)."""
    return {key: str(policy._listed(values)[0]) for keys in grant.conditions.values() for key, values in keys.items()}


def deploy_problems(policies: Policies, project: Project, variables: dict[str, str]) -> list[str]:
    """What AWS would deny the deploy job of ``project`` (empty: nothing; not a deploy job: nothing to check)."""
    problems = []
    for phase in project.buildspec.get("phases", {}).values():
        for command in phase.get("commands", []):
            argv = shlex.split(command)
            if argv[:2] != ["slipway", "deploy"] or len(argv) < 3 or argv[2] not in DEPLOYERS:
                continue
            deployer = DEPLOYERS[argv[2]]
            parser = argparse.ArgumentParser(add_help=False)
            parser.add_argument("--role-arn", default="")
            parser.add_argument("--region", default="")
            deployer.add_arguments(parser)
            args = parser.parse_known_args(argv[3:])[0]
            target = deployer.target_from_args(args)
            repository = RepositoryRef.parse(variables.get("SLIPWAY_REPOSITORY_URI", "x/x")).name
            # In another region the job reads, and Lambda pulls, the replica there (pipeline.replication).
            region = args.region or policies.region
            repository_arn = f"arn:aws:ecr:{region}:{policies.account}:repository/{repository}"
            # An environment's deploy acts as its workload role, in that account and region.
            role, account = args.role_arn or project.role, workload.account_of(args.role_arn)
            documents = policies.roles.get(role, [])
            place = {"partition": "aws", "region": args.region or policies.region,
                     "account": account or policies.account}  # fmt: skip
            for permission in deployer.permissions(target):
                if isinstance(permission, Grant):
                    wanted = [(a, r.format(**place), _grant_context(permission))
                              for a in permission.actions for r in permission.resources]  # fmt: skip
                elif isinstance(permission, PullImages):
                    wanted = [(a, repository_arn, {}) for a in PULL]
                else:
                    continue
                for action, resource, context in wanted:
                    decision = policy.evaluate(documents, policy.Request(action, resource, context=context))
                    if decision != policy.ALLOW:
                        problems.append(f"AccessDenied: {role} is not authorized to perform {action} on "
                                        f"{resource} ({decision} by the synthesized policies)")  # fmt: skip
            if isinstance(target, LambdaTarget):
                function = f"arn:aws:lambda:{place['region']}:{place['account']}:function:{target.function_name}"
                request = policy.Request("ecr:BatchGetImage", repository_arn, "service:lambda.amazonaws.com",
                                         {"aws:sourceArn": function})  # fmt: skip
                repository_policy = policies.repository_policy(repository, region)
                if policy.evaluate([repository_policy], request, resource_policy=True) != policy.ALLOW:
                    problems.append(f"AccessDenied: the policy of repository {repository} does not let "
                                    f"lambda.amazonaws.com pull for {function}")  # fmt: skip
    return problems
