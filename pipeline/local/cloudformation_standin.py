"""CloudFormation's part of the replay: what ``cdk deploy --all`` leaves in AWS, done in the AWS stand-in.

moto's CloudFormation does not create these templates (FACTS.md: it stops on the KMS keys' and buckets' properties),
so the stand-in deploys what the replay depends on -- the file assets where the templates say, every role and policy
in its stack's account, every pipeline definition (created, which starts it as CodePipeline does, or updated, which
starts nothing) -- and keeps the deployed templates as an assembly in the local state (``.slipway/cdk.out``): what the
replay's CodeBuild and CodePipeline read, and what the next deploy compares its pipelines with.

Like the CDK CLI it acts in each stack's account through that account's bootstrap deploy role, assumed with the
caller's own credentials: a deploy job whose role may not assume it fails here as it fails in AWS. The stand-in's
deploy role holds what the CloudFormation execution role it would pass holds (AdministratorAccess, bootstrap's
default); there is no change set, no rollback of a half-applied stack and no stack policy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import assembly
from pipeline.local import aws
from pipeline.local.replay import cdk, iam, keys, notifications, starts
from pipeline.platform_deploy import bootstrap_role

DEPLOYED = "cdk.out"
SERVICE_PRINCIPAL_ENV = "SLIPWAY_LOCAL_SERVICE_PRINCIPAL"
"""Set only by the replay, for a job that deploys: the identity that plays AWS's services in the stand-ins."""


@dataclass(frozen=True)
class StandInCloudFormation:
    state: Path
    """The local state directory: the deployed assembly is ``<state>/cdk.out``."""
    endpoint: str
    service_principal: str
    """The identity that plays AWS's services in the stand-ins (it assumes a job's role for CodeBuild)."""
    platform_account: str
    enforce_iam: bool = True
    """False: a stand-in without IAM (no admin): roles are not created, as nothing would check them."""

    @property
    def location(self) -> Path:
        return self.state / DEPLOYED

    def deployed(self, assembly_dir: Path, into: Path) -> Path:
        return self.location

    def _sessions(self, places: set[tuple[str, str]]) -> dict[str, dict[str, str] | None]:
        """Each account's deploy-role credentials, all assumed before anything changes: a job that may not assume one
        of them deploys nothing (CloudFormation would fail that stack alone; the stand-in has no stack rollback)."""
        if not self.enforce_iam:
            return {account: None for account, _ in places}
        sts = aws.client("sts", self.endpoint)
        return {
            account: dict(sts.assume_role(RoleArn=bootstrap_role("deploy", account, region),
                                          RoleSessionName="cdk-deploy")["Credentials"])
            for account, region in sorted(places)
        }  # fmt: skip

    def deploy(self, assembly_dir: Path) -> None:
        stacks = assembly.stacks(assembly_dir)
        sessions = self._sessions({(s.resolve.account, s.resolve.region) for s in stacks})

        def client(service: str, account: str) -> Any:
            return aws.client(service, self.endpoint, sessions[account])

        cdk.publish_assets(assembly_dir, client("s3", self.platform_account))
        if self.enforce_iam:
            iam.apply(assembly_dir, lambda account: client("iam", account), self.service_principal)
        keys.create_signing_keys(assembly_dir, lambda account: client("kms", account))
        topics = notifications.create_topics(assembly_dir, lambda account: client("sns", account))
        # The replay's reader of each team's topic: a queue subscribed to it (moto delivers SNS to SQS).
        notifications.inboxes(client("sns", self.platform_account), client("sqs", self.platform_account), topics)
        starts.apply(assembly.load(assembly_dir), client("codepipeline", self.platform_account))
        if assembly_dir.resolve() != self.location.resolve():
            _replace(assembly_dir, self.location)


def _replace(source: Path, target: Path) -> None:
    """The deployed assembly swapped for the new one in two renames: a reader sees the old one or the new one."""
    staged, old = target.with_name(target.name + ".new"), target.with_name(target.name + ".old")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(source, staged, symlinks=True)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
