"""What a deploy role may do: rendered from what the target's deployer declares (``Deployer.permissions``).

One renderer for both places a deploy role lives: the platform account (a service without environments) and a
workload account (``infra.workload_stack``: an environment's role).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aws_cdk import Aws, Stack
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.image_repository import RepositoryAccess
from infra.nag import ECR_AUTH_TOKEN, acknowledge
from pipeline.deployers import deployer_for
from pipeline.deployers.base import DeployTarget, NamespaceAccess, PullImages

EKS_EDIT_POLICY = f"arn:{Aws.PARTITION}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def grant_deploy(
    scope: Construct,
    target: DeployTarget,
    role: iam.IRole,
    *,
    pull: RepositoryAccess | None,
    namespace_access: Callable[[iam.IRole, NamespaceAccess], None] | None = None,
) -> None:
    """Render onto ``role`` what the target's deployer says its deploy needs (pipeline.deployers.base.Permission), in
    the account and region of ``scope``'s stack. ``pull``: the repository a :class:`PullImages` needs (``None``: the
    role already reads it). ``namespace_access``: what gives ``role`` an EKS namespace (default: an access entry of
    its own under ``scope``; a role shared by several targets needs one entry per cluster)."""
    stack = Stack.of(scope)
    for permission in deployer_for(target.kind).permissions(target):
        if isinstance(permission, PullImages):
            if pull is not None:
                pull.grant_pull(role)
                acknowledge(role, "IAM5", ECR_AUTH_TOKEN, applies_to="Resource::*")
        elif isinstance(permission, NamespaceAccess):
            if namespace_access is None:
                eks_access_entry(scope, permission, role)
            else:
                namespace_access(role, permission)
        else:
            arns = [
                r.format(partition=Aws.PARTITION, region=stack.region, account=stack.account)
                for r in permission.resources
            ]
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(permission.actions),
                    resources=arns,
                    conditions=dict(permission.conditions) or None,
                )
            )
            for resource in permission.resources:
                if "*" in resource and permission.reason:
                    shown = resource.format(partition="<AWS::Partition>", region=stack.region, account=stack.account)
                    acknowledge(role, "IAM5", permission.reason, applies_to=f"Resource::{shown}")


def eks_access_entry(
    scope: Construct, eks: NamespaceAccess, role: iam.IRole, *, id: str = "DeployAccessEntry"
) -> eks_l1.CfnAccessEntry:
    """``role``'s access entry on ``eks.cluster``, scoped to ``eks.namespace`` (:func:`scope_namespaces` widens it)."""
    entry = eks_l1.CfnAccessEntry(scope, id, cluster_name=eks.cluster, principal_arn=role.role_arn, type="STANDARD")
    scope_namespaces(entry, [eks.namespace])
    return entry


def scope_namespaces(entry: eks_l1.CfnAccessEntry, namespaces: Iterable[str]) -> None:
    """The entry's one access policy: EKS's edit policy in exactly these namespaces."""
    entry.access_policies = [
        eks_l1.CfnAccessEntry.AccessPolicyProperty(
            policy_arn=EKS_EDIT_POLICY,
            access_scope=eks_l1.CfnAccessEntry.AccessScopeProperty(
                type="namespace", namespaces=sorted(set(namespaces))
            ),
        )
    ]
