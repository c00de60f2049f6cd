"""The base lock at run time: one SSM parameter per entry, read by the jobs when they run, never baked into a template.

Why SSM Parameter Store, one parameter per lock key (``/slipway/<platform>/lock/BASE_PYTHON``):

- **Run time, not synth time.** A CodeBuild project holds only the path; a base release reaches what is built on it
  without a new template (CloudFormation would need a laptop's ``cdk deploy`` for that).
- **Versioned and auditable.** Every ``PutParameter`` is a new version with who and when (``GetParameterHistory``, the
  last 100 versions) and a CloudTrail event; no commit bot needs write access to the platform repository.
- **One writer per entry.** A base's own pipeline writes its entry (its Stitch role may write that parameter only);
  the platform pipeline's refresh writes the upstream entries. Entries never race in one shared document, and a
  standard parameter (4 KB, 10,000 per account and region: no cost) holds one entry with room to spare at 250 bases.

Who rebuilds on a new entry: each Build job registers the keys its ``FROM`` lines use under
``/slipway/<platform>/dependents/<pipeline>`` *before* reading them; a service's then again with the entries it read,
a curated base's only once its release is published (until then it is about to change). A publication starts the registered pipelines that are stale -- built with
other entries than the store holds -- unless a base they use is itself about to change (:meth:`Wave.ready`):
each pipeline of a wave builds once, on all its new bases. Registering first means a pipeline that found its base
missing is always started when the base arrives (either the publisher sees the registration, or the build sees the
entry); judging by staleness means a retried publication finishes its starts, and an unchanged digest starts only
what waited for it.

A team's budget (``rebuild_concurrency``, N): its registered pipelines, in name order, are dealt into N *lanes*. A
publication starts the first ready pipeline of each lane; a pipeline's Stitch job, once its images are built, starts
the next ready one of its own lane (:meth:`LockStore.continue_lane`). So a wave runs at most N of a team's pipelines'
builds at once and leaves the rest of the account's build capacity to pushes, with no scheduler and no state besides
the registrations. A Build job marks its registration *building* and holds its lane until its Stitch -- or, failed, its
post_build -- gives it up; a mark counts for :data:`BUILDING_FOR` at most (a job killed by its timeout says nothing).
A lane whose pipeline failed before its Build goes on at the next publication (the weekly refresh publishes every
upstream again), which starts each idle lane's first ready pipeline.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from pipeline.errors import InputError

PARAMETERS_ENV = "SLIPWAY_LOCK_PARAMETERS"
"""The lock's parameter path (``/slipway/<platform>/lock/``): what a CodeBuild project holds instead of the lock."""
DEPENDENTS_ENV = "SLIPWAY_DEPENDENTS_PARAMETERS"
"""Where pipelines register the lock keys they build on (``/slipway/<platform>/dependents/``)."""
PIPELINE_ENV = "SLIPWAY_PIPELINE"
"""The job's own pipeline (``slipway-payments-api``): the name it registers under, and the one publications start."""
PUBLISHES_ENV = "SLIPWAY_LOCK_KEY"
"""A curated base's own lock key (``BASE_PYTHON``): what its releases become."""
TEAM_ENV = "SLIPWAY_TEAM"
"""The job's team: its pipelines share the team's rebuild lanes."""
LANES_ENV = "SLIPWAY_REBUILD_LANES"
"""The team's rebuild budget (``rebuild_concurrency``): how many of its pipelines a wave runs at once."""
_GET_BATCH = 10  # GetParameters takes at most 10 names
BUILDING_FOR = 2 * 3600
"""Seconds a registration counts as building: twice the Build jobs' 60-minute timeout."""


class LockStoreError(InputError):
    pass


def lock_path(platform: str) -> str:
    return f"/slipway/{platform}/lock/"


def dependents_path(platform: str) -> str:
    return f"/slipway/{platform}/dependents/"


_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def digest_of(entry: str) -> str:
    found = _DIGEST.search(entry)
    return found.group(1) if found else ""


@dataclass(frozen=True)
class Registration:
    """What a pipeline's last Build job registered: the entries it built with, and the key it publishes."""

    pipeline: str
    uses: dict[str, str]
    publishes: str = ""
    team: str = ""
    lanes: int = 0
    """The team's budget when it registered (0: none, the pipeline starts as soon as it is ready)."""
    building: float = 0
    """When its Build job started building on ``uses`` (epoch seconds); 0 once it stitched or failed."""

    @classmethod
    def parse(cls, pipeline: str, value: str) -> Registration:
        try:
            data = json.loads(value)
            uses = {str(k): str(v) for k, v in dict(data["uses"]).items()}
            return cls(
                pipeline, uses, str(data.get("publishes", "")), str(data.get("team", "")), int(data.get("lanes", 0)),
                float(data.get("building", 0)),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):  # not one of ours: it builds on nothing known
            return cls(pipeline, {})


@dataclass(frozen=True)
class Wave:
    """The registrations and the entries the store holds now: who is ready to build, and in which lane."""

    registered: tuple[Registration, ...]
    current: dict[str, str]
    now: float = 0

    def _producers(self) -> dict[str, Registration]:
        return {r.publishes: r for r in self.registered if r.publishes}

    def stale(self, r: Registration) -> bool:
        return any(self.current.get(k) != entry for k, entry in r.uses.items())

    def ready(self, key: str) -> list[str]:
        """The pipelines to start now that ``key`` is published: registered as building on it, *stale* (they last
        built with other entries than the store holds, or never did), every base they use in the store, and none of
        those bases about to change -- its producer stale, or upstream of a stale one. Such a pipeline is started by
        that base's publication instead, so a wave builds each pipeline once, on every new base at once."""
        producer = self._producers()

        def changing(r: Registration, seen: frozenset[str] = frozenset()) -> bool:
            if self.stale(r):
                return True
            inputs = [producer[k] for k in r.uses if k in producer and producer[k].pipeline not in seen]
            return any(changing(p, seen | {r.pipeline}) for p in inputs)

        return [
            r.pipeline for r in self.registered
            if key in r.uses and set(r.uses) <= set(self.current) and self.stale(r)
            and not any(changing(producer[k]) for k in r.uses if k in producer and producer[k].pipeline != r.pipeline)
        ]  # fmt: skip

    @cached_property
    def _lanes(self) -> dict[str, tuple[str, int]]:
        """Each budgeted team's registrations in name order, dealt into as many lanes as its budget (the smallest
        any of them registered with)."""
        teams: dict[str, list[Registration]] = {}
        for r in self.registered:
            if r.team and r.lanes > 0:
                teams.setdefault(r.team, []).append(r)
        found = {}
        for team, members in teams.items():
            lanes = min(r.lanes for r in members)
            for i, r in enumerate(sorted(members, key=lambda r: r.pipeline)):
                found[r.pipeline] = (team, i % lanes)
        return found

    def lane(self, pipeline: str) -> tuple[str, int] | None:
        """``(team, lane)``; ``None``: no budget."""
        return self._lanes.get(pipeline)

    def busy(self, lane: tuple[str, int]) -> bool:
        """A pipeline of ``lane`` is building (for at most :data:`BUILDING_FOR`: a job killed by its timeout never
        says it stopped)."""
        return any(
            self.lane(r.pipeline) == lane and 0 < self.now - r.building < BUILDING_FOR for r in self.registered
        )  # fmt: skip

    def heads(self, ready: list[str]) -> list[str]:
        """Of ``ready``, what starts now: the first of each lane where nothing is building, and every pipeline
        without a budget."""
        taken: set[tuple[str, int]] = set()
        found = []
        for pipeline in sorted(ready):
            lane = self.lane(pipeline)
            if lane is None:
                found.append(pipeline)
            elif lane not in taken:
                taken.add(lane)
                if not self.busy(lane):
                    found.append(pipeline)
        return found


@dataclass(frozen=True)
class Publication:
    key: str
    entry: str
    previous: str
    changed: bool
    started: tuple[str, ...] = field(default=())
    queued: tuple[str, ...] = field(default=())
    """Ready, but their team's lanes are taken: each starts when the one ahead of it in its lane has built."""


@dataclass(frozen=True)
class LockStore:
    """``ssm``: a boto3 SSM client; ``pipelines``: a CodePipeline client (publications only)."""

    ssm: Any
    parameters: str
    dependents_parameters: str = ""
    pipelines: Any = None
    team: str = ""
    lanes: int = 0
    """The job's team and its rebuild budget, written into the registrations its pipeline makes."""

    def name(self, key: str) -> str:
        return self.parameters + key

    def read(self, keys: Iterable[str]) -> dict[str, str]:
        """The entries of ``keys`` that the store holds (a key it lacks is simply absent)."""
        wanted = sorted(set(keys))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), _GET_BATCH):
            names = [self.name(k) for k in wanted[start : start + _GET_BATCH]]
            answer = self.ssm.get_parameters(Names=names)
            for parameter in answer.get("Parameters", []):
                found[str(parameter["Name"]).removeprefix(self.parameters)] = str(parameter["Value"])
        return found

    def entries(self) -> dict[str, str]:
        """Every entry the store holds now."""
        found = {}
        for page in self.ssm.get_paginator("get_parameters_by_path").paginate(Path=self.parameters.rstrip("/")):
            for parameter in page.get("Parameters", []):
                found[str(parameter["Name"]).removeprefix(self.parameters)] = str(parameter["Value"])
        return found

    def register(self, pipeline: str, uses: dict[str, str], publishes: str = "", *, building: bool = False) -> None:
        """``pipeline`` builds on the keys of ``uses``, whose values are the entries it builds with (``""``: not read
        yet); ``publishes``: the key its releases become (a curated base); ``building``: its Build job builds on them
        now, which holds its rebuild lane until it stitches or fails (:meth:`continue_lane`)."""
        if not self.dependents_parameters or not pipeline:
            return
        data: dict[str, Any] = {"uses": dict(sorted(uses.items())), "publishes": publishes}
        if self.team and self.lanes > 0:
            data.update(team=self.team, lanes=self.lanes)
            if building:
                data.update(building=int(time.time()))
        value = json.dumps(data, separators=(",", ":"))
        self.ssm.put_parameter(
            Name=self.dependents_parameters + pipeline, Value=value, Type="String", Overwrite=True,
            Description="The lock entries this pipeline's Dockerfile builds on (written by its Build job)",
        )  # fmt: skip

    def registrations(self) -> list[Registration]:
        found = []
        pages = self.ssm.get_paginator("get_parameters_by_path")
        for page in pages.paginate(Path=self.dependents_parameters.rstrip("/"), Recursive=False):
            for parameter in page.get("Parameters", []):
                found.append(Registration.parse(str(parameter["Name"]).rsplit("/", 1)[-1], str(parameter["Value"])))
        return sorted(found, key=lambda r: r.pipeline)

    def wave(self) -> Wave:
        registered = self.registrations()
        return Wave(tuple(registered), self.read({k for r in registered for k in r.uses}), time.time())

    def _start(self, pipeline: str, key: str, version: int) -> None:
        # The token makes a retried start of the same version one execution, not two.
        self.pipelines.start_pipeline_execution(name=pipeline, clientRequestToken=f"{key}-v{version}"[:128])

    def continue_lane(self, pipeline: str, announce: Callable[[str], None] = lambda _: None) -> tuple[str, ...]:
        """``pipeline`` has built (its Stitch job) or failed (a Build job's post_build): it gives its rebuild lane up,
        and the lane's next ready pipeline starts -- so a team's wave keeps its budget's number building. Nothing when
        the pipeline has no lane, none is ready, or another of the lane is building (it continues the lane)."""
        wave = self.wave()
        me = next((r for r in wave.registered if r.pipeline == pipeline), None)
        lane = wave.lane(pipeline)
        if lane is None or me is None:
            return ()
        if me.building:
            self.register(pipeline, me.uses, me.publishes)
            wave = replace(wave, registered=tuple(replace(r, building=0) if r is me else r for r in wave.registered))
        waiting = sorted(
            (p, key) for key in me.uses for p in wave.ready(key) if p != pipeline and wave.lane(p) == lane
        )  # fmt: skip
        if not waiting or wave.busy(lane):
            return ()
        found, key = waiting[0]
        self._start(found, key, self._current(key)[1])
        announce(f"started {found} (next in lane {lane[1] + 1} of team {lane[0]})")
        return (found,)

    def _current(self, key: str) -> tuple[str, int]:
        """``(entry, version)`` of ``key`` now; ``("", 0)`` when the store has no entry."""
        found = self.ssm.get_parameters(Names=[self.name(key)]).get("Parameters", [])
        return (str(found[0]["Value"]), int(found[0]["Version"])) if found else ("", 0)

    def publish(
        self, key: str, entry: str, *, pipeline: str = "", built_with: dict[str, str] | None = None,
        announce: Callable[[str], None] = lambda _: None,
    ) -> Publication:  # fmt: skip
        """Write ``entry`` if its digest is new; record that ``pipeline`` (the base's own) built it with
        ``built_with`` -- until then the base counts as about to change; then start the pipelines :meth:`Wave.ready`
        names, within their teams' lanes (:meth:`Wave.heads`; the rest are *queued*) -- also when the digest is
        unchanged: a retried publication finishes its starts, and what waited for this base goes on."""
        previous, version = self._current(key)
        changed = digest_of(previous) != digest_of(entry)
        if changed:
            version = int(
                self.ssm.put_parameter(
                    Name=self.name(key), Value=entry, Type="String", Overwrite=True,
                    Description=f"Slipway base lock: {key}",
                )["Version"]
            )  # fmt: skip
            announce(f"{key}: {entry} (was {previous or 'absent'})")
        if pipeline and built_with is not None:
            self.register(pipeline, built_with, key)
        wave = self.wave()
        ready = wave.ready(key)
        started = tuple(wave.heads(ready))
        for pipeline in started:
            self._start(pipeline, key, version)
            announce(f"  started {pipeline}")
        queued = tuple(sorted(set(ready) - set(started)))
        for pipeline in queued:
            announce(f"  queued {pipeline} (its team's rebuild lanes are taken)")
        return Publication(
            key, entry if changed else previous, previous, changed=changed, started=started, queued=queued
        )


def from_environment(*, publishing: bool = False) -> LockStore | None:
    """The store CodeBuild names in ``SLIPWAY_LOCK_PARAMETERS`` (``None`` when unset: a lock given another way)."""
    parameters = os.environ.get(PARAMETERS_ENV, "")
    if not parameters:
        return None
    if not parameters.startswith("/") or not parameters.endswith("/"):
        raise LockStoreError(
            f"${PARAMETERS_ENV}: expected a parameter path like /slipway/acme/lock/, got {parameters!r}"
        )
    import boto3

    session = boto3.Session()
    lanes = os.environ.get(LANES_ENV, "0")
    if not lanes.isdigit():
        raise LockStoreError(f"${LANES_ENV}: expected a whole number of pipelines, got {lanes!r}")
    return LockStore(
        ssm=session.client("ssm"), parameters=parameters,
        dependents_parameters=os.environ.get(DEPENDENTS_ENV, ""),
        pipelines=session.client("codepipeline") if publishing else None,
        team=os.environ.get(TEAM_ENV, ""), lanes=int(lanes),
    )  # fmt: skip
