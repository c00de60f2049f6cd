"""Opt-in warm builders (#30, ``[builders]``): a Docker Server on each amd64 build project, one reserved-capacity
fleet for every arm64 build, found by an SSM dynamic reference (no export); nothing else changes, and a platform that
asks for neither gets neither."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ConfigError, parse
from tests.conftest import _EXAMPLE_RAW

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FLEET_ARN = "{{resolve:ssm:/slipway/acme/fleets/arm64}}"


def _projects(templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every CodeBuild project of the app, by name: ``{name: Environment}``."""
    found = {}
    for template in templates.values():
        for key, resource in template["Resources"].items():
            if resource["Type"] == "AWS::CodeBuild::Project":
                found[resource["Properties"].get("Name", key)] = resource["Properties"]["Environment"]
    return found


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from infra.platform_app import build_app

    raw = json.loads(json.dumps(_EXAMPLE_RAW))
    raw["builders"] = {"docker_server": "medium", "arm64_fleet": 2, "arm64_fleet_overflow": "queue"}
    assembly = build_app(parse(raw), outdir=str(tmp_path_factory.mktemp("cdk.out"))).synth()  # cdk-nag included
    return {stack.stack_name: stack.template for stack in assembly.stacks}


def test_image_builds_run_on_the_warm_builders_and_nothing_else_does(warm: dict[str, Any]) -> None:
    projects = _projects(warm)
    builds = {name: env for name, env in projects.items() if name.endswith(("_BuildAmd64", "_BuildArm64"))}
    assert len(builds) >= 6  # every service's and every base's two builds
    for name, environment in builds.items():
        if name.endswith("_BuildAmd64"):
            assert environment["DockerServer"] == {"ComputeType": "BUILD_GENERAL1_MEDIUM"}, name
            assert "Fleet" not in environment, name
        else:
            assert environment["Fleet"] == {"FleetArn": FLEET_ARN}, name
            assert (environment["Type"], environment["ComputeType"]) == ("ARM_CONTAINER", "BUILD_GENERAL1_MEDIUM")
            assert "DockerServer" not in environment, name
    others = {name: env for name, env in projects.items() if name not in builds}
    assert others and not [n for n, env in others.items() if "DockerServer" in env or "Fleet" in env]


def test_one_fleet_for_the_platform_found_by_parameter_not_export(warm: dict[str, Any]) -> None:
    fleets = [(stack, r["Properties"]) for stack, t in warm.items() for r in t["Resources"].values()
              if r["Type"] == "AWS::CodeBuild::Fleet"]  # fmt: skip
    assert [(s, p["Name"], p["BaseCapacity"], p["EnvironmentType"], p["ComputeType"], p["OverflowBehavior"])
            for s, p in fleets] == [
        ("Slipway-Acme-Registry", "slipway-acme-arm64", 2, "ARM_CONTAINER", "BUILD_GENERAL1_MEDIUM", "QUEUE")
    ]  # fmt: skip
    registry = warm["Slipway-Acme-Registry"]["Resources"]
    (parameter,) = [r["Properties"] for r in registry.values() if r["Type"] == "AWS::SSM::Parameter"]
    assert parameter["Name"] == "/slipway/acme/fleets/arm64"
    assert list(parameter["Value"]["Fn::GetAtt"])[1] == "Arn"
    assert not [name for name, t in warm.items() if "Fn::ImportValue" in json.dumps(t)]


def test_off_by_default(synthesized: dict[str, Any]) -> None:
    templates = {name: t.to_json() for name, t in synthesized["templates"].items()}
    assert not [n for n, env in _projects(templates).items() if "DockerServer" in env or "Fleet" in env]
    assert "AWS::CodeBuild::Fleet" not in json.dumps(templates)


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(_EXAMPLE_RAW))
    raw["builders"] = {"docker_server": "huge", "arm64_fleet": 1000, "arm64_fleet_compute": "tiny"}
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    message = str(caught.value)
    assert (
        "builders.docker_server: expected one of '', 'small', 'medium', 'large', 'xlarge', '2xlarge', got 'huge'"
        in message
    )
    assert "builders.arm64_fleet: expected 0..100, got 1000" in message
    assert "builders.arm64_fleet_compute: expected one of 'small', 'medium', 'large', 'xlarge', '2xlarge'" in message


def test_fleet_props_are_checked_at_construction() -> None:
    from infra.validation import PropsError
    from infra.warm_builders import Arm64FleetProps

    with pytest.raises(PropsError) as caught:
        Arm64FleetProps(platform="acme", hosts=0, compute="tiny", overflow="spill")
    assert str(caught.value).count("Arm64FleetProps") >= 1
    for prop in ("hosts: expected 1..100, got 0", "compute: expected one of", "overflow: expected one of"):
        assert prop in str(caught.value)
