"""Local mode under faults: a taken port, a builder that dies mid-build, a registry that is down."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from pipeline.builders import BuildError, BuildRequest
from pipeline.builders.buildx import BuildxBuilder
from pipeline.local import lifecycle, services
from pipeline.local.state import LocalState
from pipeline.records import BuildRecord
from pipeline.registry.base import RegistryError
from pipeline.registry.distribution import DistributionClient
from pipeline.stitch import stitch

pytestmark = pytest.mark.integration


def test_port_taken_by_something_else_is_named_and_nothing_starts(tmp_path: Path) -> None:
    if not Path(services.REGISTRY_BINARY).exists():
        pytest.skip("docker-registry is not installed")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        state = LocalState.load(tmp_path)
        with pytest.raises(
            services.ServiceError,
            match=rf"registry: port {port} on 127.0.0.1 is taken by something that is not an OCI registry",
        ):
            lifecycle.up(state, registry_port=port, moto_port=services.free_port())
    assert not any(r.ours for r in LocalState.load(tmp_path).services.values())


def test_builder_dying_mid_build_is_one_clear_line(tmp_path: Path) -> None:
    """A docker CLI killed by a signal part-way (here: a stand-in that prints progress, then SIGKILLs itself)."""
    dying = tmp_path / "docker"
    dying.write_text(
        "#!/bin/sh\n"
        '[ "$1" = info ] && { echo \'[["driver-type","io.containerd.snapshotter.v1"]]\'; exit 0; }\n'
        "echo '#5 [build 2/4] RUN make'\nkill -9 $$\n"
    )
    dying.chmod(dying.stat().st_mode | stat.S_IEXEC)
    request = BuildRequest(
        repository="127.0.0.1:5999/payments/api",
        platform="linux/arm64",
        context=tmp_path,
        dockerfile=tmp_path / "Dockerfile",
    )
    with pytest.raises(
        BuildError,
        match=r"image 127.0.0.1:5999/payments/api \(linux/arm64\): docker buildx build failed \(exit -9\)\n#5 \[build 2/4\] RUN make",
    ):
        BuildxBuilder(docker=str(dying)).build(request)


def test_registry_down_names_the_registry_and_tags_nothing() -> None:
    port = services.free_port()
    build = BuildRecord(f"127.0.0.1:{port}/payments/api", "linux/amd64", "sha256:" + "a" * 64, 1, 1.0, "buildx")
    with pytest.raises(RegistryError, match=rf"registry unreachable at http://127.0.0.1:{port}"):
        stitch(DistributionClient(), [build], tag="c0ffee1")


def test_status_reports_down_services_without_failing(tmp_path: Path) -> None:
    state = LocalState.load(tmp_path)
    rows = lifecycle.status(state)
    assert [(r.name, r.running) for r in rows] == [
        ("registry", False),
        ("builder", False),
        ("aws", False),
        ("blobs", False),
        ("registry-store", False),
    ]
