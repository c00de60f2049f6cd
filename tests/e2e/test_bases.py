"""Curated bases and the Lambda base, as seeded on the real dockerd: both platforms, non-root, small, and the Lambda
base really serves an invocation through the Lambda Runtime API."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from pipeline import bases
from pipeline.builders.docker_cli import docker_binary, docker_env
from pipeline.local.state import LocalState
from tests.e2e.conftest import get

pytestmark = pytest.mark.e2e
INDEX = "application/vnd.oci.image.index.v1+json"
# Compressed bytes per platform; a regression past these is a bloated base.
BUDGET_MB = {
    "BASE_DEBIAN": 80,
    "BASE_PYTHON": 130,
    "BASE_PYTHON_BUILD": 160,
    "BASE_STATIC": 3,
    "BASE_LAMBDA_PYTHON": 140,
}
USERS = {"BASE_DEBIAN": "10001:10001", "BASE_PYTHON": "10001:10001", "BASE_PYTHON_BUILD": "10001:10001",
         "BASE_STATIC": "65532:65532", "BASE_LAMBDA_PYTHON": "10001:10001"}  # fmt: skip


def children(local: LocalState, reference: str) -> dict[str, dict]:
    repo, _, digest = reference.partition("@")
    name = repo.rsplit(":", 1)[0]
    index = json.loads(get(f"http://{local.registry}/v2/{name}/manifests/{digest}", INDEX))
    out = {}
    for entry in index["manifests"]:
        platform = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
        manifest = json.loads(get(f"http://{local.registry}/v2/{name}/manifests/{entry['digest']}", entry["mediaType"]))
        config = json.loads(get(f"http://{local.registry}/v2/{name}/blobs/{manifest['config']['digest']}"))
        size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        out[platform] = {"config": config, "size": size, "digest": entry["digest"], "repository": name}
    return out


@pytest.mark.parametrize("key", sorted(BUDGET_MB))
def test_curated_base_is_multi_arch_non_root_and_small(local: LocalState, key: str) -> None:
    lock = bases.load(local.lock_path)
    images = children(local, lock[key])
    assert set(images) == {"linux/amd64", "linux/arm64"}
    for platform, image in images.items():
        assert image["config"]["architecture"] == platform.split("/")[1]
        assert image["config"]["config"].get("User") == USERS[key], platform
        assert image["size"] < BUDGET_MB[key] * 1_000_000, (platform, image["size"])


class RuntimeApi(BaseHTTPRequestHandler):
    """The two Lambda Runtime API calls a function makes for one invocation."""

    event: ClassVar[dict[str, int]] = {"order": 42}
    response: bytes = b""
    done = threading.Event()

    def do_GET(self) -> None:
        if self.path.endswith("/runtime/invocation/next"):
            body = json.dumps(self.event).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111111111111:function:t")
            # The runtime client decodes the event by its Content-Type; without it the handler gets raw bytes.
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        RuntimeApi.response = self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        RuntimeApi.done.set()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("platform", "machine"), [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_lambda_base_serves_an_invocation(local: LocalState, platform: str, machine: str) -> None:
    # The platform's own child by digest: what Lambda would run.
    child = children(local, bases.load(local.lock_path)["BASE_LAMBDA_PYTHON"])[platform]
    image = f"{local.registry}/{child['repository']}@{child['digest']}"
    RuntimeApi.done.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"slipway-lambda-test-{machine}"
    env = {**os.environ, **docker_env(), "DOCKER_HOST": local.docker_host}
    container = subprocess.Popen(
        [docker_binary(), "run", "--rm", "--name", name, "--network", "host", "--platform", platform,
         "-e", f"AWS_LAMBDA_RUNTIME_API=127.0.0.1:{server.server_address[1]}", image],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        assert RuntimeApi.done.wait(timeout=120), "the function never answered"
        answer = json.loads(RuntimeApi.response)
        assert answer == {"echo": {"order": 42}, "machine": machine, "request_id": "req-1"}
    finally:
        subprocess.run([docker_binary(), "rm", "--force", name], capture_output=True, check=False, env=env)
        container.wait(timeout=30)
        server.shutdown()
