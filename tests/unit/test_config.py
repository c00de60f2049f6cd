"""platform.toml loader: every error class names the file, the key path and what was expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from tests.conftest import EXAMPLE


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(raw, source=Path("platform.toml"))
    return info.value.problems


def test_example_loads_into_frozen_typed_model() -> None:
    loaded = config.load(EXAMPLE)
    assert [t.name for t in loaded.teams] == ["payments", "search"]
    api = loaded.teams[0].services[0]
    assert api.platforms == ("linux/amd64", "linux/arm64")
    assert api.deploy.lambda_ is not None and api.deploy.lambda_.platform == "linux/arm64"
    assert api.secrets[0].secret_name == "payments/pip-index-token"
    with pytest.raises(AttributeError):
        api.name = "other"  # type: ignore[misc]


def test_example_exercises_every_field() -> None:
    """The shipped example is documentation: every key the schema knows appears in it at least once."""
    text = EXAMPLE.read_text()
    from dataclasses import fields, is_dataclass

    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        import typing

        for f in fields(cls):  # type: ignore[arg-type]
            if not f.metadata.get("loader", True):
                continue
            key = f.metadata.get("key", f.name)
            assert re.search(rf"^\s*\[*[\w.]*{re.escape(key)}\]*\s*(=|$)", text, re.M), f"{cls.__name__}.{key}"
            for arg in (
                typing.get_type_hints(cls)[f.name],
                *typing.get_args(typing.get_type_hints(cls)[f.name]),
            ):
                for inner in (arg, *typing.get_args(arg)):
                    if is_dataclass(inner):
                        walk(inner)  # type: ignore[arg-type]

    walk(config.PlatformConfig)


def test_fails_on_unknown_key_with_path_and_suggestion(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["services"][0]["deploy"]["eks"]["namepsace"] = "search"
    assert problems(example_raw) == [
        "teams[1].services[0].deploy.eks.namepsace: unknown key (did you mean 'namespace'?); "
        "allowed: cluster, container, deployment, namespace"
    ]


def test_fails_on_unknown_top_level_key(example_raw: dict[str, Any]) -> None:
    example_raw["team"] = []
    assert problems(example_raw)[0].startswith("team: unknown key (did you mean 'teams'?)")


def test_fails_on_bad_lambda_architecture_naming_the_key_path(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["deploy"]["lambda"]["architecture"] = "amd64"
    assert problems(example_raw) == [
        "teams[0].services[0].deploy.lambda.architecture: expected one of 'x86_64', 'arm64', got 'amd64'"
    ]


def test_fails_on_missing_required_key(example_raw: dict[str, Any]) -> None:
    del example_raw["platform"]["region"]
    assert problems(example_raw) == ["platform.region: required key is missing"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("account", "12345", "platform.account: expected a 12-digit AWS account id, got '12345'"),
        ("region", "eu-west", "platform.region: expected an AWS region such as 'eu-west-1', got 'eu-west'"),
        ("connection_arn", "arn:aws:s3:::bucket", "platform.connection_arn: expected a CodeConnections ARN"),
        ("name", "Acme", "platform.name: expected a lowercase name"),
        ("account", 111111111111, "platform.account: expected a string, got an integer 111111111111"),
    ],
)
def test_fails_on_bad_platform_values(example_raw: dict[str, Any], key: str, value: object, message: str) -> None:
    example_raw["platform"][key] = value
    assert problems(example_raw)[0].startswith(message)


def test_fails_on_bad_platform_string(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["platforms"] = ["linux/amd64", "linux/arm/v7"]
    assert problems(example_raw) == [
        "teams[0].services[0].platforms[1]: expected one of 'linux/amd64', 'linux/arm64', got 'linux/arm/v7'"
    ]


def test_fails_on_boolean_where_integer_expected(example_raw: dict[str, Any]) -> None:
    example_raw["registry"]["keep_releases"] = True
    assert problems(example_raw) == ["registry.keep_releases: expected an integer, got a boolean True"]


def test_fails_on_out_of_range_integer(example_raw: dict[str, Any]) -> None:
    example_raw["registry"]["keep_releases"] = 0
    assert problems(example_raw) == ["registry.keep_releases: expected 1..1000, got 0"]


def test_fails_on_duplicate_names(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["name"] = "payments"
    example_raw["teams"][0]["services"][0]["name"] = "python"  # clashes with a base image of the same team
    assert problems(example_raw) == [
        "teams[1].name: duplicate team name 'payments'",
        "teams[0].services[0].name: duplicate image name 'python' in team 'payments'",
    ]


def test_fails_on_duplicate_platform_and_empty_platforms(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["platforms"] = ["linux/arm64", "linux/arm64"]
    example_raw["teams"][1]["services"][0]["platforms"] = []
    found = problems(example_raw)
    assert "teams[0].services[0].platforms[1]: duplicate platform 'linux/arm64'" in found
    assert "teams[1].services[0].platforms: expected at least one of linux/amd64, linux/arm64" in found


def test_fails_when_lambda_architecture_is_not_built(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["platforms"] = ["linux/amd64"]
    assert problems(example_raw) == [
        "teams[0].services[0].deploy.lambda.architecture: 'arm64' needs platform 'linux/arm64', "
        "which the service does not build (platforms: ['linux/amd64'])"
    ]


def test_fails_when_ecs_architecture_is_not_built(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["services"][0]["platforms"] = ["linux/amd64"]
    assert problems(example_raw) == [
        "teams[1].services[0].deploy.ecs.cpu_architecture: 'arm64' needs platform 'linux/arm64', "
        "which the service does not build (platforms: ['linux/amd64'])"
    ]


def test_fails_on_upstream_credential_rules(example_raw: dict[str, Any]) -> None:
    hub = next(u for u in example_raw["upstreams"] if u["registry"] == "docker-hub")
    hub["credential_secret"] = "dockerhub-token"
    k8s = next(u for u in example_raw["upstreams"] if u["registry"] == "k8s")
    k8s["credential_secret"] = "ecr-pullthroughcache/k8s"
    assert problems(example_raw) == [
        "upstreams[1].credential_secret: k8s takes no credential; remove the key",
        "upstreams[3].credential_secret: expected a name starting 'ecr-pullthroughcache/' (ECR requires it), "
        "got 'dockerhub-token'",
    ]


def test_fails_when_credentialed_upstream_has_no_secret(example_raw: dict[str, Any]) -> None:
    ghcr = next(u for u in example_raw["upstreams"] if u["prefix"] == "ghcr")
    del ghcr["credential_secret"]
    assert problems(example_raw) == [
        "upstreams[4].credential_secret: github-container-registry needs a Secrets Manager secret named "
        "'ecr-pullthroughcache/...'"
    ]


def test_fails_on_path_escaping_the_repository(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["context"] = "../elsewhere"
    assert problems(example_raw) == [
        "teams[0].services[0].context: expected a path inside the source repository, got '../elsewhere'"
    ]


def test_reports_every_problem_at_once(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["region"] = "nowhere"
    example_raw["teams"][0]["workload_accounts"] = ["abc"]
    example_raw["teams"][1]["services"][0]["brnach"] = "main"
    assert len(problems(example_raw)) == 3


def test_error_text_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "platform.toml"
    broken.write_text(EXAMPLE.read_text().replace('region = "eu-west-1"', 'regoin = "eu-west-1"'))
    with pytest.raises(config.ConfigError) as info:
        config.load(broken)
    assert f"{broken}: platform.regoin: unknown key (did you mean 'region'?)" in str(info.value)


def test_fails_on_invalid_toml(tmp_path: Path) -> None:
    broken = tmp_path / "platform.toml"
    broken.write_text("[platform\nname = 1")
    with pytest.raises(config.ConfigError, match=r"platform.toml: not valid TOML"):
        config.load(broken)


def test_fails_on_missing_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"missing.toml: cannot read: No such file or directory"):
        config.load(tmp_path / "missing.toml")


def test_find_service_names_known_services() -> None:
    loaded = config.load(EXAMPLE)
    assert loaded.find_service("search/indexer")[1].name == "indexer"
    with pytest.raises(
        config.ConfigError, match=r"service 'search/api' not found \(known: payments/api, search/indexer\)"
    ):
        loaded.find_service("search/api")


def test_fails_when_two_teams_define_the_same_base(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["base_images"][0]["name"] = "python"
    assert problems(example_raw) == [
        "teams[1].base_images[0].name: base image 'python' is defined by another team too "
        "(build args BASE_<NAME> must be unique)"
    ]
