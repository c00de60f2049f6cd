"""The files steps hand each other: a build's metadata, the stitched ``image.json``, a deploy record.

Each is a frozen dataclass with strict ``load``: a step fed a malformed file stops with the file's name and the field,
instead of deploying something half-read.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.values import shown
from pipeline.errors import InputError
from pipeline.references import DIGEST, pinned

_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$", re.ASCII)


class RecordError(InputError):
    pass


IN_PROGRESS = "in progress"
"""The ``status`` of a record file claimed by :func:`reserve` whose step has not finished."""


def read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise RecordError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object")
    if data.get("status") == IN_PROGRESS:
        raise RecordError(f"{path}: the {data.get('step', 'step')} that writes it did not finish (no record yet)")
    return data


def finished(path: Path) -> bool:
    """Whether ``path`` holds what its step wrote: not a placeholder :func:`reserve` left for a step that failed before
    it had anything to record (a Lambda version that never answered its smoke event changed nothing)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") != IN_PROGRESS  # type: ignore[no-any-return]
    except (OSError, ValueError, AttributeError):
        return True  # not a placeholder: loading it says what is wrong with it


_MISSING: Any = object()


def typed_field(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, default: Any = _MISSING
) -> Any:
    if key not in data and default is not _MISSING:
        return default
    value = data.get(key)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise RecordError(f"{path}: field {key!r}: expected {expected}, got {shown(value)}")
    return value


def _platform(data: dict[str, Any], key: str, path: Path) -> str:
    value = typed_field(data, key, str, path)
    if not _PLATFORM.fullmatch(value):
        raise RecordError(f"{path}: field {key!r}: expected a platform such as 'linux/arm64', got {shown(value)}")
    return str(value)


def _digest(data: dict[str, Any], key: str, path: Path) -> str:
    value = typed_field(data, key, str, path)
    if not DIGEST.fullmatch(value):
        raise RecordError(f"{path}: field {key!r}: expected a digest 'sha256:<64 hex>', got {value!r}")
    return str(value)


def _strings(value: dict[str, Any], key: str, path: Path) -> dict[str, str]:
    bad = next((k for k, v in value.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise RecordError(f"{path}: field '{key}.{shown(bad)[1:-1]}': expected a string")
    return dict(value)


def write(path: Path, record: Any) -> None:
    path.write_text(json.dumps(asdict(record), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def reserve(path: Path, step: str, *, option: str = "--out", nothing: str = "nothing was changed") -> None:
    """Claim ``path`` before a step changes anything: it is opened for writing and a placeholder is written and
    flushed, so a path that is a directory, in a missing directory, read-only or on a full disk stops the step here
    (exit 2) instead of after the change, where a lost record would lose a retry its rollback target."""
    try:
        with path.open("w", encoding="utf-8") as file:
            file.write(json.dumps({"status": IN_PROGRESS, "step": step}) + "\n")
            file.flush()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write ({exc.strerror or exc}); {nothing}") from exc


@dataclass(frozen=True)
class BuildRecord:
    """What one platform build pushed (by digest, no tag)."""

    repository: str
    platform: str
    digest: str
    size: int
    """Compressed bytes of config and layers, as the registry stores them."""
    seconds: float
    builder: str
    cache_ref: str = ""
    cache_hits: int = 0
    """BuildKit steps served from cache: a warm rebuild after a one-line change should hit all but the last."""
    bases: dict[str, str] = field(default_factory=dict)
    """The lock entries the build resolved its ``ARG``s with, as it read them (Stitch's release tag hashes them)."""

    @classmethod
    def load(cls, path: Path) -> BuildRecord:
        data = read_object(path)
        return cls(
            repository=typed_field(data, "repository", str, path),
            platform=_platform(data, "platform", path),
            digest=_digest(data, "digest", path),
            size=typed_field(data, "size", int, path),
            seconds=float(typed_field(data, "seconds", (int, float), path)),
            builder=typed_field(data, "builder", str, path),
            cache_ref=typed_field(data, "cache_ref", str, path, ""),
            cache_hits=typed_field(data, "cache_hits", int, path, 0),
            bases=_strings(typed_field(data, "bases", dict, path, {}), "bases", path),
        )


@dataclass(frozen=True)
class PlatformImage:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class ImageRecord:
    """``image.json``: the stitched release every deploy step consumes."""

    repository: str
    tag: str
    index_digest: str
    platforms: dict[str, PlatformImage] = field(default_factory=dict)
    commit: str = ""

    @property
    def index_uri(self) -> str:
        return pinned(self.repository, self.index_digest)

    @classmethod
    def load(cls, path: Path) -> ImageRecord:
        data = read_object(path)
        raw_platforms = typed_field(data, "platforms", dict, path)
        platforms = {}
        for name, entry in raw_platforms.items():
            if not isinstance(entry, dict) or not _PLATFORM.fullmatch(name):
                raise RecordError(f"{path}: field 'platforms.{shown(name)[1:-1]}': expected a platform and an object")
            platforms[name] = PlatformImage(
                digest=_digest(entry, "digest", path),
                size=typed_field(entry, "size", int, path),
                media_type=typed_field(entry, "media_type", str, path),
            )
        if not platforms:
            raise RecordError(f"{path}: field 'platforms': expected at least one platform")
        return cls(
            repository=typed_field(data, "repository", str, path),
            tag=typed_field(data, "tag", str, path),
            index_digest=_digest(data, "index_digest", path),
            platforms=platforms,
            commit=typed_field(data, "commit", str, path, ""),
        )
