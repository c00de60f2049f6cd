"""Local verification: the deployed digests themselves answer, on their own architecture (arm64 under QEMU).

moto records a Lambda, ECS or EKS deploy but runs nothing (its Lambda Invoke answers HTTP 500 for image functions).
So the stand-ins run what was deployed: Lambda's Invoke in the AWS stand-in runs the version's child behind a Lambda
Runtime API emulator (:mod:`pipeline.local.lambda_standin`); the ECS/EKS index, for the task's architecture, asked for its health path over HTTP (or, for an
image that serves no HTTP, run to its exit); the rendered EKS Deployment validated against Kubernetes' schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipeline.builders.docker_cli import docker_binary, docker_env, login_if_ecr
from pipeline.deployers.base import DeployError, Verification
from pipeline.deployers.workload import acting_as
from pipeline.local.services import free_port
from pipeline.registry.base import pull_address

RUN_TIMEOUT = 180.0
RUNTIME_DOCKER_CONFIG = "SLIPWAY_LOCAL_RUNTIME_DOCKER_CONFIG"
"""Where the replay logged in the puller that stands in for AWS's own (Lambda's service, the ECS agent): the checks
pull as it, never with the deploy job's registry login (a deploy role needs no ``ecr:GetAuthorizationToken``)."""
_MACHINE = re.compile(r"\b(x86_64|aarch64)\b")


class RuntimeApi(ThreadingHTTPServer):
    """The two Lambda Runtime API calls a function makes for one invocation: next event, then its response."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)
        self.event = event
        self.answer: bytes = b""
        self.error = False
        self.answered = threading.Event()
        self.served = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    server: RuntimeApi

    def do_GET(self) -> None:
        if not self.path.endswith("/runtime/invocation/next") or self.server.served:
            self.send_error(404)
            return
        self.server.served = True
        body = json.dumps(self.server.event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "slipway-smoke-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int((time.time() + RUN_TIMEOUT) * 1000)))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111111111111:function:local")
        # The runtime client decodes the event by its Content-Type; without it the handler gets raw bytes.
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.answer = self.rfile.read(length)
        self.server.error = self.path.endswith("/error")
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.answered.set()

    def log_message(self, *args: object) -> None:
        pass


def runtime_login(directory: Path, repository: str) -> dict[str, str]:
    """Log the runtime's puller in (this process's AWS credentials) under ``directory``; the environment naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    with acting_as({"DOCKER_CONFIG": str(directory)}):
        login_if_ecr(docker_binary(), repository)
    return {RUNTIME_DOCKER_CONFIG: str(directory)}


def _login(image: str) -> None:
    if not os.environ.get(RUNTIME_DOCKER_CONFIG):
        login_if_ecr(docker_binary(), image.split("@", 1)[0])


def _docker(*args: str, capture: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    runtime = {"DOCKER_CONFIG": os.environ[RUNTIME_DOCKER_CONFIG]} if os.environ.get(RUNTIME_DOCKER_CONFIG) else {}
    return subprocess.run(
        [docker_binary(), *args], env={**os.environ, **docker_env(), **runtime}, capture_output=capture, text=True,
        check=False, timeout=timeout,
    )  # fmt: skip


@contextlib.contextmanager
def _container(image: str, platform: str, env: dict[str, str], name: str) -> Iterator[str]:
    argv = ["run", "--detach", "--name", name, "--network", "host", "--platform", platform]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    _docker("rm", "--force", name)
    _login(image)
    started = _docker(*argv, pull_address(image), timeout=RUN_TIMEOUT)
    if started.returncode != 0:
        raise DeployError(f"local check of {image} ({platform}): docker run failed: {started.stderr.strip()[-300:]}")
    try:
        yield name
    finally:
        _docker("rm", "--force", name)


def _logs(name: str) -> str:
    completed = _docker("logs", name)
    return (completed.stdout + completed.stderr).strip()[-400:]


def run_invocation(function_name: str, version: str, image: str, event: Any, *, platform: str) -> tuple[bytes, bool]:
    """Run the version's image on its platform behind a Runtime API emulator and invoke it once with ``event``:
    ``(payload, errored)`` as Lambda's Invoke answers them (a function that never answers is Lambda's timeout, an
    unhandled error)."""
    api = RuntimeApi(event)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    name = f"slipway-invoke-{function_name}-{version}".replace("$", "")
    try:
        with _container(image, platform, {"AWS_LAMBDA_RUNTIME_API": api.address}, name):
            if not api.answered.wait(timeout=RUN_TIMEOUT):
                why = f"Task timed out after {RUN_TIMEOUT:.0f} seconds; log: {_logs(name)}"
                return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": why}).encode(), True
    finally:
        api.shutdown()
        api.server_close()
    return api.answer or b"null", api.error


def http_check(image: str, platform: str, path: str, *, name: str) -> Verification:
    """Start the image with ``HOST``/``PORT`` set (loopback only: it shares the host's network) and ``GET path``
    until it answers (bounded)."""
    port = free_port()
    with _container(image, platform, {"HOST": "127.0.0.1", "PORT": str(port)}, name):
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                    body = json.loads(response.read() or b"{}")
                    found = str(body.get("machine", "")) if isinstance(body, dict) else ""
                    return Verification(True, f"GET {path}", response.status, found)
            except urllib.error.HTTPError as exc:
                return Verification(False, f"GET {path}", exc.code)
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        raise DeployError(f"local check of {image} ({platform}): GET {path} never answered; log: {_logs(name)}")


def run_check(image: str, platform: str, *, name: str) -> Verification:
    """An image that serves no HTTP: run it to its exit (stdin closed) and read the machine it reports."""
    _login(image)
    completed = _docker("run", "--rm", "--name", name, "--network", "host", "--platform", platform,
                        pull_address(image), timeout=RUN_TIMEOUT)  # fmt: skip
    found = _MACHINE.search(completed.stdout + completed.stderr)
    return Verification(completed.returncode == 0, "run", completed.returncode, found[1] if found else "")


def schema_check(manifest: Path) -> None:
    """The rendered Deployment against Kubernetes' own schema (kubernetes-validate ships the schemas)."""
    try:
        import kubernetes_validate
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise DeployError("local EKS check needs kubernetes-validate (pip install 'slipway[dev]')") from exc
    try:
        kubernetes_validate.validate(json.loads(manifest.read_text()), "1.32", strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise DeployError(f"{manifest}: Kubernetes rejects the Deployment: {exc}") from exc
