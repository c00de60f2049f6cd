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
    """A digest written at synth is a digest no base release can move: the lock must be read when the job runs."""
    for name, template in synthesized["templates"].items():
        for logical, project in template.find_resources("AWS::CodeBuild::Project").items():
            document = json.dumps(project["Properties"])
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
