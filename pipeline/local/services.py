"""Local stand-ins for the cloud: an OCI registry, dockerd with BuildKit, moto for the AWS control planes.

Each service binds 127.0.0.1 only, runs as a child we started, is recorded by PID under a state directory, and is
stopped by that PID -- never by name, so nothing a developer started by hand is touched. Tests and
``slipway local up`` share this code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.builders.docker_cli import builder_prefix, docker_binary, docker_env, dockerd_binary
from pipeline.errors import SlipwayError
from pipeline.local import registry_token, transfers
from pipeline.local.state import STATE_ENV

REGISTRY_BINARY = "/usr/bin/docker-registry"
# dockerd keeps images in containerd: buildx's docker driver can then export a registry cache (mode=max).
DAEMON_CONFIG = {
    "features": {"containerd-snapshotter": True},
    "storage-driver": "overlayfs",
    "iptables": False,
    "ip6tables": False,
    "bridge": "none",
}


class ServiceError(SlipwayError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _signal(pid: int, sig: int) -> None:
    """Signal the process group when ``pid`` leads one (services start in their own session): dockerd's managed
    containerd and moto's workers go with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def stop_pid(pid: int, *, timeout: float = 20) -> None:
    if not pid_alive(pid):
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)


def http_answers(url: str, header: str = "") -> bool:
    """Something answers ``url`` (a 401 counts: a registry with auth is still a registry), sending ``header`` if given."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return not header or header in response.headers
    except urllib.error.HTTPError as exc:
        return exc.code == 401 and (not header or header in exc.headers)
    except (urllib.error.URLError, OSError):
        return False


def registry_answers(address: str) -> bool:
    return http_answers(f"http://{address}/v2/", "Docker-Distribution-Api-Version")


def moto_answers(endpoint: str) -> bool:
    return http_answers(f"{endpoint}/moto-api/")


def docker_answers(host: str, *, containerd_store: bool = False) -> bool:
    """A docker daemon answers at ``host`` (empty: the client's default); with ``containerd_store``, only one that
    keeps images in containerd (what Slipway's builds need for a registry cache)."""
    env = {**os.environ, **docker_env(), **({"DOCKER_HOST": host} if host else {})}
    try:
        completed = subprocess.run(
            [docker_binary(), "info", "--format", "{{json .DriverStatus}}"],
            env=env, capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0 and (not containerd_store or "io.containerd.snapshotter" in completed.stdout)


@dataclass
class Service:
    """A process we start, wait for, and stop by PID."""

    name: str
    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0

    def start(self, *, timeout: float = 60) -> None:
        if not Path(self.argv[0]).exists() and shutil.which(self.argv[0]) is None:
            raise ServiceError(f"{self.name}: {self.argv[0]} is not installed (run `make deps` as root)")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.pid = process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
                raise ServiceError(
                    f"{self.name}: exited with {process.returncode} while starting; log {self.log}:\n{tail}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"{self.name}: not ready after {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.pid:
            stop_pid(self.pid)
            self.pid = 0


def registry_service(state: Path, port: int, *, blobs_at: str = "") -> Service:
    """Debian's docker-registry (distribution 2.8): OCI indexes, Docker manifest lists, deletes enabled.

    ``blobs_at`` (``http://localhost:PORT``) makes blob reads answer 307 to that second host (the ``redirect`` storage
    middleware; :mod:`pipeline.local.blobstore` serves them and refuses credentials), as ECR's answer 307 to S3. Local
    mode puts :func:`registry_gate_service` in front of it for ECR's authorization and immutable tags.
    """
    state = state.resolve()
    config = state / "registry" / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(registry_data(state))}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if blobs_at:
        settings["middleware"] = {"storage": [{"name": "redirect", "options": {"baseurl": blobs_at}}]}
    # JSON is valid YAML; no YAML library needed.
    config.write_text(json.dumps(settings))
    return Service(
        name=f"registry 127.0.0.1:{port}",
        argv=[REGISTRY_BINARY, "serve", str(config)],
        log=state / "logs" / "registry.log",
        ready=lambda: registry_answers(f"127.0.0.1:{port}"),
    )


def registry_gate_service(state: Path, port: int, store: str, key: str, *, region: str = "") -> Service:
    """ECR's front door for the registry at ``store`` (:mod:`pipeline.local.registry_gate`): credentials from the AWS
    stand-in, per-repository IAM from the synthesized assembly (``state/cdk.out``), immutable release tags;
    ``region``: the gate of that replica region (:mod:`pipeline.local.replicas`)."""
    state = state.resolve()
    return Service(
        name=f"registry gate 127.0.0.1:{port}" + (f" ({region})" if region else ""),
        argv=[
            sys.executable,
            "-m",
            "pipeline.local.registry_gate",
            str(port),
            store,
            str(state / "cdk.out"),
            *([region] if region else []),
        ],
        log=state / "logs" / (f"registry-gate-{region}.log" if region else "registry-gate.log"),
        ready=lambda: registry_answers(f"127.0.0.1:{port}"),
        env={
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            registry_token.KEY_ENV: key,
            transfers.ENV: str(transfers.log_path(state)),
        },
    )


def registry_data(state: Path) -> Path:
    return state.resolve() / "registry" / "data"


def blobstore_service(state: Path, port: int) -> Service:
    """The S3 stand-in the registry redirects blob reads to (:mod:`pipeline.local.blobstore`)."""
    return Service(
        name=f"blobs 127.0.0.1:{port}",
        argv=[sys.executable, "-m", "pipeline.local.blobstore", str(registry_data(state)), str(port)],
        log=state / "logs" / "blobstore.log",
        ready=lambda: _any_http(f"http://127.0.0.1:{port}/"),
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), transfers.ENV: str(transfers.log_path(state))},
    )


def _any_http(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def dockerd_service(state: Path) -> tuple[Service, str]:
    """dockerd 26 from the builder prefix, images in containerd; returns the service and its DOCKER_HOST.

    No bridge and no iptables: this machine allows neither, so RUN steps use the host network. dockerd starts its own
    containerd (Debian's) under the exec root, so it shares nothing with any other daemon on the machine.
    """
    state = state.resolve()
    # unix sockets are limited to 108 bytes: keep the socket and exec-root short, outside a deep checkout.
    run_dir = Path("/run") / f"slipway-{hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:10]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    host = f"unix://{run_dir}/docker.sock"
    pidfile = run_dir / "dockerd.pid"
    # A dockerd that was killed leaves its pid file behind, and a new one refuses to start over it.
    with contextlib.suppress(FileNotFoundError, ValueError):
        if not pid_alive(int(pidfile.read_text().strip())):
            pidfile.unlink()
    config = state / "docker-daemon.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(DAEMON_CONFIG, indent=2) + "\n")
    prefix = builder_prefix()
    service = Service(
        name="dockerd",
        argv=[
            str(dockerd_binary()),
            f"--config-file={config}",
            f"--host={host}",
            f"--data-root={state / 'docker'}",
            f"--exec-root={run_dir / 'exec'}",
            f"--pidfile={pidfile}",
        ],
        log=state / "logs" / "dockerd.log",
        ready=lambda: docker_answers(host),
        # dockerd finds its helpers (docker-proxy; containerd and runc from Debian) on PATH.
        env={
            "PATH": f"{prefix / 'usr' / 'sbin'}:{prefix / 'usr' / 'bin'}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"
        },
    )
    return service, host


# With IAM enforced, moto serves this many requests unauthenticated: enough to create the stand-in's admin (user, its
# policy, its access key); everything after is checked against the caller's policies, as IAM checks it.
UNAUTHENTICATED_REQUESTS = 3


def moto_service(
    state: Path, port: int, *, account: str = "", enforce_iam: bool = False, token_key: str = ""
) -> Service:
    """``token_key``: sign ECR authorization tokens with the caller's identity (:mod:`pipeline.local.registry_token`)."""
    env = {"MOTO_ACCOUNT_ID": account} if account else {}
    env[STATE_ENV] = str(state)  # where Lambda's Invoke finds the builder and the registry
    if token_key:
        env[registry_token.KEY_ENV] = token_key
    if enforce_iam:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(UNAUTHENTICATED_REQUESTS)
    return Service(
        name=f"moto 127.0.0.1:{port}",
        argv=[sys.executable, "-m", "pipeline.local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        log=state / "logs" / "moto.log",
        ready=lambda: moto_answers(f"http://127.0.0.1:{port}"),
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


@contextlib.contextmanager
def running(service: Service, *, timeout: float = 60) -> Iterator[Service]:
    service.start(timeout=timeout)
    try:
        yield service
    finally:
        service.stop()
