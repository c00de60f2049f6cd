"""A platform of 100 services (issue #26): ten teams of ten, each service with two environments (a Lambda function
and an ECS service in each), a curated base a team (benchmarks/platforms.py). Synthesized once for this module,
with cdk-nag: every template inside CloudFormation's limits with Slipway's headroom, cfn-lint's template-size rule
(E1002) silent, and roles in the platform account growing with teams and environments -- not with services."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.platforms import write
from infra.blueprint import MAX_RESOURCES_PER_STACK, MAX_TEMPLATE_BYTES
from infra.platform_app import build_app
from pipeline.config import load

SERVICES, TEAMS = 100, 10


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("scale")
    config = load(write(directory, SERVICES))
    assembly = build_app(config, outdir=str(directory / "cdk.out")).synth()
    stacks = {
        s.stack_name: {
            "platform": s.environment.account == config.platform.account,
            "path": Path(assembly.directory) / s.template_file,
            "template": s.template,
            "types": Counter(r["Type"] for r in s.template.get("Resources", {}).values()),
        }
        for s in assembly.stacks
    }
    return {"stacks": stacks, "config": config}


def test_every_template_stays_under_the_byte_and_resource_headroom(scaled: dict[str, Any]) -> None:
    stacks = scaled["stacks"]
    assert len([n for n in stacks if "-Pipelines-" in n]) >= TEAMS
    for name, stack in stacks.items():
        assert stack["path"].stat().st_size <= MAX_TEMPLATE_BYTES, name
        assert sum(stack["types"].values()) <= MAX_RESOURCES_PER_STACK, name


def test_roles_in_the_platform_account_grow_with_teams_and_environments(scaled: dict[str, Any]) -> None:
    stacks = scaled["stacks"]
    roles = sum(s["types"]["AWS::IAM::Role"] for s in stacks.values() if s["platform"])
    own = sum(s["types"]["AWS::IAM::Role"] for n, s in stacks.items() if n.endswith(("-Registry", "-Platform")))
    # A team: pipeline, build, Stitch and two deploy roles for its services; pipeline, build and Stitch roles for its
    # bases.
    assert roles == TEAMS * (5 + 3) + own
    assert roles < 100  # (was 1,000+ for 100 services: a role per job, a pipeline role and a Source role each)
    projects = sum(s["types"]["AWS::CodeBuild::Project"] for s in stacks.values())
    assert projects > 8 * SERVICES  # the jobs are all there: they share roles, they are not fewer


def test_cfn_lint_finds_no_template_over_the_size_limit_and_no_error(scaled: dict[str, Any]) -> None:
    """The largest template of each kind of stack (pipelines, bases, a team's repositories, the rest): the rest are
    the same constructs, fewer (cfn-lint over all of them takes a minute; test_cfn_lint covers the example's)."""
    largest: dict[str, Path] = {}
    for name, stack in scaled["stacks"].items():
        kind = next((k for k in ("-Pipelines-", "-Bases-", "-Registry-", "-Workload-") if k in name), name)
        if kind not in largest or stack["path"].stat().st_size > largest[kind].stat().st_size:
            largest[kind] = stack["path"]
    templates = sorted(str(p) for p in largest.values())
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", "--", *templates],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    findings = json.loads(completed.stdout or "[]")
    assert not [f for f in findings if f["Rule"]["Id"] == "E1002" or f["Level"] == "Error"], findings[:3]


def test_every_shared_role_stays_under_iams_inline_policy_size(scaled: dict[str, Any]) -> None:
    """IAM sums a role's inline policies: at most 10,240 characters, whitespace not counted -- resolved as
    CloudFormation would (``pipeline.assembly``), for every stack of the platform."""
    from pipeline import assembly

    directory = next(iter(scaled["stacks"].values()))["path"].parent
    largest = 0
    for stack in assembly.stacks(directory):
        sizes: Counter[str] = Counter()
        for policy in stack.of_type("AWS::IAM::Policy").values():
            text = json.dumps(policy["PolicyDocument"], separators=(",", ":"))
            for role in policy["Roles"]:
                sizes[str(role)] += len(text)
        largest = max([largest, *sizes.values()])
    assert 0 < largest <= 10_240
    # CDK moves what passes its estimate of that size into managed policies: none for a team's roles.
    overflow = [
        n for n, s in scaled["stacks"].items() if s["types"]["AWS::IAM::ManagedPolicy"] and "-Workload-" not in n
    ]
    assert not overflow, overflow  # the platform's deploy role included: one pattern a workload account
