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
other entries than the store holds -- unless a base they use is itself about to change (:meth:`LockStore.dependents`):
each pipeline of a wave builds once, on all its new bases. Registering first means a pipeline that found its base
missing is always started when the base arrives (either the publisher sees the registration, or the build sees the
entry); judging by staleness means a retried publication finishes its starts, and an unchanged digest starts only
what waited for it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
_GET_BATCH = 10  # GetParameters takes at most 10 names


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

    @classmethod
    def parse(cls, pipeline: str, value: str) -> Registration:
        try:
            data = json.loads(value)
            return cls(
                pipeline, {str(k): str(v) for k, v in dict(data["uses"]).items()}, str(data.get("publishes", ""))
            )
        except (ValueError, KeyError, TypeError, AttributeError):  # not one of ours: it builds on nothing known
            return cls(pipeline, {})


@dataclass(frozen=True)
class Publication:
    key: str
    entry: str
    previous: str
    changed: bool
    started: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class LockStore:
    """``ssm``: a boto3 SSM client; ``pipelines``: a CodePipeline client (publications only)."""

    ssm: Any
    parameters: str
    dependents_parameters: str = ""
    pipelines: Any = None

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

    def register(self, pipeline: str, uses: dict[str, str], publishes: str = "") -> None:
        """``pipeline`` builds on the keys of ``uses``, whose values are the entries it builds with (``""``: not read
        yet); ``publishes``: the key its releases become (a curated base)."""
        if not self.dependents_parameters or not pipeline:
            return
        value = json.dumps({"uses": dict(sorted(uses.items())), "publishes": publishes}, separators=(",", ":"))
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

    def dependents(self, key: str) -> list[str]:
        """The pipelines to start now that ``key`` is published: registered as building on it, *stale* (they last
        built with other entries than the store holds, or never did), every base they use in the store, and none of
        those bases about to change -- its producer stale, or upstream of a stale one. Such a pipeline is started by
        that base's publication instead, so a wave builds each pipeline once, on every new base at once. A base
        rebuilt to the same digest still publishes (unchanged), which starts what waited for it."""
        registered = self.registrations()
        current = self.read({k for r in registered for k in r.uses} | {key})
        producer = {r.publishes: r for r in registered if r.publishes}

        def stale(r: Registration) -> bool:
            return any(current.get(k) != entry for k, entry in r.uses.items())

        def changing(r: Registration, seen: frozenset[str] = frozenset()) -> bool:
            if stale(r):
                return True
            inputs = [producer[k] for k in r.uses if k in producer and producer[k].pipeline not in seen]
            return any(changing(p, seen | {r.pipeline}) for p in inputs)

        return [
            r.pipeline for r in registered
            if key in r.uses and set(r.uses) <= set(current) and stale(r)
            and not any(changing(producer[k]) for k in r.uses if k in producer and producer[k].pipeline != r.pipeline)
        ]  # fmt: skip

    def _current(self, key: str) -> tuple[str, int]:
        """``(entry, version)`` of ``key`` now; ``("", 0)`` when the store has no entry."""
        try:
            parameter = self.ssm.get_parameter(Name=self.name(key))["Parameter"]
        except self.ssm.exceptions.ParameterNotFound:
            return "", 0
        return str(parameter["Value"]), int(parameter["Version"])

    def publish(
        self, key: str, entry: str, *, pipeline: str = "", built_with: dict[str, str] | None = None,
        announce: Callable[[str], None] = lambda _: None,
    ) -> Publication:  # fmt: skip
        """Write ``entry`` if its digest is new; record that ``pipeline`` (the base's own) built it with
        ``built_with`` -- until then the base counts as about to change; then start the pipelines :meth:`dependents`
        names -- also when the digest is unchanged: a retried publication finishes its starts, and what waited for
        this base goes on."""
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
        started = tuple(self.dependents(key))
        for pipeline in started:
            # The token makes a retried publication's start of the same version one execution, not two.
            self.pipelines.start_pipeline_execution(name=pipeline, clientRequestToken=f"{key}-v{version}"[:128])
            announce(f"  started {pipeline}")
        return Publication(key, entry if changed else previous, previous, changed=changed, started=started)


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
    return LockStore(
        ssm=session.client("ssm"), parameters=parameters,
        dependents_parameters=os.environ.get(DEPENDENTS_ENV, ""),
        pipelines=session.client("codepipeline") if publishing else None,
    )  # fmt: skip
