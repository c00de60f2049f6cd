"""The base-image lock: which pinned base each Dockerfile build argument names.

Dockerfiles take their bases as build arguments (``ARG BASE_PYTHON`` / ``FROM ${BASE_PYTHON}``); the lock maps each
argument to a registry-relative reference pinned by digest (``payments/bases/python:<commit>@sha256:…``). Builds and
the lint gate both resolve ``FROM`` lines through it, with the platform's ECR host prepended. In CodeBuild the entries
are read when the job runs, from the lock store (:mod:`pipeline.lock_store`: what the base pipelines and the
platform's upstream refresh published); ``images/lock.json`` is the committed list of upstream tags the platform
follows (with the digests they had when committed), and ``SLIPWAY_BASE_LOCK`` gives a lock to a job run by hand.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline import lock_store
from pipeline.errors import InputError
from pipeline.oci import ANY_MANIFEST
from pipeline.references import DIGEST
from pipeline.registry.base import RegistryClient, RepositoryRef

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9_.-]+)@(?P<digest>sha256:[0-9a-f]{64})$")


class LockError(InputError):
    pass


def load(path: Path, *, required: bool = False) -> dict[str, str]:
    """The lock at ``path``; a missing file is an empty lock unless ``required`` (a lock named on a command line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if required:
            raise LockError(f"{path}: no such lock file") from exc
        return {}
    except OSError as exc:
        raise LockError(f"{path}: unreadable lock ({exc.strerror or exc})") from exc
    return parse(text, str(path))


def parse(text: str, where: str) -> dict[str, str]:
    """A lock's JSON text: an object of build argument -> ``repository:tag@sha256:<64 hex>``; ``where`` names it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise LockError(f"{where}: expected an object of build argument -> pinned reference")
    for key, value in data.items():
        if not isinstance(value, str) or not _ENTRY.fullmatch(value):
            raise LockError(f"{where}: {key}: expected 'repository:tag@sha256:<64 hex>', got {value!r}")
    return dict(data)


def save(path: Path, entries: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n", encoding="utf-8")


def entry(repository: str, tag: str, digest: str) -> str:
    if not DIGEST.fullmatch(digest):
        raise LockError(f"{repository}:{tag}: expected a digest, got {digest!r}")
    return f"{repository}:{tag}@{digest}"


def build_args(entries: dict[str, str], registry: str) -> dict[str, str]:
    """``{BASE_PYTHON: "<registry>/payments/bases/python:…@sha256:…"}`` for ``--build-arg``."""
    return {key: f"{registry}/{value}" for key, value in entries.items()}


LOCK_ENV = "SLIPWAY_BASE_LOCK"


def from_environment() -> dict[str, str]:
    """A lock given as JSON in ``SLIPWAY_BASE_LOCK`` (a job run by hand; empty when unset)."""
    raw = os.environ.get(LOCK_ENV, "")
    return parse(raw, LOCK_ENV) if raw else {}


def current(dockerfile: Path | None = None, *, register: bool = False, extra: Iterable[str] = ()) -> dict[str, str]:
    """The entries a job resolves ``dockerfile``'s ``ARG``s (and ``extra`` keys) with, read when the job runs: from the
    lock store CodeBuild names (:mod:`pipeline.lock_store`), else ``SLIPWAY_BASE_LOCK``. ``register``: first record
    this job's pipeline as building on the ``FROM`` arguments, so it starts again when one of them is published; a
    ``FROM`` argument with no default that the store lacks yet is an error naming it."""
    store = lock_store.from_environment()
    if store is None:
        return from_environment()
    declared, needed = set(), set()
    if dockerfile is not None and dockerfile.is_file():
        declared = declared_args(dockerfile)
        needed = required_args(dockerfile) & declared - defaulted_args(dockerfile)
    pipeline, publishes = os.environ.get(lock_store.PIPELINE_ENV, ""), os.environ.get(lock_store.PUBLISHES_ENV, "")
    if register:  # first: a base published from now on starts this pipeline; it builds now, holding its lane
        store.register(pipeline, dict.fromkeys(needed, ""), publishes, building=True)
    found = store.read(declared | set(extra))
    missing = sorted(needed - set(found))
    if register and not missing and not publishes:
        # Then what it builds with: judged stale when the store moves on. A curated base records it when its release
        # is published (`slipway bases publish`): until then what builds on it waits for it.
        store.register(pipeline, {k: found[k] for k in needed}, building=True)
    if missing:
        raise LockError(
            f"{dockerfile}: FROM needs {', '.join(missing)}, which the lock store ({store.parameters}) does not hold "
            "yet: that base has not been published; this pipeline is registered and starts again when it is"
        )
    return found


def required_args(dockerfile: Path) -> set[str]:
    """Build arguments a Dockerfile's FROM lines use: what must be built (or seeded) before it."""
    text = dockerfile.read_text(encoding="utf-8")
    froms = re.findall(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", text, re.M | re.I)
    return {name for line in froms for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", line)}


def declared_args(dockerfile: Path) -> set[str]:
    """``ARG`` names a Dockerfile declares: the only build arguments that can change what it builds."""
    return set(re.findall(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", dockerfile.read_text(encoding="utf-8"), re.M | re.I))


def defaulted_args(dockerfile: Path) -> set[str]:
    """``ARG`` names given a default in the Dockerfile (``ARG NAME=value``): the lock may leave them out."""
    text = dockerfile.read_text(encoding="utf-8")
    return set(re.findall(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)=", text, re.M | re.I))


def update(entries: dict[str, str], client: RegistryClient, registry: str) -> dict[str, str]:
    """Re-resolve every entry's tag in ``registry``: the digest it serves now."""
    updated = {}
    for key, value in entries.items():
        match = _ENTRY.fullmatch(value)
        if match is None:
            raise LockError(f"{key}: malformed entry {value!r}")
        repo = RepositoryRef(registry, match["repo"])
        manifest = client.get_manifest(repo, match["tag"], ANY_MANIFEST)
        updated[key] = entry(match["repo"], match["tag"], manifest.digest)
    return updated


_RELEASE = re.compile(r"^(?P<commit>[0-9a-f]{40})(?:\.(?P<rebuild>[0-9]+))?$")


def published(client: RegistryClient, registry: str, curated: dict[str, str], commits: list[str]) -> dict[str, str]:
    """Lock entries for the curated bases as their pipelines published them: ``{lock key: repository name}`` →
    ``{lock key: "repo:<commit>[.N]@sha256:…"}``. A base pipeline tags its release with the commit it built
    (``<commit>.N`` for the weekly rebuild of a released commit); the newest release is the one whose commit comes
    first in ``commits`` (the platform repository's history, newest first), then the highest rebuild. Bases with no
    release yet are left out: the lock holds only what the registry serves."""
    order = {commit: position for position, commit in enumerate(commits)}
    entries = {}
    for key, name in curated.items():
        repo = RepositoryRef(registry, name)
        releases = [
            (order[m["commit"]], -int(m["rebuild"] or 1), tag)
            for tag in client.list_tags(repo)
            if (m := _RELEASE.fullmatch(tag)) and m["commit"] in order
        ]
        if releases:
            tag = min(releases)[2]
            entries[key] = entry(name, tag, client.get_manifest(repo, tag, ANY_MANIFEST).digest)
    return entries
