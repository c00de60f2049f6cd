"""The load balancers' stand-in: what a deploy job's ``GET <health_url>`` reaches in the replay (through the job's
HTTPS proxy), answered with the health of the image the service runs now; other hosts tunnelled unchanged."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.deployers import ecs as ecs_module
from pipeline.local import load_balancer
from pipeline.local.load_balancer import Fronted
from tests.fakes import health_endpoint

HOST = "api.dev.payments.acme.example"
FRONTED = {HOST: Fronted("222222222222", "payments", "api", "api", "/health", "/health")}


@pytest.fixture
def balancer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[int]]]:
    """The stand-in with a probe whose image and status the test sets; the process reaches it as a job does."""
    images, statuses = ["api@sha256:" + "1" * 64], [200]

    def probe(fronted: Fronted) -> tuple[str, Callable[[], int]]:
        image = images[0]
        return image, lambda: statuses[0]

    _, environment = load_balancer.start(tmp_path, FRONTED, probe)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    # urlopen's opener reads the proxy variables once, when first built (a job's process starts with them set).
    monkeypatch.setattr(urllib.request, "_opener", None)
    try:
        yield images, statuses
    finally:
        load_balancer.stop_all()


def _until(url: str, wanted: int) -> list[int]:
    seen = [ecs_module.http_status(url)]
    deadline = time.monotonic() + 10
    while seen[-1] != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
        seen.append(ecs_module.http_status(url))
    return seen


def test_the_health_url_answers_503_until_the_current_image_answered_then_its_status(
    balancer: tuple[list[str], list[int]],
) -> None:
    images, statuses = balancer
    seen = _until(f"https://{HOST}/health", 200)
    assert seen[0] == 503 and seen[-1] == 200  # TLS verified against the local CA the job trusts
    images[0], statuses[0] = "api@sha256:" + "2" * 64, 500  # the service moved to an image that fails its health
    assert _until(f"https://{HOST}/health", 500)[-1] == 500
    assert ecs_module.http_status(f"https://{HOST}/other") == 404


def test_other_hosts_are_tunnelled_unchanged(balancer: tuple[list[str], list[int]]) -> None:
    import os

    proxy_port = int(os.environ["HTTPS_PROXY"].rsplit(":", 1)[1])
    with health_endpoint() as (url, _), socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as sock:
        target = url.split("//", 1)[1].split("/", 1)[0]
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.0 200")
        sock.sendall(f"GET /{url.split('/', 3)[3]} HTTP/1.0\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 200")
