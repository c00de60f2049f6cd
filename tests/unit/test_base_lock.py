"""`slipway bases update`'s rule for curated bases: the newest release their own pipelines published."""

from __future__ import annotations

import json
from typing import Any

from pipeline import bases
from pipeline.registry.base import RepositoryRef
from tests.fakes import MemoryRegistry

REGISTRY = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
OLD, MID, NEW = "a" * 40, "b" * 40, "c" * 40


def release(registry: MemoryRegistry, name: str, tag: str, layer: bytes) -> str:
    repo = f"{REGISTRY}/{name}"
    digest = registry.add_image(repo, "linux", "amd64", layer=layer)
    manifest = registry.get_manifest(RepositoryRef.parse(repo), digest, [])
    registry.put_manifest(RepositoryRef.parse(repo), tag, manifest)
    return digest


def test_the_newest_commit_wins_then_the_latest_rebuild_of_it() -> None:
    registry = MemoryRegistry()
    release(registry, "payments/bases/python", OLD, b"1")
    release(registry, "payments/bases/python", MID, b"2")
    release(registry, "payments/bases/python", f"{MID}.2", b"3")
    newest = release(registry, "payments/bases/python", f"{MID}.10", b"4")
    release(registry, "payments/bases/python", "src-5dc67931fb1c2521", b"5")  # not a commit of this repository
    release(registry, "payments/bases/python", "d" * 40, b"6")  # a commit of another branch or repository
    found = bases.published(registry, REGISTRY, {"BASE_PYTHON": "payments/bases/python"}, [NEW, MID, OLD])
    assert found == {"BASE_PYTHON": f"payments/bases/python:{MID}.10@{newest}"}


def test_a_base_nobody_published_yet_is_left_out() -> None:
    registry = MemoryRegistry()
    debian = release(registry, "payments/bases/debian", NEW, b"1")
    found = bases.published(
        registry, REGISTRY, {"BASE_DEBIAN": "payments/bases/debian", "BASE_PYTHON": "payments/bases/python"}, [NEW]
    )
    assert found == {"BASE_DEBIAN": f"payments/bases/debian:{NEW}@{debian}"}


def test_only_base_pipelines_publish_rebuilds_of_a_released_commit(synthesized: dict[str, Any]) -> None:
    """The weekly base rebuild reuses the commit; a service's release tag must still never name a second index."""

    def stitches(stack: str) -> list[str]:
        projects = synthesized["templates"][stack].find_resources("AWS::CodeBuild::Project").values()
        commands = [
            c
            for p in projects
            for c in json.loads(p["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"]
        ]
        return [c for c in commands if c.startswith("slipway stitch")]

    bases_, services = stitches("Slipway-Acme-Bases-payments-1"), stitches("Slipway-Acme-Pipelines-payments-1")
    assert len(bases_) == 4 and all(" --rebuilds " in c for c in bases_)
    assert services and not any("--rebuilds" in c for c in services)
