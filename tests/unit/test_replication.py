"""Issue #27 item 5: an environment in another region runs its release from the regional replica -- planned within
ECR's replication quotas, named by the same digests, and deployed only once the replica serves the whole release."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline import config, records, regional, replication
from pipeline.commands.deploy import deploy
from pipeline.config import LambdaTarget
from pipeline.deployers.base import DeployRecord, platform_image
from pipeline.oci import Manifest
from pipeline.records import ImageRecord
from pipeline.registry.base import RepositoryRef
from pipeline.stitch import StitchError, verify
from tests.fakes import MemoryRegistry, released
from tests.unit.test_config_boundaries import load, problems
from tests.unit.test_deploy_base import _Clock

HOME = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
REPLICA = "111111111111.dkr.ecr.us-east-1.amazonaws.com/payments/api"
REGIONS = ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
           "ap-southeast-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-2", "eu-west-3", "eu-north-1",
           "sa-east-1", "ap-east-1", "me-south-1", "af-south-1", "eu-south-1", "ap-northeast-3", "ap-southeast-3",
           "me-central-1", "eu-central-2", "eu-south-2", "ap-south-2", "il-central-1")  # fmt: skip


def test_a_service_with_an_environment_in_another_region_gets_one_rule_to_it(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["environments"][1]["region"] = "us-east-1"
    loaded = load(example_raw)
    assert replication.plan(loaded) == [replication.Rule(("us-east-1",), ("payments/api",))]
    example_raw["teams"][0]["services"][0]["environments"][1]["region"] = ""
    assert replication.plan(load(example_raw)) == []  # the platform's own region needs no replica


def _services(example_raw: dict[str, Any], regions_of: list[tuple[str, ...]]) -> dict[str, Any]:
    """The example with payments/api copied once per entry, each copy with one environment per region given."""
    team = example_raw["teams"][0]
    template = team["services"][0]
    template["environments"][1]["region"] = ""  # the example's own replica: not counted here
    copies = []
    for n, regions in enumerate(regions_of):
        service = copy.deepcopy(template)
        service["name"] = f"api{n}"
        dev = service["environments"][0]
        service["environments"] = [{**copy.deepcopy(dev), "name": f"in-{r}", "region": r} for r in regions]
        for environment in service["environments"]:
            environment["lambda"]["function_name"] = environment["ecs"]["service"] = f"api{n}"
        copies.append(service)
    team["services"] = [template, *copies]
    return example_raw


def test_services_sharing_regions_share_a_rule_of_at_most_100(example_raw: dict[str, Any]) -> None:
    rules = replication.plan(load(_services(example_raw, [("us-east-1",)] * 150 + [("us-west-2", "us-east-1")])))
    assert [(r.regions, len(r.repositories)) for r in rules] == [
        (("us-east-1",), 100), (("us-east-1",), 50), (("us-east-1", "us-west-2"), 1)
    ]  # fmt: skip
    assert rules[0].repositories[0] == "payments/api0" and rules[1].repositories[-1] == "payments/api149"


def test_more_rules_than_ecr_allows_are_refused_naming_the_service(example_raw: dict[str, Any]) -> None:
    raw = _services(example_raw, [(r,) for r in REGIONS[:11]])
    assert problems(raw) == [
        "teams[0].services[11].environments: ECR replication holds 10 rules of 100 repositories "
        f"({replication.DOCUMENTED}); services grouped by their regions need more here: give services the same set "
        "of regions"
    ]
    assert replication.plan(load(_services(example_raw, [(r,) for r in REGIONS[:10]])))


def test_more_destinations_than_ecr_allows_are_refused(example_raw: dict[str, Any]) -> None:
    assert problems(_services(example_raw, [REGIONS])) == [
        f"teams[0].services[1].environments: ECR replication reaches 25 destinations at most ({replication.DOCUMENTED}); "
        "this service brings the count to 26"
    ]


def test_the_replica_is_the_same_repository_and_digests_on_the_regions_registry() -> None:
    _, release = released(HOME)
    local = regional.regional(release, "us-east-1")
    assert local.repository == REPLICA
    assert (local.index_digest, local.platforms, local.tag) == (release.index_digest, release.platforms, release.tag)
    assert regional.regional(release, "eu-west-1") is release
    assert regional.regional(release, "") is release
    other = ImageRecord("registry.example/payments/api", release.tag, release.index_digest, release.platforms)
    assert regional.regional(other, "us-east-1") is other  # not ECR: no replica


class Replicating(MemoryRegistry):
    """The platform's repository, and its replica filled after ``after`` reads of it (children first, as ECR)."""

    def __init__(self, source: MemoryRegistry, after: int) -> None:
        super().__init__()
        self.manifests, self.blobs = source.manifests, source.blobs
        self.after, self.reads = after, 0

    def get_manifest(self, repo: RepositoryRef, reference: str, accept: Any) -> Manifest:
        if str(repo) == REPLICA:
            self.reads += 1
            if self.reads == self.after:
                for (name, ref), manifest in list(self.manifests.items()):
                    if name == HOME:
                        self.manifests[REPLICA, ref] = manifest
        return super().get_manifest(repo, reference, accept)


def test_a_deploy_waits_for_the_replica_then_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, release = released(HOME)
    records.write(tmp_path / "image.json", release)
    registry = Replicating(source, after=3)
    seen: list[ImageRecord] = []

    class Deployer:
        def deploy(self, record: ImageRecord, target: LambdaTarget, *, timeout: float) -> DeployRecord:
            seen.append(record)
            return DeployRecord(target.label, platform_image(record, "linux/arm64", target.label), "", True)

    clock = _Clock()
    waits = regional.await_replica
    monkeypatch.setattr(regional, "await_replica",
                        lambda *a, **k: waits(*a, **k, interval=5, clock=clock.monotonic, sleep=clock.sleep))  # fmt: skip
    deploy(Deployer(), LambdaTarget(function_name="payments-api", architecture="arm64"),  # type: ignore[arg-type]
           image_json=tmp_path / "image.json", out=tmp_path / "r.json", registry=registry, region="us-east-1")  # fmt: skip
    assert seen[0].repository == REPLICA and seen[0].index_digest == release.index_digest
    assert DeployRecord.load(tmp_path / "r.json").image == f"{REPLICA}@{release.platforms['linux/arm64'].digest}"
    assert clock.slept == [5, 5]  # two reads found nothing; the third found the release


def test_a_replica_that_never_arrives_fails_before_anything_changes() -> None:
    source, release = released(HOME)
    clock = _Clock()
    with pytest.raises(regional.ReplicaError) as raised:
        regional.await_replica(Replicating(source, after=0), regional.regional(release, "us-east-1"), verify,
                                  timeout=30, interval=10, clock=clock.monotonic, sleep=clock.sleep)  # fmt: skip
    assert str(raised.value).startswith(f"image {REPLICA}@{release.index_digest}: the replica does not serve the "
                                        "release after 30 s (")  # fmt: skip
    assert str(raised.value).endswith("run the deploy again; nothing was deployed")
    assert clock.slept == [10, 10, 10]


def test_a_replica_serving_other_content_fails_at_once() -> None:
    source, release = released(HOME)
    other, moved = released(HOME, platforms=("linux/amd64",))
    for (name, ref), manifest in list(source.manifests.items()):
        if name == HOME:
            source.manifests[REPLICA, ref] = manifest
    source.manifests[REPLICA, release.tag] = other.manifests[HOME, moved.index_digest]  # the tag names another index
    clock = _Clock()
    with pytest.raises(StitchError, match=f"tag serves {moved.index_digest}, image.json says {release.index_digest}"):
        regional.await_replica(source, regional.regional(release, "us-east-1"), verify, timeout=30,
                                  clock=clock.monotonic, sleep=clock.sleep)  # fmt: skip
    assert clock.slept == []


def test_the_replay_serves_each_region_at_its_own_address_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.registry.base import ENDPOINT_ENV, REGIONS_ENV, endpoint

    monkeypatch.setenv(ENDPOINT_ENV, "127.0.0.1:5000")
    monkeypatch.setenv(REGIONS_ENV, "eu-west-1=127.0.0.1:5000,us-east-1=127.0.0.1:5001")
    assert endpoint("111111111111.dkr.ecr.us-east-1.amazonaws.com") == "127.0.0.1:5001"
    assert endpoint("111111111111.dkr.ecr.eu-west-1.amazonaws.com") == "127.0.0.1:5000"
    # A region with no registry is not served (in the cloud: nothing replicated there), not the platform's.
    assert endpoint("111111111111.dkr.ecr.ap-south-1.amazonaws.com") == "111111111111.dkr.ecr.ap-south-1.amazonaws.com"
    assert endpoint("registry.example") == "registry.example"


def test_a_regions_gate_keeps_its_repositories_apart_and_replication_follows_the_rules() -> None:
    from pipeline.local import replicas

    assert replicas.namespaced("/v2/payments/api/manifests/sha256:ab", "us-east-1") == (
        "/v2/us-east-1/payments/api/manifests/sha256:ab"
    )
    assert replicas.namespaced("/v2/", "us-east-1") == "/v2/"
    assert replicas.namespaced("/v2/payments/api/tags/list", "") == "/v2/payments/api/tags/list"
    assert replicas.mounted_from("mount=sha256:ab&from=payments/api", "us-east-1") == (
        "mount=sha256:ab&from=us-east-1/payments/api"
    )
    assert replicas.outward("/v2/us-east-1/payments/api/blobs/uploads/u?x=1", "us-east-1") == (
        "/v2/payments/api/blobs/uploads/u?x=1"
    )
    rules = [(("us-east-1",), ("payments/api",)), (("us-east-1", "us-west-2"), ("search/",))]
    assert replicas.matches(rules, "payments/api") == ["us-east-1"]
    assert replicas.matches(rules, "search/indexer") == ["us-east-1", "us-west-2"]
    assert replicas.matches(rules, "payments/bases/python") == []


def test_at_500_services_with_prod_in_another_region_replication_needs_half_its_quota(tmp_path: Path) -> None:
    """The scale check (README, "Limits and quotas"): 500 services, each replicated to prod's region, fill 5 of the
    10 rules; past 1,000 such services validation says which service does not fit."""
    from benchmarks.platforms import platform_toml

    path = tmp_path / "platform.toml"
    path.write_text(platform_toml(500, prod_region="eu-central-1"))
    assert [(r.regions, len(r.repositories)) for r in replication.plan(config.load(path))] == [
        (("eu-central-1",), 100)
    ] * 5
    path.write_text(platform_toml(1001, prod_region="eu-central-1"))
    with pytest.raises(config.ConfigError) as raised:
        config.load(path)
    assert raised.value.problems == [
        "teams[100].services[0].environments: ECR replication holds 10 rules of 100 repositories "
        f"({replication.DOCUMENTED}); services grouped by their regions need more here: give services the same set "
        "of regions"
    ]
