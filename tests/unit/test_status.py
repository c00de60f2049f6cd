"""Issue #31 item 1: ``slipway status`` reads what serves from each target, names its release, and reports drift."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from pipeline import status, status_page
from pipeline.config import load
from pipeline.deployers.base import DeployError, Serving
from pipeline.deployers.lambda_ import IMAGE_TAG, PREVIOUS_TAG, LambdaDeployer
from pipeline.registry.base import RepositoryRef
from tests.conftest import EXAMPLE
from tests.fakes import MemoryRegistry, released
from tests.unit.test_lambda_deployer import TARGET, FakeLambda, answering

HOME = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api"


def _release() -> tuple[MemoryRegistry, Any]:
    registry, release = released(HOME)
    return registry, release


def test_a_release_is_found_by_its_index_or_any_child_with_its_commit() -> None:
    registry, release = _release()
    releases = status.Releases(lambda host: registry)
    assert releases.find(HOME, release.index_digest) == (release.tag, "")  # stitched without a commit annotation
    assert releases.find(HOME, release.platforms["linux/arm64"].digest) == (release.tag, "")
    assert releases.find(HOME, "sha256:" + "9" * 64) is None


@pytest.mark.parametrize(
    ("serving", "found", "state", "why"),
    [
        (Serving(f"{HOME}@{status.PLACEHOLDER}", ""), None, status.NEVER, ""),
        (Serving(f"{HOME}@sha256:{'a' * 64}", f"{HOME}@sha256:{'a' * 64}"), ("c0ffee", "c0ffee"), status.OK, ""),
        (Serving(f"{HOME}@sha256:{'b' * 64}", f"{HOME}@sha256:{'a' * 64}"), None, status.DRIFT,
         f"serves {HOME}@sha256:{'b' * 64}, which no release of {HOME} names"),
        (Serving(f"{HOME}@sha256:{'b' * 64}", f"{HOME}@sha256:{'a' * 64}"), ("beef", "beef"), status.DRIFT,
         f"serves {HOME}@sha256:{'b' * 64}; Slipway's last deploy put {HOME}@sha256:{'a' * 64}"),
        (Serving(f"{HOME}@sha256:{'b' * 64}", ""), ("beef", "beef"), status.DRIFT,
         "serves release beef, but no Slipway deploy put it there"),
        (Serving(f"{HOME}@sha256:{'b' * 64}", f"{HOME}@sha256:{'a' * 64}", previous=f"{HOME}@sha256:{'b' * 64}"),
         ("beef", "beef"), status.HELD,
         f"the last deploy ({HOME}@sha256:{'a' * 64}) did not finish; the release before it serves"),
        (Serving(f"{HOME}@sha256:{'b' * 64}", f"{HOME}@sha256:{'a' * 64}", previous=f"{HOME}@sha256:{'b' * 64}",
                 shifting="10 % on version 8"), ("beef", "beef"), status.SHIFTING,
         f"10 % on version 8 ({HOME}@sha256:{'a' * 64}); the rest on the release before it"),
    ],
)  # fmt: skip
def test_each_state_and_why(serving: Serving, found: Any, state: str, why: str) -> None:
    assert status.judge(serving, found, HOME) == (state, why)


def test_every_target_of_the_example_is_a_place_pulling_from_its_regions_registry() -> None:
    found = {(p.service, p.environment, p.target.label): (p.account, p.region, p.repository)
             for p in status.places(load(EXAMPLE))}  # fmt: skip
    replica = "111111111111.dkr.ecr.eu-central-1.amazonaws.com/payments/api"
    assert found == {
        ("api", "dev", "lambda:payments-api"): ("222222222222", "eu-west-1", HOME),
        ("api", "dev", "ecs:payments/api"): ("222222222222", "eu-west-1", HOME),
        ("api", "prod", "lambda:payments-api"): ("555555555555", "eu-central-1", replica),
        ("api", "prod", "ecs:payments/api"): ("555555555555", "eu-central-1", replica),
        ("indexer", "", "eks:search/search/indexer"):
            ("111111111111", "eu-west-1", "111111111111.dkr.ecr.eu-west-1.amazonaws.com/search/indexer"),
        ("indexer", "", "ecs:search/indexer"):
            ("111111111111", "eu-west-1", "111111111111.dkr.ecr.eu-west-1.amazonaws.com/search/indexer"),
    }  # fmt: skip


def test_the_lambda_deployer_reads_what_the_alias_serves_and_what_slipway_put() -> None:
    _, release = _release()
    fake = FakeLambda()
    deployer = LambdaDeployer(fake, poll_seconds=0, invoke=answering({"statusCode": 200}))
    assert deployer.serving(TARGET).image == ""  # before the first deploy: no alias
    deployed = deployer.deploy(release, TARGET, timeout=5).image
    assert deployer.serving(TARGET) == Serving(deployed, deployed, "1", "", f"{HOME}@sha256:{'0' * 64}")
    fake.aliases["live"] = "0"
    fake.versions["0"] = (f"{HOME}@sha256:{'e' * 64}", f"{HOME}@sha256:{'e' * 64}")  # moved by hand
    assert deployer.serving(TARGET).image == f"{HOME}@sha256:{'e' * 64}" and fake.tags[IMAGE_TAG] == deployed


def test_the_lambda_deployer_reads_a_split_and_status_calls_it_shifting() -> None:
    """A canary under way (#29): the alias names the previous version and weights the new one."""
    _, release = _release()
    fake = FakeLambda()
    deployer = LambdaDeployer(fake, poll_seconds=0, invoke=answering({"statusCode": 200}))
    first = deployer.deploy(release, TARGET, timeout=5).image
    new = f"{HOME}@sha256:{'f' * 64}"
    fake.versions["2"] = (new, new)
    fake.weights["live"] = {"2": 0.1}
    fake.tags.update({IMAGE_TAG: new, PREVIOUS_TAG: first})
    serving = deployer.serving(TARGET)
    assert (serving.image, serving.shifting) == (first, "10 % on version 2")
    assert status.judge(serving, ("c0ffee", ""), HOME) == (
        status.SHIFTING, f"10 % on version 2 ({new}); the rest on the release before it"
    )  # fmt: skip


class _Fixed:
    """A deployer whose target serves what the test says (or cannot be read)."""

    serves: ClassVar[dict[str, Serving | Exception]] = {}

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> _Fixed:
        return cls()

    def serving(self, target: Any) -> Serving:
        found = self.serves[target.label]
        if isinstance(found, Exception):
            raise found
        return found


def test_collect_reads_every_target_and_names_what_drifted(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, release = _release()
    replica, indexer = HOME.replace("eu-west-1", "eu-central-1"), HOME.replace("payments/api", "search/indexer")
    for name in (replica, indexer):
        for (repository, reference), manifest in list(registry.manifests.items()):
            if repository == HOME:
                registry.manifests[name, reference] = manifest
    child = release.platforms["linux/arm64"].digest
    _Fixed.serves = {
        "lambda:payments-api": Serving(
            f"{HOME}@{child}", f"{HOME}@{child}", verified=f"{child} 2026-12-04T09:00:00Z invoke 200"
        ),
        "ecs:payments/api": Serving(f"{HOME}@{release.index_digest}", f"{HOME}@{release.index_digest}"),
        "eks:search/search/indexer": DeployError("kubectl get: connection refused"),
        "ecs:search/indexer": Serving(f"{indexer}@sha256:{'d' * 64}", f"{indexer}@{release.index_digest}"),
    }
    monkeypatch.setattr(status, "DEPLOYERS", {"lambda": _Fixed, "ecs": _Fixed, "eks": _Fixed})
    rows = status.collect(load(EXAMPLE), lambda place: None, status.Releases(lambda host: registry))
    assert [(r.service, r.environment, r.target, r.state) for r in rows] == [
        ("payments/api", "dev", "lambda:payments-api", status.OK),
        ("payments/api", "dev", "ecs:payments/api", status.OK),
        ("payments/api", "prod", "lambda:payments-api", status.OK),
        ("payments/api", "prod", "ecs:payments/api", status.OK),
        ("search/indexer", "", "ecs:search/indexer", status.DRIFT),
        ("search/indexer", "", "eks:search/search/indexer", status.UNREADABLE),
    ]
    assert rows[0].release == release.tag and rows[0].digest == child
    assert (rows[0].verified, rows[1].verified) == ("invoke 200 at 2026-12-04T09:00:00Z", "")
    assert [r.target for r in status.drifted(rows)] == ["ecs:search/indexer", "eks:search/search/indexer"]
    assert rows[5].why == "kubectl get: connection refused"


def _row(service: str, environment: str, state: str, why: str = "", verified: str = "") -> status.Row:
    return status.Row(service, environment, "222222222222", "eu-west-1", "lambda:f", f"{HOME}@sha256:{'a' * 64}",
                      "c0ffee", "c0ffee", "2026-12-04T10:00:00.000+0000", "", state, why, verified)  # fmt: skip


def test_the_page_is_a_matrix_of_services_and_environments_with_drift_marked() -> None:
    rows = [_row("payments/api", "dev", status.OK, verified="GET /health 200 at 2026-12-04T10:01:00Z"),
            _row("payments/api", "prod", status.DRIFT, "moved <by hand>"),
            _row("search/indexer", "", status.OK)]  # fmt: skip
    page = status_page.render(rows, platform="acme", now=datetime(2026, 12, 4, 12, 30, tzinfo=UTC))
    assert page.count('<tr data-service="') == 2 and page.count('<td data-environment="') == 6
    assert 'data-state="drift"' in page and "moved &lt;by hand&gt;" in page and "<by hand>" not in page
    assert "aaaaaaaaaaaa</code> c0ffee · 2h" in page and "3 targets, 1 drifting" in page
    assert page.count('class="verified"') == 1 and "verified: GET /health 200 at 2026-12-04T10:01:00Z" in page


@pytest.mark.parametrize(
    ("since", "shown"),
    [("2026-12-04T12:00:00.000+0000", "30m"), ("2026-12-01 12:30:00+00:00", "3d"), ("", "-"), ("soon", "-")],
)
def test_ages_read_every_way_aws_writes_a_time(since: str, shown: str) -> None:
    assert status_page.age(since, datetime(2026, 12, 4, 12, 30, tzinfo=UTC)) == shown


def test_a_repository_that_cannot_be_read_makes_its_targets_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(MemoryRegistry):
        def list_tags(self, repo: RepositoryRef) -> list[str]:
            from pipeline.registry.base import RegistryError

            raise RegistryError(f"tags of {repo}: HTTP 403 denied")

    _Fixed.serves = {k: Serving(f"{HOME}@sha256:{'a' * 64}", "") for k in
                     ("lambda:payments-api", "ecs:payments/api", "eks:search/search/indexer", "ecs:search/indexer")}  # fmt: skip
    monkeypatch.setattr(status, "DEPLOYERS", {"lambda": _Fixed, "ecs": _Fixed, "eks": _Fixed})
    rows = status.collect(load(EXAMPLE), lambda place: None, status.Releases(lambda host: Refusing()))
    assert {r.state for r in rows} == {status.UNREADABLE} and "HTTP 403 denied" in rows[0].why
