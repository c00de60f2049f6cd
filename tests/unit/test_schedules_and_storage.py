"""Schedules and storage that scale (issue #26, part): weekly base rebuilds spread over a window, deterministically,
and an artifact bucket that does not grow forever."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from infra import buildspecs


def test_weekly_rebuilds_spread_over_the_window_and_keep_their_minute() -> None:
    from infra.blueprint import REBUILD_WINDOW, weekly_rebuild_time

    times = [weekly_rebuild_time(f"slipway-team{t:02d}-base-b{b}") for t in range(50) for b in range(5)]
    assert all(REBUILD_WINDOW[0] <= hour < REBUILD_WINDOW[1] and 0 <= minute < 60 for hour, minute in times)
    # 250 bases over 240 minutes: most minutes distinct, never a crowd in one (every base at 03:00 before).
    assert len(set(times)) >= 140 and max(times.count(t) for t in set(times)) <= 5
    assert weekly_rebuild_time("slipway-payments-base-python") == weekly_rebuild_time("slipway-payments-base-python")


def test_the_artifact_bucket_expires_old_artifacts_and_versions(synthesized: dict[str, Any]) -> None:
    from infra.pipelines_stack import ARTIFACT_DAYS, NONCURRENT_DAYS

    pipelines = synthesized["templates"]["Slipway-Acme-Pipelines-payments-1"]
    pipelines.has_resource_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": [Match.object_like({
            "ExpirationInDays": ARTIFACT_DAYS, "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        })]},
    })  # fmt: skip


def test_every_job_of_a_pipeline_knows_its_teams_rebuild_budget_and_gives_its_lane_up(
    synthesized: dict[str, Any],
) -> None:
    """The budget (payments: 2 in the example, search: the default 4) reaches the jobs as a number, never an entry;
    a Stitch job ends by continuing the lane, a failed Build job's post_build gives it up."""
    from pipeline import lock_store

    for stack, team, lanes in (("Slipway-Acme-Pipelines-payments-1", "payments", "2"),
                               ("Slipway-Acme-Bases-search-1", "search", "4")):  # fmt: skip
        projects = synthesized["templates"][stack].find_resources("AWS::CodeBuild::Project").values()
        seen = set()
        for project in projects:
            variables = {
                v["Name"]: v.get("Value") for v in project["Properties"]["Environment"]["EnvironmentVariables"]
            }
            spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
            commands = spec["phases"]["build"]["commands"]
            if commands[0].startswith(("slipway build", "slipway stitch")):
                seen.add(commands[0].split()[1])
                assert variables[lock_store.TEAM_ENV] == team and variables[lock_store.LANES_ENV] == lanes
            if commands[0].startswith("slipway build"):
                assert spec["phases"]["post_build"]["commands"] == [buildspecs.LANE_ON_FAILURE]
            if commands[0].startswith("slipway stitch"):
                assert commands[-1] == "slipway bases continue"
        assert seen == {"build", "stitch"}, stack
