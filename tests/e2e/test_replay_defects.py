"""Defects the first real push would have hit, each replayed on the local platform (issue #11). Defects 1-3 have their
own tests at the unit/integration level (Source prefix, Lint without platform.toml, credentials across the blob
redirect -- the last one now also in the replay: every blob read goes through the S3 stand-in)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import bases
from pipeline.local import runner
from pipeline.local.state import LocalState
from pipeline.oci import INDEXES, Manifest
from pipeline.records import ImageRecord
from pipeline.registry import RepositoryRef
from pipeline.registry.distribution import DistributionClient
from tests.e2e.conftest import CREDENTIALS

pytestmark = pytest.mark.e2e
DEBIAN = "slipway-payments-base-debian"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


def registry_client() -> DistributionClient:
    username, password = CREDENTIALS[0]
    return DistributionClient(authorization="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())


def test_the_weekly_rebuild_of_a_released_commit_publishes_beside_it(local: LocalState) -> None:
    """Defect 5: the scheduled base rebuild rebuilds HEAD; when upstream packages moved since last week the index is
    new, and the commit's release tag already names last week's. The rebuild must publish, not collide."""
    entry = bases.load(local.lock_path)["BASE_DEBIAN"]
    name, _, rest = entry.partition(":")
    tag, _, digest = rest.partition("@")
    repo = RepositoryRef(local.registry, name)
    client = registry_client()
    index = client.get_manifest(repo, digest, INDEXES)
    # Last week's release of this commit: another index under the same tag (one platform fewer stands in for older
    # packages -- what matters is that the digest differs). Written straight into the registry's store, behind the
    # gate: through it the tag would be refused, as ECR refuses to move an immutable tag -- this is history, not a push.
    older = index.json()
    older["manifests"] = older["manifests"][:1]
    store = RepositoryRef(local.services["registry-store"].address, name)
    DistributionClient().put_manifest(store, tag, Manifest(json.dumps(older).encode(), index.media_type))

    report = runner.fire_schedules(local, only={DEBIAN})

    assert [(a.action, a.status) for a in report.actions if a.status != "Succeeded"] == [], report.failed[0].detail
    assert {a.pipeline for a in report.actions} == {DEBIAN}
    rebuilt = ImageRecord.load(local.directory / "runs" / "payments-base-debian" / "image.json")
    assert rebuilt.index_digest == digest  # same commit, same pinned upstream: the same bytes as the lock's
    assert rebuilt.tag != tag and rebuilt.tag.startswith(tag)
    assert client.get_manifest(repo, tag, INDEXES).digest != digest  # last week's release is left as it was


def test_bases_update_in_a_fresh_checkout_pins_only_what_the_base_pipelines_published(
    local: LocalState, tmp_path: Path
) -> None:
    """Defect 4: the committed images/lock.json pins `…:src-<hash>@sha256:…` digests another registry made; the
    platform team's `slipway bases update`, run in its checkout against the account's ECR, must re-pin every curated
    base to a release its pipeline published there (and leave nothing the registry cannot serve)."""
    checkout = tmp_path / "platform"
    subprocess.run(["git", "clone", "--quiet", str(local.git_root / "acme" / "platform"), str(checkout)], check=True)
    # No BuildKit image exists offline (local builds use dockerd's own BuildKit): the one upstream pin left out.
    committed = bases.load(checkout / "images" / "lock.json")
    bases.save(checkout / "images" / "lock.json", {k: v for k, v in committed.items() if k != "BUILDKIT"})
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "slipway"), "bases", "update", "--registry", ECR],
        cwd=checkout, env={**os.environ, **runner.aws_environment(local)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lock = bases.load(checkout / "images" / "lock.json")
    commits = subprocess.run(["git", "rev-list", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.split()
    client = registry_client()
    curated = {k: v for k, v in lock.items() if k.startswith("BASE_")}
    assert set(curated) == {"BASE_DEBIAN", "BASE_PYTHON", "BASE_PYTHON_BUILD", "BASE_LAMBDA_PYTHON", "BASE_STATIC"}
    for key, value in lock.items():
        name, _, rest = value.partition(":")
        tag, _, digest = rest.partition("@")
        served = client.get_manifest(RepositoryRef(local.registry, name), tag, INDEXES)
        assert served.digest == digest, key
        if key in curated:
            assert tag.split(".")[0] in commits, (key, tag)
    assert "UPSTREAM_DEBIAN" in lock and lock["UPSTREAM_DEBIAN"] == bases.load(local.lock_path)["UPSTREAM_DEBIAN"]
