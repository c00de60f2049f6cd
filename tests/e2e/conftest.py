"""One local platform per session for the end-to-end tests: up → seed → run (the replay of every pipeline in the
synthesized assembly, approvals given), and down (by PID) at the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import requests

from pipeline.commands.local import down, run, seed, up
from pipeline.local import lifecycle, services
from pipeline.local.state import LocalState
from tests.conftest import EXAMPLE, ROOT

CREDENTIALS: list[tuple[str, str]] = []
"""The registry's credentials (what moto's GetAuthorizationToken hands out), set once the platform is up."""


def get(url: str, accept: str = "") -> bytes:
    """A GET as a registry client makes it: Basic auth, and (requests' rule) no credentials across the blob redirect
    to the S3 stand-in, which refuses them."""
    response = requests.get(
        url, headers={"Accept": accept} if accept else {}, auth=CREDENTIALS[0] if CREDENTIALS else None, timeout=10
    )
    response.raise_for_status()
    return bytes(response.content)


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalState]:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the end-to-end test needs root (dockerd, debootstrap)")
        pytest.skip("the end-to-end test needs root (dockerd, debootstrap)")
    state_dir = tmp_path_factory.mktemp("local")
    cache = ROOT / ".slipway" / "cache"
    if cache.is_dir():  # reuse debootstrap output from a developer's `make demo`, if any
        shutil.copytree(cache, state_dir / "cache", copy_function=os.link, dirs_exist_ok=True)
    previous_docker_host = os.environ.get("DOCKER_HOST")
    os.environ.pop("DOCKER_HOST", None)
    registry_port, moto_port = services.free_port(), services.free_port()
    try:
        assert up(state_dir=state_dir, registry_port=registry_port, moto_port=moto_port, config_path=EXAMPLE) == 0
        auth = lifecycle.registry_auth(LocalState.load(state_dir))
        CREDENTIALS[:] = [(auth.username, auth.password)]
        assert seed(state_dir=state_dir, config_path=EXAMPLE) == 0
        assert run(state_dir=state_dir, config_path=EXAMPLE, approve=True) == 0
        yield LocalState.load(state_dir)
    finally:
        state = LocalState.load(state_dir)
        pids = [r.pid for r in state.services.values() if r.ours]
        down(state_dir=state_dir)
        assert not [pid for pid in pids if services.pid_alive(pid)], "down must stop what up started"
        if previous_docker_host is not None:
            os.environ["DOCKER_HOST"] = previous_docker_host
