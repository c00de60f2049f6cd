"""Sharding (issues #26): pipelines spread over stacks by what CloudFormation limits -- resources and template bytes --
estimated without synthesizing, never undercounting what synth writes; one team per stack."""

from __future__ import annotations

from typing import Any

from infra.blueprint import MAX_RESOURCES_PER_STACK, blueprint, estimate, shard
from pipeline.config import load
from tests.conftest import EXAMPLE


def test_pipeline_resources_stay_within_the_estimate(synthesized: dict[str, Any]) -> None:
    """The shard planner estimates without synthesizing; the estimate must never undercount."""
    config = load(EXAMPLE)
    for name, template in synthesized["templates"].items():
        if "Pipelines" not in name:
            continue
        team = name.split("-")[3]
        plans = [blueprint(t, s, f"{t.name}/{s.name}") for t, s in config.services() if t.name == team]
        count = len(template.to_json()["Resources"])
        # Exactly, or a few over (an EKS namespace on a cluster the team's role already reaches adds nothing).
        assert count <= estimate(plans)[0] <= count + 4, (name, count)


def test_template_bytes_stay_within_the_estimate(synthesized: dict[str, Any]) -> None:
    """Bytes as CDK writes and uploads the template (what CloudFormation's 1 MB limit counts): never undercounted."""
    import pathlib

    from infra.blueprint import base_blueprint

    config = load(EXAMPLE)
    directory = pathlib.Path(synthesized["assembly"].directory)
    for name in synthesized["templates"]:
        if "Pipelines" not in name and "Bases" not in name:
            continue
        team = next(t for t in config.teams if t.name == name.split("-")[3])
        if "Pipelines" in name:
            plans = [blueprint(team, s, f"{team.name}/{s.name}") for s in team.services]
        else:
            plans = [
                base_blueprint(team, b, f"{team.name}/bases/{b.name}", "acme/platform", "main")
                for b in team.base_images
            ]
        written = (directory / f"{name}.template.json").stat().st_size
        estimated = estimate(plans)[1]
        assert written <= estimated <= written * 1.6, (name, written, estimated)


def test_shard_splits_by_template_bytes_before_resources() -> None:
    config = load(EXAMPLE)
    team, service = next(config.services())
    plans = [blueprint(team, service, "payments/api")] * 30
    shards = shard(plans, limit=10_000)  # resources no limit here: bytes alone split
    assert len(shards) > 1 and all(estimate(s)[1] <= 900_000 for s in shards)


def test_shard_keeps_teams_apart_and_under_the_limit() -> None:
    config = load(EXAMPLE)
    team, service = next(config.services())
    plans = [blueprint(team, service, "payments/api")] * 30
    shards = shard(plans)
    assert all(estimate(s)[0] <= MAX_RESOURCES_PER_STACK for s in shards)
    assert sum(len(s) for s in shards) == 30 and len(shards) > 1


def test_repository_template_bytes_stay_within_the_estimate(synthesized: dict[str, Any]) -> None:
    import pathlib

    from infra.platform_app import notifications
    from infra.repositories_stack import estimate_repositories, planned_repositories

    config = load(EXAMPLE)
    directory = pathlib.Path(synthesized["assembly"].directory)
    for team in config.teams:
        written = (directory / f"Slipway-Acme-Registry-{team.name}-1.template.json").stat().st_size
        estimated = estimate_repositories(planned_repositories(config, team), notifications(config, team))
        assert written <= estimated <= written * 1.6, (team.name, written, estimated)
