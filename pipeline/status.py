"""``slipway status``: which release serves where, since when, and whether anyone changed it by hand.

For every service, environment and deploy target, the digest serving now is read **live from the target** -- the
Lambda alias's version, the ECS service's task definition, the EKS Deployment's pod template (each deployer's
``serving``, :mod:`pipeline.deployers`) -- in the environment's account and region, as the role given for it. Each
digest is then looked up among the service's releases in the registry the target pulls from (the index of a release
tag, or one of its children; its commit from the index's ``org.opencontainers.image.revision``), and compared with
what Slipway's last deploy there put (the tag or annotation each deploy writes on the target itself), beside what
proved it answered (the verification mark the deploy left there once it did).

A target **drifts** when it serves a digest no release names, or another digest than Slipway's last deploy put there
(someone moved the alias, registered a task definition, or edited the Deployment by hand). A deploy that did not
finish leaves the release before it serving, as designed: that target is **held** (not drift), naming the release
that did not land.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config.model import DeployTarget, PlatformConfig
from pipeline.deployers import DEPLOYERS
from pipeline.deployers.base import Serving
from pipeline.errors import SlipwayError
from pipeline.naming import service_repository_name
from pipeline.oci import INDEXES, index_children
from pipeline.references import ecr_registry
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.registry.base import RegistryError

OK, HELD, SHIFTING, DRIFT, NEVER, UNREADABLE = "ok", "held", "shifting", "drift", "never deployed", "unreadable"
NOT_RELEASES = ("-amd64", "-arm64", "-sig", "-provenance", "-sbom")
"""Tags of a release's children and attestations (:mod:`pipeline.attest`), never releases themselves."""
PLACEHOLDER = "sha256:" + "0" * 64
"""The digest a target is created on before its first deploy (the replay's, and a common convention)."""


@dataclass(frozen=True)
class Place:
    """One deploy target of one service, where it is: ``environment`` empty for the platform's own account."""

    team: str
    service: str
    environment: str
    account: str
    region: str
    target: DeployTarget
    repository: str
    """The repository the target pulls from (in another region than the platform's: the replica there)."""


@dataclass(frozen=True)
class Row:
    service: str
    environment: str
    account: str
    region: str
    target: str
    image: str
    release: str
    commit: str
    since: str
    deployed: str
    state: str
    why: str = ""
    verified: str = ""
    """What proved the serving digest answers and when, as its deploy recorded it on the target (empty: nothing
    did -- a target changed by hand, or deployed before Slipway recorded it)."""

    @property
    def digest(self) -> str:
        return self.image.rpartition("@")[2]

    def json(self) -> dict[str, str]:
        return {**asdict(self), "digest": self.digest}


def places(config: PlatformConfig) -> list[Place]:
    """Every deploy target of every service, in config order."""
    found = []
    home, platform = config.platform.region, config.platform.account
    for team, service in config.services():
        name = service_repository_name(team.name, service.name)
        where = [("", platform, home, service.deploy)]
        where += [(e.name, e.account, e.region or home, e) for e in service.environments]
        for environment, account, region, targets in where:
            repository = f"{ecr_registry(platform, region)}/{name}"
            found += [
                Place(team.name, service.name, environment, account, region, t, repository) for t in targets.targets()
            ]
    return found


Release = tuple[str, str]
"""``(tag, commit)`` of a release."""


class Releases:
    """The releases of each repository by digest -- the index and every child -- read from the registry index by
    index, only until every digest asked for is found (a repository keeps ``registry.keep_releases`` releases)."""

    def __init__(self, client_for: Callable[[str], RegistryClient]) -> None:
        self._client_for = client_for
        self._known: dict[str, dict[str, Release]] = {}
        self._read: dict[str, set[str]] = {}

    def find(self, repository: str, digest: str) -> Release | None:
        known = self._known.setdefault(repository, {})
        if digest in known:
            return known[digest]
        repo = RepositoryRef.parse(repository)
        client = self._client_for(repo.host)
        read = self._read.setdefault(repository, set())
        for tag in sorted(client.list_tags(repo), reverse=True):
            if tag in read or tag.startswith(("cache-", "sha256-")) or tag.endswith(NOT_RELEASES):
                continue
            read.add(tag)
            try:
                index = client.get_manifest(repo, tag, INDEXES)
            except RegistryError:
                continue
            commit = str(index.json().get("annotations", {}).get("org.opencontainers.image.revision", ""))
            for found in (index.digest, *(c.digest for c in index_children(index))):
                known.setdefault(found, (tag, commit))
            if digest in known:
                return known[digest]
        return None


def judge(serving: Serving, release: Release | None, repository: str) -> tuple[str, str]:
    """``(state, why)`` of one target."""
    digest = serving.image.rpartition("@")[2]
    if (not serving.image or digest == PLACEHOLDER) and not serving.deployed:
        return NEVER, ""
    if release is None:
        return DRIFT, f"serves {serving.image or 'nothing'}, which no release of {repository} names"
    if not serving.deployed:
        return DRIFT, f"serves release {release[0]}, but no Slipway deploy put it there"
    if serving.shifting and serving.previous == serving.image:
        return SHIFTING, f"{serving.shifting} ({serving.deployed}); the rest on the release before it"
    if serving.deployed != serving.image and serving.previous == serving.image:
        return HELD, f"the last deploy ({serving.deployed}) did not finish; the release before it serves"
    if serving.deployed != serving.image:
        return DRIFT, f"serves {serving.image}; Slipway's last deploy put {serving.deployed}"
    return OK, ""


Sessions = Callable[[Place], Any]
"""A boto3 session acting in a place's account and region."""


def collect(config: PlatformConfig, sessions: Sessions, releases: Releases) -> list[Row]:
    """One row per target, read live; a target that cannot be read is ``unreadable``, never skipped."""
    return list(_rows(config, sessions, releases))


def _rows(config: PlatformConfig, sessions: Sessions, releases: Releases) -> Iterator[Row]:
    for place in places(config):
        label, service = place.target.label, f"{place.team}/{place.service}"
        common = (service, place.environment, place.account, place.region, label)
        try:
            deployer = DEPLOYERS[place.target.kind].from_args(argparse.Namespace(render_only=None), sessions(place))
            serving = deployer.serving(place.target)
            release = releases.find(place.repository, serving.image.rpartition("@")[2]) if serving.image else None
        except (SlipwayError, BotoCoreError, ClientError) as exc:
            yield Row(*common, "", "", "", "", "", UNREADABLE, str(exc)[:300])
            continue
        state, why = judge(serving, release, place.repository)
        tag, commit = release or ("", "")
        yield Row(*common, serving.image, tag, commit, serving.since, serving.deployed, state, why,
                  serving.verification)  # fmt: skip


def drifted(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.state in (DRIFT, UNREADABLE)]
