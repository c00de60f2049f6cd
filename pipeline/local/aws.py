"""The example's deploy targets in moto: what the platform's own infrastructure would have created in AWS.

A function, service or Deployment is created once, on a placeholder digest (as a real one would be on its first
image), so the first local run is a real deploy and the second one is "already serving". The deploy itself is
``slipway deploy`` unchanged (one path); :func:`check` is what the replay adds after it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

from pipeline import platform_deploy
from pipeline.config import EcsTarget, EksTarget, LambdaTarget, PlatformConfig
from pipeline.deployers.base import DeployRecord, DeployTarget, Verification
from pipeline.deployers.eks import deployment_manifest
from pipeline.deployers.lambda_ import LambdaDeployer, judge
from pipeline.local import iam_enforcement, kubectl_standin, load_balancer, verify
from pipeline.naming import service_repository_name
from pipeline.platforms import platform_for_architecture
from pipeline.records import ImageRecord
from pipeline.references import ecr_registry

REGION = "eu-west-1"
PLACEHOLDER = "sha256:" + "0" * 64


def client(service: str, endpoint: str, credentials: dict[str, str] | None = None, region: str = REGION) -> Any:
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
        region_name=region,
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


def client_in(service: str, endpoint: str, account: str, platform_account: str, region: str = REGION) -> Any:
    """A client acting in ``account``: the admin's own in the platform account, the organization role elsewhere."""
    same = account in ("", platform_account)
    return client(service, endpoint, None if same else organization_credentials(endpoint, account), region)


def ensure_lambda(
    endpoint: str,
    target: LambdaTarget,
    repository: str,
    credentials: dict[str, str] | None = None,
    region: str = REGION,
) -> Any:
    lam = client("lambda", endpoint, credentials, region)
    _ensure_alarms(client("cloudwatch", endpoint, credentials, region), target)
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


def _ensure_alarms(cloudwatch: Any, target: LambdaTarget) -> None:
    """The alarms a traffic shift watches, as the team keeps them beside its function (#29): the alias's errors, in
    ``OK`` until something sets them off."""
    names = list(target.strategy.alarms)
    present = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]} if names else set()
    for name in (n for n in names if n not in present):
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
            Dimensions=[{"Name": "FunctionName", "Value": target.function_name},
                        {"Name": "Resource", "Value": f"{target.function_name}:{target.alias}"}],
        )  # fmt: skip


def ensure_ecs(
    endpoint: str, target: EcsTarget, repository: str, credentials: dict[str, str] | None = None, region: str = REGION
) -> Any:
    ecs = client("ecs", endpoint, credentials, region)
    try:
        found = ecs.describe_services(cluster=target.cluster, services=[target.service]).get("services", [])
    except ecs.exceptions.ClusterNotFoundException:
        found = []
    if any(s.get("status") == "ACTIVE" for s in found):
        return ecs
    ec2 = client("ec2", endpoint, credentials, region)
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


def ensure_eks(
    endpoint: str,
    target: EksTarget,
    repository: str,
    credentials: dict[str, str] | None = None,
    *,
    state: Path,
    region: str = REGION,
) -> None:
    """The cluster in moto's EKS (what ``eks:DescribeCluster`` answers the deployer) and, in the cluster stand-in that
    ``kubectl`` reaches in the replay's jobs, the team's Deployment on a placeholder digest."""
    eks = client("eks", endpoint, credentials, region)
    if target.cluster not in eks.list_clusters().get("clusters", []):
        iam = client("iam", endpoint, credentials)
        try:
            role = iam.get_role(RoleName="slipway-local-eks")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName="slipway-local-eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        eks.create_cluster(name=target.cluster, roleArn=role, resourcesVpcConfig={})
    manifest = deployment_manifest(target.namespace, target.deployment, target.container, f"{repository}@{PLACEHOLDER}")
    kubectl_standin.ensure_deployment(state, target.cluster, manifest)


def provision(
    endpoint: str,
    target: DeployTarget,
    repository: str,
    credentials: dict[str, str] | None = None,
    *,
    state: Path,
    region: str = REGION,
) -> None:
    """The function, service or Deployment a deploy target names, as the platform's own infrastructure would have it
    (in a workload account: with ``credentials`` there; in ``region``). ``state``: the local state directory (the
    cluster stand-in)."""
    if isinstance(target, LambdaTarget):
        ensure_lambda(endpoint, target, repository, credentials, region)
    elif isinstance(target, EcsTarget):
        ensure_ecs(endpoint, target, repository, credentials, region)
    elif isinstance(target, EksTarget):
        ensure_eks(endpoint, target, repository, credentials, state=state, region=region)


def provision_all(config: PlatformConfig, endpoint: str, secret_value: str, *, state: Path) -> None:
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
            provision(endpoint, target, repository, state=state)
        for environment in service.environments:
            credentials = organization_credentials(endpoint, environment.account)
            region = environment.region or config.platform.region
            regional = (
                f"{ecr_registry(config.platform.account, region)}/{service_repository_name(team.name, service.name)}"
            )
            for target in environment.targets():
                provision(endpoint, target, regional, credentials, state=state, region=region)


def bootstrap(config: PlatformConfig, endpoint: str) -> None:
    """``cdk bootstrap`` of every place the platform deploys to, as far as the CloudFormation stand-in needs it
    (idempotent): the deploy role, trusting the platform account (``--trust``), holding what the execution role it
    passes would hold (AdministratorAccess, bootstrap's default)."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{config.platform.account}:root"},
         "Action": "sts:AssumeRole"},
    ]}  # fmt: skip
    administrator = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    for account, region in platform_deploy.environments(config):
        iam = client("iam", endpoint, None if account == config.platform.account else organization_credentials(
            endpoint, account))  # fmt: skip
        name = platform_deploy.bootstrap_role("deploy", account, region).rsplit("/", 1)[-1]
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=name, PolicyName="execution", PolicyDocument=json.dumps(administrator))


def deploy_places(config: PlatformConfig) -> Iterator[tuple[str, str, DeployTarget]]:
    """``(account, region, target)`` of every deploy target: an environment's in its workload account."""
    for _, service in config.services():
        places = [(config.platform.account, config.platform.region, service.deploy)]
        places += [(e.account, e.region or config.platform.region, e) for e in service.environments]
        for account, region, targets in places:
            for target in targets.targets():
                yield account, region, target


def load_balanced(config: PlatformConfig) -> dict[str, load_balancer.Fronted]:
    """Each ECS target's health URL host -> the service behind it, in the account its environment deploys to."""
    found = {}
    for account, region, target in deploy_places(config):
        if isinstance(target, EcsTarget) and target.health_url:
            url = urlparse(target.health_url)
            found[str(url.hostname)] = load_balancer.Fronted(
                account, target.cluster, target.service, target.container, url.path or "/",
                target.health_path or url.path or "/", region,
            )  # fmt: skip
    return found


def health_probe(endpoint: str, platform_account: str) -> load_balancer.Probe:
    """What a load balancer's target answers: the image the ECS service's task definition names now, run for its
    ``runtimePlatform`` and asked for its health path."""

    def probe(fronted: load_balancer.Fronted) -> tuple[str, Callable[[], int]]:
        ecs = client_in("ecs", endpoint, fronted.account, platform_account, fronted.region or REGION)
        service = ecs.describe_services(cluster=fronted.cluster, services=[fronted.service])["services"][0]
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        image = next(c["image"] for c in definition["containerDefinitions"] if c["name"] == fronted.container)
        cpu = str((definition.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")).lower()
        name = f"slipway-lb-{fronted.account}-{fronted.cluster}-{fronted.service}"
        return image, lambda: verify.http_check(image, platform_for_architecture(cpu), fronted.health_path,
                                                name=name).status  # fmt: skip

    return probe


def _task_platform(revision: str, acting: Any) -> str:
    """The platform the deployed task definition runs on (its ``runtimePlatform``), as Fargate would pick it."""
    runtime = acting.client("ecs").describe_task_definition(taskDefinition=revision)["taskDefinition"]
    return platform_for_architecture(str(runtime.get("runtimePlatform", {}).get("cpuArchitecture", "X86_64")).lower())


def check(target: DeployTarget, record: DeployRecord, image: ImageRecord, out: Path, acting: Any) -> Verification:
    """What proves, locally, that the deployed digest answers, read as the deploy acted (``acting``: its session).
    Lambda: the smoke test already invoked the new version through the Lambda API; when the deploy changed nothing,
    the alias is invoked the same way. ECS and EKS: the index is run for the task's platform and asked for its health
    path (or run to its exit), which moto's ECS and the cluster stand-in do not do."""
    name = f"slipway-check-{target.label.replace(':', '-').replace('/', '-')}"
    if isinstance(target, LambdaTarget):
        if record.verified is not None:
            return record.verified
        lam = LambdaDeployer(acting.client("lambda"))
        event = json.loads(target.smoke_event)
        return judge(lam.invoke_version(target.function_name, target.alias, record.image, event), target.smoke_expect)[
            0
        ]
    platform = _task_platform(record.revision, acting) if isinstance(target, EcsTarget) else "linux/amd64"
    path = target.health_path if isinstance(target, EcsTarget | EksTarget) else ""
    if path:
        return verify.http_check(image.index_uri, platform, path, name=name)
    return verify.run_check(image.index_uri, platform, name=name)
