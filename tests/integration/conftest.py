"""Real parts for integration tests: Debian's docker-registry, dockerd with BuildKit, moto in server mode.

Each is started once per session on 127.0.0.1 and stopped by PID in ``finally``. Under CI (``CI=true``) a missing
prerequisite fails the run instead of skipping, so a green CI never hides an untested path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.builders.docker_cli import dockerd_binary
from pipeline.local import services
from pipeline.local.seed import seed_busybox
from pipeline.records import ImageRecord, write
from pipeline.registry.distribution import DistributionClient
from tests.integration.deploys import OLD, client, image_record

pytestmark = pytest.mark.integration
PLATFORMS = ("linux/amd64", "linux/arm64")


def require(condition: bool, what: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI must run every integration test: see `make deps`)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slipway-state")


@pytest.fixture(scope="session")
def registry(state: Path) -> Iterator[str]:
    require(Path(services.REGISTRY_BINARY).exists(), "docker-registry is not installed")
    port = services.free_port()
    with services.running(services.registry_service(state, port)):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def docker_host(state: Path) -> Iterator[str]:
    require(os.geteuid() == 0, "dockerd needs root")
    require(dockerd_binary().exists(), f"the builder (dockerd 26 + buildx) is not installed at {dockerd_binary()}")
    require(
        Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
        "qemu-user-static binfmt for arm64 is not registered",
    )
    service, host = services.dockerd_service(state)
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        with services.running(service, timeout=90):
            yield host
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous


@pytest.fixture(scope="session")
def moto_endpoint(state: Path) -> Iterator[str]:
    port = services.free_port()
    with services.running(services.moto_service(state, port)):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def base_image(registry: str, docker_host: str, state: Path) -> ImageRecord:
    """busybox for amd64 and arm64 at <registry>/docker-hub/library/busybox, where pull-through cache serves it."""
    require(
        shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None,
        "apt-get/dpkg-deb missing",
    )
    debs = state / "debs"
    debs.mkdir(exist_ok=True)
    return seed_busybox(
        DistributionClient(),
        registry=registry,
        platforms=PLATFORMS,
        work=state / "seed",
        debs=debs,
    )


# Deploy targets in moto and the release they deploy (tests/integration/deploys.py holds the rest).
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
