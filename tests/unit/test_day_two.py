"""Day two (issue #25): jobs read the base lock at run time from the lock store (SSM parameters, one per entry, with
their history), so a base release reaches what is built on it without a new template; the platform's own pipeline
re-reads the upstream tags weekly."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Match

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def test_no_codebuild_project_holds_a_base_or_upstream_digest(synthesized: dict[str, Any]) -> None:
    """A digest written at synth is a digest no base release can move: the lock must be read when the job runs. The
    one digest a project holds is its image's (Slipway's runner, pinned by a commit of the lock)."""
    for name, template in synthesized["templates"].items():
        for logical, project in template.find_resources("AWS::CodeBuild::Project").items():
            properties = {k: v for k, v in project["Properties"].items() if k != "Environment"}
            environment = {k: v for k, v in project["Properties"]["Environment"].items() if k != "Image"}
            document = json.dumps({**properties, "Environment": environment})
            assert not DIGEST.search(document), f"{name}/{logical} holds a digest"
            assert "SLIPWAY_BASE_LOCK" not in document, f"{name}/{logical} holds the lock"


def test_the_platform_pipeline_refreshes_upstreams_weekly(synthesized: dict[str, Any]) -> None:
    platform = synthesized["templates"]["Slipway-Acme-Platform"]
    platform.has_resource_properties("AWS::CodePipeline::Pipeline", {
        "Name": "slipway-platform",
        "Stages": Match.array_with([Match.object_like({"Name": "Refresh"})]),
    })  # fmt: skip
    platform.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": Match.string_like_regexp(r"^cron\(\d+ \d+ \? \* SUN \*\)$"),
    })  # fmt: skip


def test_cdk_deploy_all_creates_the_platform_pipeline_before_the_pipelines_that_build_on_bases(
    synthesized: dict[str, Any],
) -> None:
    stacks = synthesized["stacks"]
    platform = stacks["Slipway-Acme-Platform"]
    dependent = [s for name, s in stacks.items() if "-Pipelines-" in name or "-Bases-" in name]
    assert dependent and all(platform in s.dependencies for s in dependent)


def statements(template: Any, action: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                found.append(statement)
    return found


def test_a_teams_bases_write_only_the_teams_entries_and_builds_only_register_themselves(
    synthesized: dict[str, Any],
) -> None:
    """A team's base jobs share the team's build role (issue #26): they may write the team's base entries, by name,
    never a wildcard and never another team's."""
    bases = synthesized["templates"]["Slipway-Acme-Bases-payments-1"]
    written = json.dumps([s["Resource"] for s in statements(bases, "ssm:PutParameter")])
    for key in ("BASE_DEBIAN", "BASE_PYTHON", "BASE_PYTHON_BUILD", "BASE_LAMBDA_PYTHON"):
        assert f'parameter/slipway/acme/lock/{key}"' in written, key
    assert "lock/*" not in written and "BASE_STATIC" not in written  # not another team's base
    search = json.dumps([s["Resource"] for s in statements(synthesized["templates"]["Slipway-Acme-Bases-search-1"],
                                                           "ssm:PutParameter")])  # fmt: skip
    assert "lock/BASE_STATIC" in search and "BASE_PYTHON" not in search
    services = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    registered = [s["Resource"] for s in statements(services, "ssm:PutParameter")]
    assert registered and all(
        "parameter/slipway/acme/dependents/slipway-payments-api" in json.dumps(r) for r in registered
    )
    # A service starts only its own team's pipelines: the next one waiting in its rebuild lane.
    started = json.dumps([s["Resource"] for s in statements(services, "codepipeline:StartPipelineExecution")])
    # (once in the build role's policy, for a failed build's post_build, and once in the Stitch role's)
    assert started.count(":slipway-payments-*") == 2 and "slipway-*" not in started


def buildspec(template: Any, role_description: str) -> dict[str, Any]:
    """The buildspec of the project whose role is described so."""
    roles = {k for k, r in template.find_resources("AWS::IAM::Role").items()
             if r["Properties"].get("Description") == role_description}  # fmt: skip
    for project in template.find_resources("AWS::CodeBuild::Project").values():
        if project["Properties"]["ServiceRole"]["Fn::GetAtt"][0] in roles:
            return dict(json.loads(project["Properties"]["Source"]["BuildSpec"]))
    raise AssertionError(f"no project with a role described {role_description!r}")


def test_the_platform_pipeline_deploys_the_pushed_platform_before_it_refreshes(synthesized: dict[str, Any]) -> None:
    """Issue #25, item 1: a push to the platform repository deploys it from CodeBuild (self-mutation), with this
    checkout's Slipway; a push of anything the stacks are synthesized from starts it."""
    platform = synthesized["templates"]["Slipway-Acme-Platform"]
    pipeline = next(iter(platform.find_resources("AWS::CodePipeline::Pipeline").values()))["Properties"]
    assert [s["Name"] for s in pipeline["Stages"]] == ["Source", "Deploy", "Refresh"]
    paths = pipeline["Triggers"][0]["GitConfiguration"]["Push"][0]["FilePaths"]["Includes"]
    assert {"platform.toml", "images/**", "lambda_base/**", "infra/**", "pipeline/**"} <= set(paths)
    assert len(paths) <= 8  # CodePipeline's most per filter
    spec = buildspec(platform, "Slipway platform deploy (self-mutation)")
    assert spec["phases"]["build"]["commands"] == ["python3 -m pipeline.cli platform deploy --config platform.toml"]
    assert "install" not in spec["phases"]  # the runner's platform target holds the CDK libraries and CLI
    # Hundreds of stacks to synthesize and update (issue #26): CodeBuild's longest timeout, not the jobs' hour.
    timeouts = sorted(
        p["Properties"]["TimeoutInMinutes"] for p in platform.find_resources("AWS::CodeBuild::Project").values()
    )
    assert timeouts == [60, 480]  # the refresh, the deploy


def test_the_platform_deploy_assumes_only_the_bootstrap_roles_of_the_places_it_deploys_to(
    synthesized: dict[str, Any],
) -> None:
    platform = synthesized["templates"]["Slipway-Acme-Platform"]
    assumed = json.dumps([s["Resource"] for s in statements(platform, "sts:AssumeRole")])
    places = (
        ("111111111111", "eu-west-1"),
        ("222222222222", "eu-west-1"),
        ("555555555555", "eu-central-1"),
        ("111111111111", "eu-central-1"),
    )  # the replica of payments/api for prod
    for account, region in places:
        # One pattern a place for its four bootstrap roles: the account and region named, only the kind left open.
        assert f':iam::{account}:role/cdk-hnb659fds-*-role-{account}-{region}"' in assumed, account
    assert assumed.count("role/cdk-hnb659fds-*-role-") == 4  # the platform account, dev and prod, prod's replica
    assert "role/*" not in assumed and ":iam::*" not in assumed
    started = json.dumps([s["Resource"] for s in statements(platform, "codepipeline:StartPipelineExecution")])
    assert ':codepipeline:eu-west-1:111111111111:slipway-*"' in started and started.count(":codepipeline:*") == 0
    assert statements(platform, "iam:CreateRole") == []  # the execution role CloudFormation uses creates roles


def test_the_refresh_publishes_upstreams_and_may_import_them_through_the_cache(synthesized: dict[str, Any]) -> None:
    platform = synthesized["templates"]["Slipway-Acme-Platform"]
    assert "parameter/slipway/acme/lock/*" in json.dumps(
        [s["Resource"] for s in statements(platform, "ssm:PutParameter")]
    )
    assert statements(platform, "ecr:BatchImportUpstreamImage") and statements(platform, "ecr:GetAuthorizationToken")
    spec = buildspec(platform, "Slipway upstream refresh")
    assert spec["phases"]["build"]["commands"] == [
        "slipway bases refresh --lock images/lock.json --registry 111111111111.dkr.ecr.eu-west-1.amazonaws.com"
    ]


def test_the_readme_never_tells_a_person_to_run_cdk_deploy_without_naming_the_stacks() -> None:
    """Issue #25, defect 4: `cdk deploy` alone refuses an app of several stacks ("specify which stacks to use (or
    use --all)"); the README said "run `cdk deploy` once"."""
    from tests.conftest import ROOT

    commands = re.findall(r"`(cdk deploy[^`]*)`", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands and all(c.startswith(("cdk deploy --all", "cdk deploy Slipway-")) for c in commands), commands


def test_a_base_publishes_its_verified_release_with_what_it_was_built_on(synthesized: dict[str, Any]) -> None:
    bases = synthesized["templates"]["Slipway-Acme-Bases-payments-1"]
    specs = [
        json.loads(p["Properties"]["Source"]["BuildSpec"])
        for p in bases.find_resources("AWS::CodeBuild::Project").values()
    ]
    stitches = [
        s["phases"]["build"]["commands"]
        for s in specs
        if s["phases"]["build"]["commands"][0].startswith("slipway stitch")
    ]
    python = next(c for c in stitches if any("--key BASE_PYTHON " in line for line in c))
    assert python[1] == "slipway verify --image-json image.json"  # published only once verified...
    assert python[2].startswith("slipway attest --image-json image.json --key ")  # ... and signed
    assert python[3] == (
        "slipway bases publish --image-json image.json --key BASE_PYTHON"
        ' --build "$CODEBUILD_SRC_DIR_build_amd64/build-amd64.json" --build "$CODEBUILD_SRC_DIR_build_arm64/build-arm64.json"'
    )
    assert python[4:] == ["slipway bases continue"]  # then the next of the team's rebuild lane starts


def test_the_platform_deploy_runs_in_the_runners_platform_target_and_the_refresh_in_the_runner(
    synthesized: dict[str, Any],
) -> None:
    """The Deploy job needs Node and the CDK: the `platform` target (x86_64); every other job the runner itself."""
    from pipeline import bases, runner_image
    from tests.conftest import ROOT

    lock = bases.load(ROOT / "images" / "lock.json")
    platform = synthesized["templates"]["Slipway-Acme-Platform"]
    images = {
        json.loads(p["Properties"]["Source"]["BuildSpec"])["phases"]["build"]["commands"][0].split()[2]: json.dumps(
            p["Properties"]["Environment"]
        )
        for p in platform.find_resources("AWS::CodeBuild::Project").values()
    }
    assert set(images) == {"pipeline.cli", "refresh"}
    assert lock[runner_image.PLATFORM_LOCK_KEY].rpartition("@")[2] in images["pipeline.cli"]
    assert lock[runner_image.LOCK_KEY].rpartition("@")[2] in images["refresh"]
    assert all('"LINUX_CONTAINER"' in e and "SERVICE_ROLE" in e for e in images.values())
