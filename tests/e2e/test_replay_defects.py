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

from pipeline import bases, platform_deploy
from pipeline.commands.local import run, seed
from pipeline.deployers.base import DeployRecord
from pipeline.local import runner
from pipeline.local.state import LocalState
from pipeline.oci import INDEXES
from pipeline.records import ImageRecord
from pipeline.registry import RepositoryRef
from pipeline.registry.distribution import DistributionClient
from tests.conftest import EXAMPLE
from tests.e2e.conftest import CREDENTIALS

pytestmark = pytest.mark.e2e
DEBIAN = "slipway-payments-base-debian"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


def registry_client() -> DistributionClient:
    username, password = CREDENTIALS[0]
    return DistributionClient(authorization="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())


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


def served(local: LocalState) -> dict[tuple[str, str, str], str]:
    """``{(service, environment, target kind): image}`` as the latest deploy record of each says."""
    found = {}
    for path in sorted((local.directory / "runs").glob("*/deployed-*.json")):
        record = DeployRecord.load(path)
        found[(path.parent.name, record.environment, record.target.split(":", 1)[0])] = record.image
    return found


def test_day_two_a_patched_upstream_reaches_every_service_with_no_new_template(
    local: LocalState, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #25: Docker Hub moves `debian:bookworm`; the weekly refresh (the platform pipeline's schedule) resolves
    the tag again and publishes the new digest to the lock store; that starts the debian base, whose publication
    starts the bases built on it, whose publications start the services -- each promoted dev → approval → prod. No
    new definition on the way: the platform pipeline's Deploy (it runs first) finds every pipeline as it was."""
    definitions = platform_deploy.definitions(local.directory / "cdk.out")
    before = served(local)
    assert len(before) == 6, before
    assert seed(state_dir=local.directory, config_path=EXAMPLE, republish=True) == 0
    capsys.readouterr()
    assert run(state_dir=local.directory, config_path=EXAMPLE, scheduled=True, approve=True, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    deployed = {(d["service"], d["environment"], d["target"].split(":", 1)[0]): d for d in report["deployments"]}
    assert set(deployed) == set(before)
    for key, deployment in deployed.items():
        assert deployment["verified"], key
        assert deployment["image"] != before[key], f"{key}: still on the digest it served before the update"
    # #29: prod's alias moved by its canary, 10 % first with its alarm read during the bake, then all of it
    assert deployed["payments-api", "prod", "lambda"]["strategy"] == {"kind": "canary", "outcome": "promoted", "steps": [
        {"percent": 10, "seconds": 10, "alarm_state": "OK"}, {"percent": 100, "seconds": 0, "alarm_state": ""}]}  # fmt: skip
    assert deployed["payments-api", "dev", "lambda"]["strategy"] == {"kind": "canary", "outcome": "promoted", "steps": [
        {"percent": 10, "seconds": 20, "alarm_state": "OK"}, {"percent": 100, "seconds": 0, "alarm_state": ""}]}  # fmt: skip
    assert deployed["payments-api", "dev", "ecs"]["strategy"] is None  # all at once, the default
    ran = {a["pipeline"] for a in report["actions"]}
    assert {"slipway-platform", DEBIAN, "slipway-payments-api", "slipway-search-indexer"} <= ran
    assert platform_deploy.definitions(local.directory / "cdk.out") == definitions
    rebuilt = ImageRecord.load(local.directory / "runs" / "payments-base-debian" / "image.json")
    assert rebuilt.tag.endswith(".2")  # the same commit on a new upstream: published beside the first release


def role_client(local: LocalState, pipeline: str, action: str) -> DistributionClient:
    """A registry client logged in as the CodeBuild role of ``action`` in ``pipeline`` (ECR's token for that role)."""
    import boto3

    from pipeline import assembly
    from pipeline.local import aws
    from pipeline.local.replay import authorize, iam
    from pipeline.registry import client_for_host

    outdir = local.directory / "cdk.out"
    found = next(p for p in assembly.load(outdir) if p.name == pipeline)
    project = found.projects[str(next(a for _, a in found.actions() if a.name == action).configuration["ProjectName"])]
    keys = iam.assumer(aws.client("sts", local.aws_endpoint), lambda: authorize.current(outdir).trusts)(project.role)
    session = boto3.Session(aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=keys["AWS_SESSION_TOKEN"], region_name="eu-west-1")  # fmt: skip
    client = client_for_host(ECR, session=session)
    assert isinstance(client, DistributionClient)
    return client


def test_the_pull_through_cache_imports_on_a_pull_by_tag_only_with_the_import_permissions(local: LocalState) -> None:
    """Issue #25, defect 3: ECR imports an upstream image into a pull-through cache only when a manifest is pulled by
    tag, and that first pull needs ecr:BatchImportUpstreamImage (and ecr:CreateRepository); a first pull by digest
    answers not found. busybox is in the upstream stand-in and nothing has pulled it through the cache yet."""
    from pipeline.local.pull_through import UPSTREAM
    from pipeline.registry.base import RegistryError

    upstream = registry_client().get_manifest(RepositoryRef(local.registry, f"{UPSTREAM}/docker-hub/library/busybox"),
                                              "1.35", INDEXES)  # fmt: skip
    cache = RepositoryRef(ECR, "docker-hub/library/busybox")
    with runner._acting_for(local):  # AWS at moto, the platform's ECR at the registry gate, as a job reaches them
        refresh = role_client(local, "slipway-platform", "Refresh")
        # The team's dev deploy role: the cache's grants go to build roles and the refresh (a team's build role
        # holds them for its Stitch jobs too: Lint, Build and Stitch share it), never to a deploy role.
        deploy = role_client(local, "slipway-payments-api", "Deploy-ecs")
        with pytest.raises(RegistryError, match=r"not found \(HTTP 404\)"):
            refresh.get_manifest(cache, upstream.digest, INDEXES)  # by digest, never imported: not found
        assert refresh.get_manifest(cache, "1.35", INDEXES).digest == upstream.digest  # by tag: imported
        assert refresh.get_manifest(cache, upstream.digest, INDEXES).digest == upstream.digest  # and by digest now
        with pytest.raises(RegistryError, match=r"HTTP 403 .*not authorized to perform: ecr:"):
            deploy.get_manifest(cache, "1.35", INDEXES)  # a role the cache's grants leave out
        with pytest.raises(RegistryError):  # the upstream stand-in is not part of the platform's registry
            refresh.get_manifest(RepositoryRef(ECR, f"{UPSTREAM}/docker-hub/library/busybox"), "1.35", INDEXES)


def test_a_push_to_the_platform_repository_deploys_it_and_starts_exactly_the_pipeline_it_changed(
    local: LocalState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #25, item 1: the platform deploys itself. A platform team asks for an approval before the indexer's
    deploys and pushes platform.toml; the platform pipeline's Deploy job synthesizes the pushed commit and deploys it
    (the CloudFormation stand-in, through the bootstrap roles), and starts the one pipeline whose definition changed
    -- no laptop, no other pipeline. Last in the session: it leaves the indexer's pipeline changed."""
    from pipeline.commands.local import push
    from pipeline.local.replay import sources

    checkout = tmp_path / "platform"
    subprocess.run(["git", "clone", "--quiet", str(sources.repository_path(local.git_root, "acme/platform")),
                    str(checkout)], check=True)  # fmt: skip
    config = checkout / "platform.toml"
    text = config.read_text()
    marker = (
        "    approval = false                  # true: a person approves each deploy\n\n    [teams.services.deploy.eks]"
    )
    assert marker in text
    config.write_text(text.replace(marker, marker.replace("approval = false", "approval = true ")))
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost"}  # fmt: skip
    subprocess.run(["git", "commit", "--quiet", "--all", "-m", "indexer: approve deploys"], cwd=checkout, check=True,
                   env={**os.environ, **identity})  # fmt: skip
    before = platform_deploy.definitions(local.directory / "cdk.out")
    capsys.readouterr()
    assert push(state_dir=local.directory, config_path=EXAMPLE, repository="acme/platform", as_json=True,
                approve=True, checkout=checkout) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    after = platform_deploy.definitions(local.directory / "cdk.out")
    assert {name for name in after if after[name] != before.get(name)} == {"slipway-search-indexer"}
    ran = {a["pipeline"] for a in report["actions"]}
    assert ran == {"slipway-platform", "slipway-search-indexer"}, ran
    stages = [a["stage"] for a in report["actions"] if a["pipeline"] == "slipway-platform"]
    assert stages.index("Deploy") < stages.index("Refresh")
    assert "Approve" in {a["action"] for a in report["actions"] if a["pipeline"] == "slipway-search-indexer"}
    assert {d["service"] for d in report["deployments"]} == {"search-indexer"}
    assert all(d["verified"] for d in report["deployments"])
