"""Property tests: no generated config, no config file's bytes and no mix of CLI arguments escapes as a traceback.
Bounded so they run in seconds in CI; a failure prints the shrunk input that broke the promise."""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import config
from pipeline.cli import main
from tests.conftest import _EXAMPLE_RAW

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = st.one_of(
    st.text(max_size=30), st.integers(), st.booleans(), st.floats(allow_nan=True), st.none(),
    st.sampled_from(["", "..", "/etc", "linux/arm64", "x86_64", "\x00", "eu-west-\u0661", "\uff11" * 12, "a b"]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)  # fmt: skip


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


ALL_PATHS = paths(_EXAMPLE_RAW)[1:]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    raw = copy.deepcopy(_EXAMPLE_RAW)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = raw
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=10))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return raw


@FAST
@given(mutated_configs())
def test_any_mutated_config_loads_or_is_a_config_error(raw: dict[str, Any]) -> None:
    try:
        config.parse(raw)
        return
    except config.ConfigError as exc:
        problems = exc.problems
    assert problems and all(": " in p for p in problems)


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_load_or_are_a_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "platform.toml"
        path.write_bytes(data)
        with contextlib.suppress(config.ConfigError):
            config.load(path)


RECORDS = st.one_of(
    st.sampled_from(["", "{", "[]", "null", '{"repository": 1}', '{"platforms": {"linux/amd64": {}}}']),
    st.dictionaries(st.sampled_from(["repository", "tag", "index_digest", "platforms", "platform", "digest", "size",
                                     "seconds", "builder", "commit", "cache_hits"]), values, max_size=6).map(repr),
)  # fmt: skip
WORDS = st.sampled_from(["--tag", "a b", "--repository", "127.0.0.1:1/a/b", "--platform", "linux/s390x", "--out",
                         "--timeout", "nan", "-1", "--namespace", "Bad NS", "--build-arg", "X", "--target", "nosuch",
                         "--format", "sarif", "--registry", "", "\x00", "--config", "{file}", "{file}"])  # fmt: skip
COMMANDS = [
    ["validate", "{file}"],
    ["lint", "{file}"],
    ["verify", "--image-json", "{file}"],
    ["stitch", "--repository", "127.0.0.1:1/a/b", "--tag", "t", "--build", "{file}", "--out", "{dir}/image.json"],
    ["deploy", "eks", "--image-json", "{file}", "--cluster", "c", "--namespace", "n", "--deployment", "d",
     "--container", "c", "--render-only", "{dir}/d.json"],
    ["bases", "update", "--lock", "{file}", "--registry", "127.0.0.1:1"],
]  # fmt: skip


@FAST
@given(st.sampled_from(COMMANDS), st.lists(WORDS, max_size=4), RECORDS)
def test_no_argument_mix_escapes_as_a_traceback(command: list[str], extra: list[str], content: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        file = Path(directory) / "input"
        file.write_text(content)
        argv = [a.format(file=file, dir=directory) for a in [*command, *extra]]
        previous = Path.cwd()
        os.chdir(directory)  # nothing a command writes by default lands in the checkout
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors: exit 2 with a message
            code = exc.code
        finally:
            os.chdir(previous)
        assert code in (0, 1, 2)
