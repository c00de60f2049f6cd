"""A canary on Lambda (#29) against moto's Lambda and CloudWatch over HTTP: the alias's weights and the alarms'
states as the AWS APIs carry them (the unit tests' fake validates no request shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import LambdaTarget
from pipeline.config.strategy import Strategy
from pipeline.deployers.lambda_ import LambdaDeployer
from pipeline.deployers.shift import CloudWatchAlarms, RolledBackError
from pipeline.records import write
from tests.integration.deploys import ARM, REGISTRY, RELEASE, REPO, SECOND, answers, client, fresh_function

pytestmark = pytest.mark.integration


class Watching:
    """CloudWatch as the deployer reads it, noting what the alias says at each read (and, from ``fire_at``, setting
    the alarm in ALARM as CloudWatch would once the canary's errors crossed its threshold)."""

    def __init__(self, cloudwatch: Any, lambda_client: Any, function: str, fire_at: int = 0) -> None:
        self.cloudwatch, self.lambda_client, self.function, self.fire_at = cloudwatch, lambda_client, function, fire_at
        self.seen: list[tuple[str, dict[str, float]]] = []

    def describe_alarms(self, **kwargs: Any) -> Any:
        alias = self.lambda_client.get_alias(FunctionName=self.function, Name="live")
        self.seen.append(
            (alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}))
        )
        if self.fire_at and len(self.seen) >= self.fire_at:
            self.cloudwatch.set_alarm_state(AlarmName=f"{self.function}-errors", StateValue="ALARM", StateReason="5xx")
        return self.cloudwatch.describe_alarms(**kwargs)


def _released(lambda_client: Any, cloudwatch: Any, function: str, tmp_path: Path) -> tuple[Path, LambdaTarget]:
    """The function serving RELEASE through its alias, its alarm OK; image.json of SECOND to deploy next."""
    fresh_function(lambda_client, function)
    cloudwatch.put_metric_alarm(AlarmName=f"{function}-errors", MetricName="Errors", Namespace="AWS/Lambda",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanThreshold")  # fmt: skip
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write(first, RELEASE)
    write(second, SECOND)
    plain = LambdaTarget(function_name=function, architecture="arm64")
    deploy(LambdaDeployer(lambda_client, poll_seconds=0.2, invoke=answers), plain, image_json=first,
           out=tmp_path / "deployed-1.json", timeout=30, registry=REGISTRY)  # fmt: skip
    strategy = Strategy(kind="canary", percent=10, bake_seconds=1, alarms=(f"{function}-errors",))
    return second, LambdaTarget(function_name=function, architecture="arm64", strategy=strategy)


def _deployer(lambda_client: Any, watching: Watching) -> LambdaDeployer:
    return LambdaDeployer(lambda_client, poll_seconds=0.2, invoke=answers,
                          alarms=CloudWatchAlarms(watching, "canary"))  # fmt: skip


def test_a_canary_weights_the_alias_then_moves_it(lambda_client: Any, moto_endpoint: str, tmp_path: Path) -> None:
    cloudwatch = client("cloudwatch", moto_endpoint)
    second, target = _released(lambda_client, cloudwatch, "canary-good", tmp_path)
    watching = Watching(cloudwatch, lambda_client, "canary-good")
    deploy(_deployer(lambda_client, watching), target, image_json=second, out=tmp_path / "deployed-2.json",
           timeout=30, registry=REGISTRY)  # fmt: skip
    assert watching.seen[0] == ("1", {})  # the alarms exist before anything moves
    assert ("1", {"2": 0.1}) in watching.seen[1:]  # the bake's reads: 10 % on the new version
    alias = lambda_client.get_alias(FunctionName="canary-good", Name="live")
    assert (alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {})) == (
        "2", {},
    )  # fmt: skip
    record = json.loads((tmp_path / "deployed-2.json").read_text())
    assert record["strategy"]["outcome"] == "promoted"
    assert record["strategy"]["steps"][0] == {"percent": 10, "seconds": 1, "alarm_state": "OK"}


def test_an_alarm_during_the_canary_leaves_the_previous_version_at_100_percent(
    lambda_client: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    cloudwatch = client("cloudwatch", moto_endpoint)
    second, target = _released(lambda_client, cloudwatch, "canary-bad", tmp_path)
    watching = Watching(cloudwatch, lambda_client, "canary-bad", fire_at=2)
    with pytest.raises(RolledBackError, match="rolled back at 10 %: alarm canary-bad-errors in ALARM"):
        deploy(_deployer(lambda_client, watching), target, image_json=second, out=tmp_path / "deployed-2.json",
               timeout=30, registry=REGISTRY)  # fmt: skip
    alias = lambda_client.get_alias(FunctionName="canary-bad", Name="live")
    assert (alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {})) == (
        "1", {},
    )  # fmt: skip
    record = json.loads((tmp_path / "deployed-2.json").read_text())
    assert (record["image"], record["changed"]) == (f"{REPO}@{ARM}", False)  # the previous release serves
    assert record["strategy"]["reason"] == "rolled back at 10 %: alarm canary-bad-errors in ALARM"
