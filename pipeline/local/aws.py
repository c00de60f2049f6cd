"""The example's deploy targets in moto: what the platform's own infrastructure would have created in AWS.

A function or service is created once, on a placeholder digest (as a real one would be on its first image), so the
first local run is a real deploy and the second one is "already serving".
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from pipeline.config import EcsTarget, EksTarget, LambdaTarget, PlatformConfig
from pipeline.deployers.base import Deployer, DeployRecord, DeployTarget, Verification
from pipeline.deployers.ecs import EcsDeployer
from pipeline.deployers.eks import EksDeployer
from pipeline.deployers.lambda_ import LambdaDeployer, judge
from pipeline.local import iam_enforcement, verify
from pipeline.naming import service_repository_name
from pipeline.platforms import platform_for_architecture
from pipeline.records import ImageRecord
from pipeline.references import ecr_registry

REGION = "eu-west-1"
PLACEHOLDER = "sha256:" + "0" * 64


def client(service: str, endpoint: str, credentials: dict[str, str] | None = None) -> Any:
    """A client of the AWS stand-in: with ``credentials`` (``AccessKeyId``, ``SecretAccessKey``[, ``SessionToken``]),
    else the ones the replay put in the environment for this endpoint (the stand-in's admin, or a job's assumed
    role), else placeholders. Never the machine's own: real credentials must never be sent to a local endpoint."""
    ours = os.environ.get("AWS_ENDPOINT_URL") == endpoint
    keys = credentials or {
        "AccessKeyId": os.environ.get("AWS_ACCESS_KEY_ID", "local") if ours else "local",
        "SecretAccessKey": os.environ.get("AWS_SECRET_ACCESS_KEY", "local") if ours else "local",
        "SessionToken": os.environ.get("AWS_SESSION_TOKEN", "") if ours else "",
    }
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys.get("SessionToken") or None,
    )


def organization_credentials(endpoint: str, account: str, admin: dict[str, str] | None = None) -> dict[str, str]:
    """The stand-in admin inside a workload account, through the role AWS Organizations gives each member account
    (``admin``: the stand-in admin's key; default: this process's, as for :func:`client`)."""
    sts = client("sts", endpoint, admin)
    role = f"arn:aws:iam::{account}:role/{iam_enforcement.ORGANIZATION_ROLE}"
    return dict(sts.assume_role(RoleArn=role, RoleSessionName="slipway-platform-team")["Credentials"])


def client_in(service: str, endpoint: str, account: str, platform_account: str) -> Any:
    """A client acting in ``account``: the admin's own in the platform account, the organization role elsewhere."""
    same = account in ("", platform_account)
    return client(service, endpoint, None if same else organization_credentials(endpoint, account))


def ensure_lambda(
    endpoint: str, target: LambdaTarget, repository: str, credentials: dict[str, str] | None = None
) -> Any:
    lam = client("lambda", endpoint, credentials)
    try:
        lam.get_function(FunctionName=target.function_name)
        return lam
    except lam.exceptions.ResourceNotFoundException:
        pass
    iam = client("iam", endpoint, credentials)
    try:
        role = iam.get_role(RoleName="slipway-local-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="slipway-local-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(
        FunctionName=target.function_name,
        Role=role,
        PackageType="Image",
        Code={"ImageUri": f"{repository}@{PLACEHOLDER}"},
        Architectures=[target.architecture],
    )
    return lam


def ensure_ecs(endpoint: str, target: EcsTarget, repository: str, credentials: dict[str, str] | None = None) -> Any:
    ecs = client("ecs", endpoint, credentials)
    try:
        found = ecs.describe_services(cluster=target.cluster, services=[target.service]).get("services", [])
    except ecs.exceptions.ClusterNotFoundException:
        found = []
    if any(s.get("status") == "ACTIVE" for s in found):
        return ecs
    ec2 = client("ec2", endpoint, credentials)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{target.service}-{vpc}", Description="local", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=target.cluster)
    definition = ecs.register_task_definition(
        family=f"{target.cluster}-{target.service}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        runtimePlatform={
            "cpuArchitecture": target.cpu_architecture.upper(),
            "operatingSystemFamily": "LINUX",
        },
        containerDefinitions=[{"name": target.container, "image": f"{repository}@{PLACEHOLDER}", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=target.cluster,
        serviceName=target.service,
        taskDefinition=definition,
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )
    return ecs


# moto never reports ECS steady state after update_service (see shared FACTS): local mode does not wait for it.
LOCAL_TIMEOUT = {LambdaTarget.kind: 30.0, EcsTarget.kind: 0.0, EksTarget.kind: 0.0}


def _lambda(endpoint: str, target: Any, repository: str, out: Path) -> Deployer:
    # moto cannot invoke image functions: the new version's image runs here, behind a Runtime API emulator.
    invoke = functools.partial(verify.invoke_image, platform=target.platform)
    return LambdaDeployer(ensure_lambda(endpoint, target, repository), poll_seconds=0.2, invoke=invoke)


def _ecs(endpoint: str, target: Any, repository: str, out: Path) -> Deployer:
    return EcsDeployer(ensure_ecs(endpoint, target, repository))


def _eks(endpoint: str, target: Any, repository: str, out: Path) -> Deployer:
    # No cluster runs locally: the Deployment is rendered (and validated by the tests) instead.
    return EksDeployer(render_only=out / "deployment.json")


# The stand-in each target kind deploys to locally (moto for AWS APIs; a rendered manifest for Kubernetes).
STANDINS: dict[str, Callable[[str, Any, str, Path], Deployer]] = {
    LambdaTarget.kind: _lambda,
    EcsTarget.kind: _ecs,
    EksTarget.kind: _eks,
}


def provision(endpoint: str, target: DeployTarget, repository: str, credentials: dict[str, str] | None = None) -> None:
    """The function or service a deploy target names, as the platform's own infrastructure would have it (in a
    workload account: with ``credentials`` there)."""
    if isinstance(target, LambdaTarget):
        ensure_lambda(endpoint, target, repository, credentials)
    elif isinstance(target, EcsTarget):
        ensure_ecs(endpoint, target, repository, credentials)


def provision_all(config: PlatformConfig, endpoint: str, secret_value: str) -> None:
    """What the platform team and the workload accounts create out of band (idempotent): the build secrets (with a
    stand-in value) and every deploy target -- an environment's in its workload account."""
    secrets = client("secretsmanager", endpoint)
    for _, service in config.services():
        for secret in service.secrets:
            with contextlib.suppress(secrets.exceptions.ResourceExistsException):
                secrets.create_secret(Name=secret.secret_name, SecretString=secret_value)
    registry = ecr_registry(config.platform.account, config.platform.region)
    for team, service in config.services():
        repository = f"{registry}/{service_repository_name(team.name, service.name)}"
        for target in service.deploy.targets():
            provision(endpoint, target, repository)
        for environment in service.environments:
            credentials = organization_credentials(endpoint, environment.account)
            for target in environment.targets():
                provision(endpoint, target, repository, credentials)


def local_deployer(endpoint: str, target: DeployTarget, repository: str, out: Path) -> Deployer:
    return STANDINS[target.kind](endpoint, target, repository, out)


def _task_platform(revision: str) -> str:
    """The platform the deployed task definition runs on (its ``runtimePlatform``), as Fargate would pick it."""
    ecs = client("ecs", os.environ.get("AWS_ENDPOINT_URL", ""))
    runtime = ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"].get("runtimePlatform", {})
    return platform_for_architecture(str(runtime.get("cpuArchitecture", "X86_64")).lower())


def check(target: DeployTarget, record: DeployRecord, image: ImageRecord, out: Path) -> Verification:
    """What proves, locally, that the deployed digest answers (the Lambda check already ran inside the deploy, unless
    the deploy changed nothing: then the serving image is invoked again)."""
    name = f"slipway-check-{target.label.replace(':', '-').replace('/', '-')}"
    if isinstance(target, LambdaTarget):
        if record.verified is not None:
            return record.verified
        outcome = verify.invoke_image(target.function_name, "live", record.image, json.loads(target.smoke_event),
                                      platform=target.platform)  # fmt: skip
        return judge(outcome, target.smoke_expect)[0]
    if isinstance(target, EksTarget):
        verify.schema_check(out / "deployment.json")
    platform = _task_platform(record.revision) if isinstance(target, EcsTarget) else "linux/amd64"
    path = target.health_path if isinstance(target, EcsTarget | EksTarget) else ""
    if path:
        return verify.http_check(image.index_uri, platform, path, name=name)
    return verify.run_check(image.index_uri, platform, name=name)
