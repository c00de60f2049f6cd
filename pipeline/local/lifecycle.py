"""``slipway local up|down|status``: start what the local run needs and is not already there; stop only that.

Reuse before start: a registry already answering on the port, a docker daemon already answering (``DOCKER_HOST`` or the
default socket), a moto server already answering. A port held by anything else is an error naming the port, never a
silent second instance.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.builders.docker_cli import builder_prefix, dockerd_binary
from pipeline.local import services
from pipeline.local.state import MOTO_PORT, REGISTRY_PORT, LocalState, Running

SYSTEM_DEPS = Path(__file__).resolve().parents[2] / "scripts" / "system-deps.sh"
BUILDER = "the builder (Debian 13's docker.io, docker-cli, docker-buildx in the builder prefix)"
REQUIRED_BINARIES = {
    services.REGISTRY_BINARY: "docker-registry",
    str(dockerd_binary()): BUILDER,
    str(builder_prefix() / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-buildx"): BUILDER,
    "/usr/bin/containerd": "containerd",
    "/usr/sbin/debootstrap": "debootstrap",
}
BINFMT_ARM64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


@dataclass(frozen=True)
class Status:
    name: str
    address: str
    running: bool
    ours: bool


def ensure_system() -> None:
    """Install missing Debian packages (root) or name them (otherwise); register QEMU for arm64."""
    missing = sorted({pkg for binary, pkg in REQUIRED_BINARIES.items() if not Path(binary).exists()})
    if (missing or not BINFMT_ARM64.exists()) and os.geteuid() == 0 and SYSTEM_DEPS.exists():
        subprocess.run(["bash", str(SYSTEM_DEPS)], check=False)
        missing = sorted({pkg for binary, pkg in REQUIRED_BINARIES.items() if not Path(binary).exists()})
    if missing:
        raise services.ServiceError(f"missing: {', '.join(missing)} (run `make deps` as root)")
    if not BINFMT_ARM64.exists():
        raise services.ServiceError("QEMU binfmt for arm64 is not registered (run `make deps` as root)")


def up(
    state: LocalState,
    *,
    registry_port: int = REGISTRY_PORT,
    moto_port: int = MOTO_PORT,
    account: str = "",
    regions: tuple[str, ...] = (),
) -> LocalState:
    """``account``: the platform's (moto then owns that account, so ARNs in the synthesized policies match);
    ``regions``: the platform's and every region it replicates to, each served by a registry of its own."""
    ensure_system()
    # Saved after each start: if a later one fails, `down` still knows what this run started.
    _registry_port_free_or_ours(state, registry_port)  # a taken port is named before anything starts
    # moto first: the registry's credentials are the ones its GetAuthorizationToken hands out.
    starts: list[Callable[[], None]] = [
        lambda: _up_aws(state, moto_port, account),
        lambda: _up_blobs(state),
        lambda: _up_registry(state, registry_port),
        lambda: _up_regions(state, regions),
        lambda: _up_builder(state),
    ]
    for start in starts:
        start()
        state.save()
    return state


def _alive(state: LocalState, name: str) -> Running | None:
    running = state.services.get(name)
    if running and running.ours and services.pid_alive(running.pid):
        return running
    return None


def _registry_port_free_or_ours(state: LocalState, port: int) -> bool:
    """True when a registry already answers there (reused); an error when something else holds the port."""
    address = f"127.0.0.1:{port}"
    if _alive(state, "registry") or services.registry_answers(address):
        return True
    if services.port_taken(port):
        raise services.ServiceError(
            f"registry: port {port} on 127.0.0.1 is taken by something that is not an OCI registry; "
            "free it or pass --registry-port"
        )
    return False


def _up_registry(state: LocalState, port: int) -> None:
    """The store (docker-registry on a port of its own, blob reads redirected to the S3 stand-in), and in front of it,
    on the registry's address, the gate that authorizes as ECR does (:mod:`pipeline.local.registry_gate`)."""
    address = f"127.0.0.1:{port}"
    if _registry_port_free_or_ours(state, port):
        state.services.setdefault("registry", Running("registry", address=address))
        return
    if (store := _alive(state, "registry-store")) is None:
        blobs = state.services["blobs"].address.replace("127.0.0.1", "localhost")  # another host, as S3 is to ECR
        store_port = services.free_port()
        service = services.registry_service(state.directory, store_port, blobs_at=f"http://{blobs}")
        service.start()
        store = state.services["registry-store"] = Running(
            "registry-store", service.pid, True, f"127.0.0.1:{store_port}"
        )
        state.save()
    gate = services.registry_gate_service(state.directory, port, store.address, state.registry_token_key())
    gate.start()
    state.services["registry"] = Running("registry", gate.pid, True, address)


def _up_regions(state: LocalState, regions: tuple[str, ...]) -> None:
    """The platform's region at the registry; each replica region at a gate of its own over the same store
    (:mod:`pipeline.local.replicas`)."""
    if not regions:
        return
    home, *replicas = regions
    state.services[f"registry@{home}"] = Running(f"registry@{home}", address=state.registry)
    store = state.services["registry-store"].address
    for region in replicas:
        if _alive(state, f"registry@{region}"):
            continue
        port = services.free_port()
        gate = services.registry_gate_service(state.directory, port, store, state.registry_token_key(), region=region)
        gate.start()
        state.services[f"registry@{region}"] = Running(f"registry@{region}", gate.pid, True, f"127.0.0.1:{port}")


@dataclass(frozen=True)
class RegistryAuth:
    """ECR's way in: Basic auth with user ``AWS`` and the password inside ``GetAuthorizationToken``'s token."""

    username: str
    password: str


def registry_auth(state: LocalState) -> RegistryAuth:
    """The credentials ECR's GetAuthorizationToken hands the stand-in's admin (a token that names its caller)."""
    from pipeline.local.aws import client
    from pipeline.registry.ecr_auth import ecr_basic_auth

    ecr = client("ecr", state.aws_endpoint, state.aws_credentials())
    token = ecr_basic_auth("eu-west-1", ecr=ecr).removeprefix("Basic ")
    username, _, password = base64.b64decode(token).decode().partition(":")
    return RegistryAuth(username, password)


def _up_blobs(state: LocalState) -> None:
    if _alive(state, "blobs") is not None:
        return
    port = services.free_port()
    service = services.blobstore_service(state.directory, port)
    service.start()
    state.services["blobs"] = Running("blobs", service.pid, True, f"127.0.0.1:{port}")


def _up_builder(state: LocalState) -> None:
    if (running := _alive(state, "builder")) and services.docker_answers(running.address):
        return
    # Another daemon is reused only when it keeps images in containerd (it can export a registry cache).
    for host in (os.environ.get("DOCKER_HOST", ""), "unix:///var/run/docker.sock"):
        if host and services.docker_answers(host, containerd_store=True):
            state.services["builder"] = Running("builder", address=host)
            return
    if os.geteuid() != 0:
        raise services.ServiceError("builder: no docker daemon answers and starting dockerd needs root")
    service, host = services.dockerd_service(state.directory)
    service.start(timeout=90)
    state.services["builder"] = Running("builder", service.pid, True, host)


def _up_aws(state: LocalState, port: int, account: str) -> None:
    address = f"http://127.0.0.1:{port}"
    if _alive(state, "aws") or services.moto_answers(address):
        state.services.setdefault("aws", Running("aws", address=address))
        return
    if services.port_taken(port):
        raise services.ServiceError(f"aws (moto): port {port} on 127.0.0.1 is taken; free it or pass --moto-port")
    # IAM enforced: every request after the admin's creation is authorized against its caller's identity policies by
    # Slipway's evaluator inside moto (pipeline.local.iam_enforcement), so a job missing a grant fails with AccessDenied.
    service = services.moto_service(state.directory, port, enforce_iam=True, token_key=state.registry_token_key())
    service.start()
    state.services["aws"] = Running("aws", service.pid, True, address)
    state.save_aws_credentials(create_admin(address, account or DEFAULT_ACCOUNT))


ADMIN = "slipway-local-admin"
DEFAULT_ACCOUNT = "123456789012"  # moto's own default, when no platform account is given


def create_admin(endpoint: str, account: str) -> dict[str, str]:
    """Within moto's unauthenticated allowance: the admin the replay acts as in ``account`` (stands in for the platform
    team and for the AWS services that assume the template's roles); returns its key (kept in the state directory,
    mode 0600). Its key then places every call it makes in that account."""
    from pipeline.local.aws import client

    iam = client("iam", endpoint, {"AccessKeyId": "bootstrap", "SecretAccessKey": "bootstrap"})
    iam.meta.events.register(
        "before-sign.iam.*", lambda request, **_: request.headers.add_header("x-moto-account-id", account)
    )
    iam.create_user(UserName=ADMIN)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=ADMIN, PolicyName="everything", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def down(state: LocalState) -> list[str]:
    stopped = []
    for name, running in list(state.services.items()):
        if running.ours and running.pid:
            services.stop_pid(running.pid)
            stopped.append(f"{name} (pid {running.pid})")
        del state.services[name]
    state.save()
    return stopped


def status(state: LocalState) -> list[Status]:
    checks: dict[str, Callable[[Running], bool]] = {
        "registry": lambda r: services.registry_answers(r.address),
        "builder": lambda r: services.docker_answers(r.address),
        "aws": lambda r: services.moto_answers(r.address),
        "blobs": lambda r: services.pid_alive(r.pid),
        "registry-store": lambda r: services.registry_answers(r.address),
    }
    result = []
    for name, check in checks.items():
        running = state.services.get(name)
        if running is None:
            result.append(Status(name, "-", False, False))
        else:
            result.append(Status(name, running.address, bool(check(running)), running.ours))
    return result
