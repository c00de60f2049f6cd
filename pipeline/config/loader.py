"""``platform.toml`` to :class:`~pipeline.config.model.PlatformConfig`: every problem at once, each naming the file
and the key path (``teams[1].services[0].deploy.lambda.architecture``), sorted by that path.

The file is read as bytes: a byte-order mark, UTF-16 or invalid UTF-8 is reported as such, and so is nesting too deep
to walk. A value with a bad domain (a pattern, a range) still builds its object, so the cross-value rules run too and
both kinds of problem are reported in one run; a missing key or a wrong type stops its object.
"""

from __future__ import annotations

import functools
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pipeline.config.checks import check_model
from pipeline.config.error import ConfigError
from pipeline.config.model import PlatformConfig
from pipeline.config.values import shown

MAX_BYTES = 10 * 1024 * 1024
_INVALID: Any = object()
"""What :func:`_convert` gives for a value it could not convert (its problems are already reported)."""


def load(path: str | Path = "platform.toml") -> PlatformConfig:
    """Load and validate ``platform.toml``; raise :class:`ConfigError` listing every problem found."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
    if len(data) > MAX_BYTES:
        raise ConfigError(source, [f"{len(data)} bytes; a platform.toml over {MAX_BYTES} bytes is not plausible"])
    try:
        raw = tomllib.loads(decode(source, data))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError(source, ["tables or arrays nested too deeply to read"]) from exc
    return parse(raw, source=source)


def decode(source: Path, data: bytes) -> str:
    """TOML is UTF-8 without a byte-order mark; say which rule a file breaks instead of a decoder's traceback."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(source, ["UTF-16 text; save it as UTF-8"])
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(source, ["starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(source, [f"not UTF-8 (byte {exc.start}, line {line}); save it as UTF-8"]) from exc


def parse(raw: Mapping[str, Any], *, source: Path = Path("platform.toml")) -> PlatformConfig:
    """Validate an already-decoded TOML document (tests build these inline)."""
    problems: list[str] = []
    try:
        config = _build(PlatformConfig, raw, "", problems)
    except RecursionError as exc:
        raise ConfigError(source, ["tables or arrays nested too deeply to read"]) from exc
    if config is not None:
        problems.extend(check_model(config))
    if problems or config is None:
        raise ConfigError(source, problems)
    return replace(config, source=source)


T = TypeVar("T")


def _key(f: Any) -> str:
    return str(f.metadata.get("key", f.name))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type[T], raw: Any, path: str, problems: list[str]) -> T | None:
    """Build dataclass ``cls`` from ``raw``, appending a problem per bad key instead of stopping at the first."""
    where = path or "top level"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a table, got {_type_name(raw)}")
        return None
    hints, known = _schema(cls)  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            suggestion = _closest(key, known)
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            problems.append(f"{_join(path, shown(key)[1:-1])}: unknown key{hint}; allowed: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    ok = True
    for key, f in known.items():
        key_path = _join(path, key)
        if key not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append(f"{key_path}: required key is missing")
                ok = False
            continue
        value = _convert(hints[f.name], raw[key], key_path, problems)
        if value is _INVALID:
            ok = False  # a wrong type or a sub-table that could not be built: neither can this object
        kwargs[f.name] = value
    return cls(**kwargs) if ok else None


@functools.cache
def _schema(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """Type hints and loadable fields of a model class, computed once (``get_type_hints`` is slow)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    known = {_key(f): f for f in fields(cls) if f.metadata.get("loader", True)}
    return hints, known


def _convert(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    """``value`` as ``hint`` says, or ``_INVALID`` (with its problems appended) when it cannot be."""
    origin = get_origin(hint)
    if origin is Annotated:  # a value with its domain rule: a bad value is reported and the object still built
        inner, *checks = get_args(hint)
        converted = _convert(inner, value, path, problems)
        if converted is not _INVALID:
            problems.extend(f"{path}: {message}" for check in checks if (message := check(converted)))
        return converted
    if origin in (types.UnionType, typing.Union):  # only ``X | None`` is used in the model
        (inner,) = (a for a in get_args(hint) if a is not type(None))
        return _convert(inner, value, path, problems)
    if is_dataclass(hint):
        built = _build(hint, value, path, problems)  # type: ignore[arg-type]
        return _INVALID if built is None else built
    if origin is tuple:
        item_hint = get_args(hint)[0]
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {_type_name(value)}")
            return _INVALID
        items = tuple(_convert(item_hint, item, f"{path}[{i}]", problems) for i, item in enumerate(value))
        return _INVALID if _INVALID in items else items
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            problems.append(f"{path}: expected one of {', '.join(map(repr, allowed))}, got {shown(value)}")
            return _INVALID
        return value
    # bool is a subclass of int: ``keep_releases = true`` must not pass as 1.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        problems.append(f"{path}: expected {_type_name_of(hint)}, got {_type_name(value)} {shown(value)}")
        return _INVALID
    return value


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )


def _type_name_of(hint: type) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer"}.get(hint, hint.__name__)


def _closest(key: str, known: Mapping[str, Any]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def value_problems(obj: Any) -> list[tuple[str, str]]:
    """``(field, problem)`` for each value of an already-built model object that breaks its rule -- the rules
    platform.toml's values obey, for objects built elsewhere (a command line's options). ``field`` is the field's
    name, with ``[i]`` for an item of a tuple."""
    hints, known = _schema(type(obj))  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    for f in known.values():
        value = getattr(obj, f.name)
        if is_dataclass(value) and not isinstance(value, type):
            found += [(f"{f.name}.{where}", message) for where, message in value_problems(value)]
            continue
        problems: list[str] = []
        _convert(hints[f.name], list(value) if isinstance(value, tuple) else value, f.name, problems)
        for problem in problems:
            where, _, message = problem.partition(": ")
            found.append((where, message))
    return found
