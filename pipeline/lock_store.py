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
``/slipway/<platform>/dependents/<pipeline>`` *before* reading them, and a publication starts every pipeline
registered for the key. Registering first means a pipeline that found its base missing is always started when the
base arrives (either the publisher sees the registration, or the build sees the entry). A publication is done when
its dependents were started: the version carrying the ``started`` label; a retry of a publication whose starts
failed finishes them, and an unchanged digest starts nothing.
"""

from __future__ import annotations

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
STARTED_LABEL = "started"
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

    def register(self, pipeline: str, keys: Iterable[str]) -> None:
        """``pipeline`` builds on ``keys``: publications of any of them start it."""
        if not self.dependents_parameters or not pipeline:
            return
        value = ",".join(sorted(set(keys))) or "-"
        self.ssm.put_parameter(
            Name=self.dependents_parameters + pipeline, Value=value, Type="String", Overwrite=True,
            Description="Lock keys this pipeline's Dockerfile builds on (written by its Build job)",
        )  # fmt: skip

    def registrations(self, key: str) -> dict[str, list[str]]:
        """``{pipeline: the keys it builds on}`` for the pipelines registered as building on ``key``."""
        found = {}
        pages = self.ssm.get_paginator("get_parameters_by_path")
        for page in pages.paginate(Path=self.dependents_parameters.rstrip("/"), Recursive=False):
            for parameter in page.get("Parameters", []):
                keys = str(parameter["Value"]).split(",")
                if key in keys:
                    found[str(parameter["Name"]).rsplit("/", 1)[-1]] = keys
        return dict(sorted(found.items()))

    def dependents(self, key: str) -> list[str]:
        """The pipelines registered as building on ``key`` whose every other base is in the store too: one still
        missing is published later, and that publication starts them (a build now would only fail, waiting)."""
        registered = self.registrations(key)
        present = set(self.read({k for keys in registered.values() for k in keys})) | {key}
        return [pipeline for pipeline, keys in registered.items() if set(keys) <= present]

    def _current(self, key: str) -> tuple[str, int, bool]:
        """``(entry, version, started)`` of ``key`` now; ``("", 0, True)`` when the store has no entry."""
        try:
            parameter = self.ssm.get_parameter(Name=self.name(key))["Parameter"]
        except self.ssm.exceptions.ParameterNotFound:
            return "", 0, True
        version = int(parameter["Version"])
        history = self.ssm.get_paginator("get_parameter_history")
        labels: list[str] = []
        for page in history.paginate(Name=self.name(key)):
            labels += [
                label for p in page.get("Parameters", []) if p["Version"] == version for label in p.get("Labels", [])
            ]
        return str(parameter["Value"]), version, STARTED_LABEL in labels

    def publish(self, key: str, entry: str, *, announce: Callable[[str], None] = lambda _: None) -> Publication:
        """Write ``entry`` if its digest is new, then start every pipeline registered for ``key`` -- and label the
        version ``started`` once they all were. An unchanged digest whose version was started does nothing."""
        previous, version, started = self._current(key)
        changed = digest_of(previous) != digest_of(entry)
        if not changed and started:
            return Publication(key, previous, previous, changed=False)
        if changed:
            version = int(
                self.ssm.put_parameter(
                    Name=self.name(key), Value=entry, Type="String", Overwrite=True,
                    Description=f"Slipway base lock: {key}",
                )["Version"]
            )  # fmt: skip
            announce(f"{key}: {entry} (was {previous or 'absent'})")
        dependents = tuple(self.dependents(key))
        for pipeline in dependents:
            # The token makes a retried publication's start of the same version one execution, not two.
            self.pipelines.start_pipeline_execution(name=pipeline, clientRequestToken=f"{key}-v{version}"[:128])
            announce(f"  started {pipeline}")
        self.ssm.label_parameter_version(Name=self.name(key), ParameterVersion=version, Labels=[STARTED_LABEL])
        return Publication(key, entry if changed else previous, previous, changed=changed, started=dependents)


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
