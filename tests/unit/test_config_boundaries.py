"""platform.toml's edges (issue #19): range boundaries both sides, optional versus required, and the cross-value
rules a config must not slip past (duplicate upstream prefix, ACR without its URL, duplicate secret id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import config


def load(raw: dict[str, Any]) -> config.PlatformConfig:
    return config.parse(raw, source=Path("platform.toml"))


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        load(raw)
    return info.value.problems


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [("untagged_expiry_days", 1, 3650), ("keep_releases", 1, 1000), ("keep_cache_images", 1, 100)],
)
def test_range_boundaries_are_inclusive(example_raw: dict[str, Any], key: str, low: int, high: int) -> None:
    for ok in (low, high):
        example_raw["registry"][key] = ok
        assert getattr(load(example_raw).registry, key) == ok
    for bad in (low - 1, high + 1):
        example_raw["registry"][key] = bad
        assert problems(example_raw) == [f"registry.{key}: expected {low}..{high}, got {bad}"]


def test_an_optional_field_may_be_empty_or_absent_and_a_required_one_may_not(example_raw: dict[str, Any]) -> None:
    ecs = example_raw["teams"][0]["services"][0]["environments"][0]["ecs"]
    ecs["health_url"] = ""
    assert load(example_raw).teams[0].services[0].environments[0].ecs.health_url == ""  # type: ignore[union-attr]
    del ecs["health_url"]
    assert load(example_raw).teams[0].services[0].environments[0].ecs.health_url == ""  # type: ignore[union-attr]
    ecs["health_url"] = "not a url"
    assert problems(example_raw)[0].startswith(
        "teams[0].services[0].environments[0].ecs.health_url: expected an http(s) URL"
    )
    del ecs["health_url"]
    del ecs["cluster"]
    assert problems(example_raw) == ["teams[0].services[0].environments[0].ecs.cluster: required key is missing"]


def test_a_duplicate_upstream_prefix_is_refused(example_raw: dict[str, Any]) -> None:
    example_raw["upstreams"][1]["prefix"] = example_raw["upstreams"][0]["prefix"]
    assert problems(example_raw) == ["upstreams[1].prefix: duplicate prefix 'ecr-public'"]


def test_azure_needs_its_registry_url(example_raw: dict[str, Any]) -> None:
    acr = next(u for u in example_raw["upstreams"] if u["registry"] == "azure-container-registry")
    del acr["url"]
    assert problems(example_raw) == [
        "upstreams[5].url: azure-container-registry has no public endpoint; set the registry URL"
    ]


def test_a_duplicate_secret_id_is_refused(example_raw: dict[str, Any]) -> None:
    service = example_raw["teams"][0]["services"][0]
    service["secrets"].append(dict(service["secrets"][0], secret_name="payments/other"))
    assert problems(example_raw) == ["teams[0].services[0].secrets[1].id: duplicate secret id 'pip_index'"]


def test_problems_come_sorted_by_key_path_with_indexes_as_numbers_and_each_names_the_file() -> None:
    """A user reads the problems of one key together, in the file's order: teams[2] before teams[10], a table's own
    problem before its keys', and a non-ASCII "digit" (never a valid index) before every real index."""
    from pipeline.config.error import ConfigError

    error = ConfigError(Path("conf/platform.toml"), [
        "teams[10].name: ten", "teams[2].services[0].name: two-zero", "teams[2]: two",
        "platform.region: was found first: with a colon", "teams[0].name: zero",
        "teams[\u0661].name: arabic one: with a colon", "upstreams[1].prefix: one",
        "platform.region: region", "platform.b c: unknown key", "platform.b a: unknown key",
    ])  # fmt: skip
    assert error.problems == [
        "platform.b a: unknown key",  # a quoted key may hold a space: the path ends at ': ', not at a space
        "platform.b c: unknown key",
        "platform.region: was found first: with a colon",  # one key's problems: in the order found
        "platform.region: region",
        "teams[\u0661].name: arabic one: with a colon",
        "teams[0].name: zero",
        "teams[2]: two",
        "teams[2].services[0].name: two-zero",
        "teams[10].name: ten",
        "upstreams[1].prefix: one",
    ]
    assert str(error) == "\n".join([*(f"conf/platform.toml: {p}" for p in error.problems),
                                    "conf/platform.toml: 10 problem(s)"])  # fmt: skip
    assert error.source == Path("conf/platform.toml") and error.exit_code == 2


def test_a_value_is_echoed_whole_up_to_the_limit_and_shortened_past_it() -> None:
    from pipeline.config.values import ECHO_LIMIT, shown

    whole = "x" * (ECHO_LIMIT - 2)  # its repr, quotes included, is exactly the limit
    assert shown(whole) == repr(whole)
    longer = "a" * (ECHO_LIMIT - 4) + "bcde"  # two characters more
    assert shown(longer) == "'" + "a" * (ECHO_LIMIT - 6) + "…cde' (" + str(ECHO_LIMIT) + " chars)"
    assert len(shown(longer)) == ECHO_LIMIT + len(" (60 chars)")


def test_looking_up_a_service_in_a_platform_without_any_says_none_are_known(example_raw: dict[str, Any]) -> None:
    del example_raw["teams"]
    with pytest.raises(config.ConfigError) as info:
        load(example_raw).find_service("payments/api")
    assert str(info.value).splitlines()[0] == "platform.toml: service 'payments/api' not found (known: none)"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("platform",), [], "platform: expected a table, got an array"),
        (("teams",), {}, "teams: expected an array, got a table"),
        (("platform", "name"), 5, "platform.name: expected a string, got an integer 5"),
        (("registry", "keep_releases"), 1.5, "registry.keep_releases: expected an integer, got float 1.5"),
        (("registry", "root_creation_template"), "yes", "registry.root_creation_template: expected a boolean, got a "
                                                         "string 'yes'"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_named_in_toml_terms(
    example_raw: dict[str, Any], path: tuple[str, ...], value: Any, expected: str
) -> None:
    parent = example_raw
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert expected in problems(example_raw)


def test_a_suggestion_is_offered_only_for_a_near_miss(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["reg"] = "x"  # too far from "region" to guess
    assert problems(example_raw) == [
        "platform.reg: unknown key; allowed: account, branch, connection_arn, name, region, source_repo"
    ]
