"""Deploys against moto (server mode): Lambda gets the child of its architecture, ECS the index, both idempotent."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import EcsTarget, LambdaTarget
from pipeline.deployers.base import DeployError
from pipeline.deployers.ecs import EcsDeployer
from pipeline.deployers.lambda_ import LambdaDeployer
from pipeline.errors import InputError, SlipwayError
from pipeline.records import BuildRecord, ImageRecord, RecordError, write
from pipeline.stitch import stitch
from tests.fakes import MemoryRegistry

pytestmark = pytest.mark.integration
REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
OLD = f"{REPO}@sha256:" + "0" * 64
# A registry the deploys check image.json against before changing anything: real manifests, real digests.
REGISTRY = MemoryRegistry()
RELEASE = stitch(
    REGISTRY,
    [BuildRecord(REPO, p, REGISTRY.add_image(REPO, *p.split("/")), 1000, 1.0, "buildx") for p in ("linux/amd64", "linux/arm64")],
    tag="c0ffee1",
).record  # fmt: skip
AMD64_ONLY = stitch(
    REGISTRY, [BuildRecord(REPO, "linux/amd64", REGISTRY.add_image(REPO, "linux", "amd64", layer=b"x"), 1, 1, "buildx")],
    tag="c0ffee2",
).record  # fmt: skip
INDEX, AMD, ARM = RELEASE.index_digest, RELEASE.platforms["linux/amd64"].digest, RELEASE.platforms["linux/arm64"].digest


def image_record(platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")) -> ImageRecord:
    return RELEASE if len(platforms) == 2 else AMD64_ONLY


@pytest.fixture
def image_json(tmp_path: Path) -> Path:
    path = tmp_path / "image.json"
    write(path, image_record())
    return path


@pytest.fixture
def amd64_only(tmp_path: Path) -> Path:
    """image.json of a release built for linux/amd64 only."""
    path = tmp_path / "amd64-only.json"
    write(path, image_record(("linux/amd64",)))
    return path


def deploy_fn(client: Any, image_json: Path, out: Path, function_name: str = "payments-api") -> int:
    """The arm64 Lambda deploy the tests repeat, with the example's alias."""
    target = LambdaTarget(function_name=function_name, architecture="arm64", alias="live")
    return deploy(
        LambdaDeployer(client, poll_seconds=0.2), target, image_json=image_json, out=out, timeout=30, registry=REGISTRY
    )


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def lambda_client(moto_endpoint: str) -> Any:
    iam = client("iam", moto_endpoint)
    try:
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="fn")["Role"]["Arn"]
    fn = client("lambda", moto_endpoint)
    for name, arch in (("payments-api", "arm64"), ("payments-x86", "x86_64")):
        with contextlib.suppress(fn.exceptions.ResourceConflictException):
            fn.create_function(
                FunctionName=name,
                Role=role,
                PackageType="Image",
                Code={"ImageUri": OLD},
                Architectures=[arch],
            )
    return fn


def test_lambda_arm64_gets_the_arm64_child_then_is_idempotent(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deployed.json"
    deploy_fn(lambda_client, image_json, out, "payments-api")
    assert lambda_client.get_function(FunctionName="payments-api")["Code"]["ImageUri"] == f"{REPO}@{ARM}"
    first = json.loads(out.read_text())
    assert first["changed"] is True and first["previous_image"] == OLD and first["image"] == f"{REPO}@{ARM}"
    assert lambda_client.get_alias(FunctionName="payments-api", Name="live")["FunctionVersion"] == first["revision"]
    deploy_fn(lambda_client, image_json, out, "payments-api")
    second = json.loads(out.read_text())
    assert second["changed"] is False and second["revision"] == first["revision"]


def test_lambda_refuses_architecture_mismatch_with_the_function(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        DeployError,
        match=r"Lambda function payments-x86 \(arm64\): the function is configured for \['x86_64'\], not \['arm64'\]",
    ):
        deploy_fn(lambda_client, image_json, tmp_path / "o.json", "payments-x86")
    assert lambda_client.get_function(FunctionName="payments-x86")["Code"]["ImageUri"] == OLD


def test_lambda_refuses_image_lacking_its_architecture(lambda_client: Any, amd64_only: Path, tmp_path: Path) -> None:
    path = amd64_only
    with pytest.raises(
        DeployError,
        match=r"lacks platform linux/arm64 needed by Lambda function payments-api \(arm64\) \(has linux/amd64\)",
    ):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "payments-api")


def test_lambda_unknown_function(lambda_client: Any, image_json: Path, tmp_path: Path) -> None:
    with pytest.raises(
        DeployError,
        match=r"Lambda function nope \(arm64\): cannot read the function \(ResourceNotFoundException",
    ):
        deploy_fn(lambda_client, image_json, tmp_path / "o.json", "nope")


def test_tag_instead_of_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.write_text(
        json.dumps(
            {
                **json.loads(json.dumps(image_record().__dict__, default=lambda o: o.__dict__)),
                "index_digest": "latest",
            }
        )
    )
    with pytest.raises(RecordError, match=r"field 'index_digest': expected a digest 'sha256:<64 hex>', got 'latest'"):
        ImageRecord.load(path)


@pytest.fixture
def ecs_client(moto_endpoint: str) -> Any:
    ec2 = client("ec2", moto_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"svc-{vpc}", Description="svc", VpcId=vpc)["GroupId"]
    ecs = client("ecs", moto_endpoint)
    ecs.create_cluster(clusterName="payments")
    for name, arch in (("api", "X86_64"), ("worker", "ARM64")):
        task = ecs.register_task_definition(
            family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            runtimePlatform={"cpuArchitecture": arch, "operatingSystemFamily": "LINUX"},
            containerDefinitions=[{"name": name, "image": OLD, "essential": True}, {"name": "sidecar", "image": "sidecar@sha256:" + "9" * 64}],
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        existing = ecs.describe_services(cluster="payments", services=[name])["services"]
        if not existing:
            ecs.create_service(
                cluster="payments", serviceName=name, taskDefinition=task, desiredCount=1, launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
            )  # fmt: skip
    return ecs


def test_ecs_gets_the_index_digest_in_a_revision_differing_only_in_image(
    ecs_client: Any, image_json: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deployed.json"
    before = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    deploy(
        EcsDeployer(ecs_client),
        EcsTarget(cluster="payments", service="api", container="api"),
        image_json=image_json,
        out=out,
        timeout=0,
        registry=REGISTRY,
    )
    service = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]
    after = ecs_client.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    old = ecs_client.describe_task_definition(taskDefinition=before)["taskDefinition"]
    assert [c["image"] for c in after["containerDefinitions"]] == [
        f"{REPO}@{INDEX}",
        "sidecar@sha256:" + "9" * 64,
    ]
    for key in ("family", "cpu", "memory", "networkMode", "runtimePlatform", "requiresCompatibilities"):
        assert after[key] == old[key], key
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    record = json.loads(out.read_text())
    assert record["changed"] is True and record["previous_image"] == OLD
    deploy(
        EcsDeployer(ecs_client),
        EcsTarget(cluster="payments", service="api", container="api"),
        image_json=image_json,
        out=out,
        timeout=0,
        registry=REGISTRY,
    )
    # The second run registers nothing: the service already runs a revision with this image. (moto's deployment
    # stays IN_PROGRESS forever, so the run reports it as a rollout in flight rather than "nothing changed".)
    again = ecs_client.describe_services(cluster="payments", services=["api"])["services"][0]["taskDefinition"]
    assert again == service["taskDefinition"]
    assert json.loads(out.read_text())["previous_image"] == OLD, "previous is never overwritten by a re-run"


def test_ecs_refuses_architecture_the_index_lacks(ecs_client: Any, amd64_only: Path, tmp_path: Path) -> None:
    path = amd64_only
    with pytest.raises(
        DeployError,
        match=r"ECS service payments/worker: runtimePlatform.cpuArchitecture ARM64 needs linux/arm64",
    ):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="worker", container="worker"),
            image_json=path,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )


def test_ecs_unknown_service_and_container(ecs_client: Any, image_json: Path, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"ECS service payments/nope: service not found"):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="nope", container="x"),
            image_json=image_json,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )
    with pytest.raises(DeployError, match=r"task definition has no container 'web' \(has \['worker', 'sidecar'\]\)"):
        deploy(
            EcsDeployer(ecs_client),
            EcsTarget(cluster="payments", service="worker", container="web"),
            image_json=image_json,
            out=tmp_path / "o.json",
            timeout=0,
            registry=REGISTRY,
        )


def test_ecs_steady_state_wait_is_bounded(ecs_client: Any) -> None:
    """moto never reaches steady state after update_service: the wait must end, with a clear error."""
    with pytest.raises(
        DeployError, match=r"ECS service payments/worker: waiting for steady state on .* timed out after 1s"
    ):
        EcsDeployer(ecs_client, poll_seconds=0.2).deploy(
            image_record(), EcsTarget(cluster="payments", service="worker", container="worker"), timeout=1
        )


class FailOnce:
    """A client in front of moto that fails one API call once (an operator's network blip, a throttle)."""

    def __init__(self, inner: Any, operation: str, code: str = "ServiceException") -> None:
        self._inner, self._operation, self._code, self.failed = inner, operation, code, False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name != self._operation or self.failed:
            return method

        def fail(**kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            self.failed = True
            raise ClientError({"Error": {"Code": self._code, "Message": "injected"}}, name)

        return fail


def fresh_function(lambda_client: Any, name: str) -> None:
    role = lambda_client.get_function(FunctionName="payments-api")["Configuration"]["Role"]
    lambda_client.create_function(FunctionName=name, Role=role, PackageType="Image", Code={"ImageUri": OLD},
                                  Architectures=["arm64"])  # fmt: skip


@pytest.mark.parametrize("operation", ["publish_version", "update_alias", "create_alias"])
def test_lambda_retry_after_a_partial_failure_finishes_the_deploy(
    lambda_client: Any, image_json: Path, tmp_path: Path, operation: str
) -> None:
    name = f"retry-{operation.replace('_', '-')}"
    fresh_function(lambda_client, name)
    if operation == "update_alias":  # a first deploy made the alias: the second one fails to move it
        lambda_client.publish_version(FunctionName=name, Description=OLD)  # as Slipway publishes versions
        lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    out = tmp_path / "deployed.json"
    with pytest.raises(DeployError, match=rf"injected; alias live still names {OLD} \(a retry finishes the deploy\)"):
        deploy_fn(FailOnce(lambda_client, operation), image_json, out, name)
    assert not out.exists()
    deploy_fn(lambda_client, image_json, out, name)
    record = json.loads(out.read_text())
    assert record["changed"] is True, "a retry finishes the job; it never says 'nothing changed' over a stale alias"
    assert record["previous_image"] == OLD and record["image"] == f"{REPO}@{ARM}"
    version = lambda_client.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    assert lambda_client.get_function(FunctionName=name, Qualifier=version)["Code"]["ImageUri"] == f"{REPO}@{ARM}"


def test_lambda_retry_after_success_keeps_the_rollback_target(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    """The record was lost (a fresh CodeBuild workspace): the retry reads the rollback target from the function."""
    fresh_function(lambda_client, "retry-record")
    deploy_fn(lambda_client, image_json, tmp_path / "first.json", "retry-record")
    deploy_fn(lambda_client, image_json, tmp_path / "second.json", "retry-record")
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["changed"] is False and second["previous_image"] == OLD, "previous is never overwritten by a retry"


def test_deploy_refuses_an_out_it_cannot_write_before_changing_anything(
    lambda_client: Any, image_json: Path, tmp_path: Path
) -> None:
    fresh_function(lambda_client, "retry-out")
    with pytest.raises(InputError, match=r"--out .*/missing/deployed.json: directory .*/missing does not exist"):
        deploy_fn(lambda_client, image_json, tmp_path / "missing" / "deployed.json", "retry-out")
    assert lambda_client.get_function(FunctionName="retry-out")["Code"]["ImageUri"] == OLD


class RollingOut:
    """moto never reports an ECS rollout in progress: this view of it does, for ``rolling`` describe calls."""

    def __init__(self, inner: Any, rolling: int) -> None:
        self._inner, self.rolling = inner, rolling

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def describe_services(self, **kwargs: Any) -> Any:
        response = self._inner.describe_services(**kwargs)
        for service in response["services"]:
            current = service["taskDefinition"]
            state = "IN_PROGRESS" if self.rolling > 0 else "COMPLETED"
            service["deployments"] = [{"status": "PRIMARY", "taskDefinition": current, "rolloutState": state}]
        self.rolling -= 1
        return response


def test_ecs_retry_after_a_timeout_waits_for_and_judges_the_rollout(
    ecs_client: Any, image_json: Path, tmp_path: Path
) -> None:
    target = EcsTarget(cluster="payments", service="worker", container="worker")
    with pytest.raises(DeployError, match=r"ECS service payments/worker: waiting for steady state on .* timed out"):
        deploy(EcsDeployer(RollingOut(ecs_client, rolling=10**6), poll_seconds=0.1), target,
               image_json=image_json, out=tmp_path / "first.json", timeout=0.5, registry=REGISTRY)  # fmt: skip
    out = tmp_path / "retry.json"
    deploy(EcsDeployer(RollingOut(ecs_client, rolling=3), poll_seconds=0.1), target, image_json=image_json, out=out,
           timeout=30, registry=REGISTRY)  # fmt: skip
    record = json.loads(out.read_text())
    assert record["changed"] is True and record["waited"] is True, "the retry watched the rollout to its end"
    assert record["previous_image"] == OLD, "the rollback target came from the revision's tags"


def test_deploy_refuses_a_child_labelled_with_another_platform(lambda_client: Any, tmp_path: Path) -> None:
    """image.json says arm64, the child's config says amd64: nothing is deployed."""
    lying = ImageRecord(REPO, RELEASE.tag, RELEASE.index_digest, {
        "linux/amd64": RELEASE.platforms["linux/arm64"], "linux/arm64": RELEASE.platforms["linux/amd64"],
    })  # fmt: skip
    path = tmp_path / "image.json"
    write(path, lying)
    fresh_function(lambda_client, "lying-label")
    with pytest.raises(SlipwayError, match=r"index names sha256:\w+, image.json says sha256:\w+"):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "lying-label")
    assert lambda_client.get_function(FunctionName="lying-label")["Code"]["ImageUri"] == OLD


def test_deploy_refuses_an_index_whose_child_is_another_architecture(lambda_client: Any, tmp_path: Path) -> None:
    """The index itself lies (an amd64 child listed as arm64): the child's config says so, and nothing is deployed."""
    from pipeline.oci import OCI_MANIFEST, Descriptor, Platform, build_index
    from pipeline.records import PlatformImage
    from pipeline.registry.base import RepositoryRef

    amd = RELEASE.platforms["linux/amd64"]
    index = build_index([Descriptor(OCI_MANIFEST, amd.digest, 500, Platform("linux", "arm64"))])
    REGISTRY.put_manifest(RepositoryRef.parse(REPO), "lying-index", index)
    path = tmp_path / "image.json"
    write(
        path,
        ImageRecord(REPO, "lying-index", index.digest, {"linux/arm64": PlatformImage(amd.digest, 1, OCI_MANIFEST)}),
    )
    fresh_function(lambda_client, "lying-index")
    with pytest.raises(SlipwayError, match=r"\(linux/arm64\): image config says linux/amd64, expected linux/arm64"):
        deploy_fn(lambda_client, path, tmp_path / "o.json", "lying-index")
    assert lambda_client.get_function(FunctionName="lying-index")["Code"]["ImageUri"] == OLD
