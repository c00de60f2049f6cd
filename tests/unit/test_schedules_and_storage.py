"""Schedules and storage that scale (issue #26, part): weekly base rebuilds spread over a window, deterministically,
and an artifact bucket that does not grow forever."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match


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
