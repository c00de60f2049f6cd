"""The traffic stand-in's CloudWatch part (#29) against moto over HTTP: the data points it puts under Lambda's
dimensions are the ones the alarm (as the replay creates it beside the function) reads back, and its evaluation sets
the alarm's state through the API the deployer's bake reads."""

from __future__ import annotations

import pytest

from pipeline.config import LambdaTarget
from pipeline.config.strategy import Strategy
from pipeline.local.aws import _ensure_alarms
from pipeline.local.traffic import Traffic, Watched
from tests.integration.deploys import client

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "eu-west-1"


def test_errors_put_for_one_alias_set_off_its_alarm_and_no_other(moto_endpoint: str) -> None:
    cloudwatch = client("cloudwatch", moto_endpoint)
    for function in ("traffic-bad", "traffic-good"):
        strategy = Strategy(kind="canary", percent=10, bake_seconds=10, alarms=(f"{function}-errors",))
        _ensure_alarms(cloudwatch, LambdaTarget(function_name=function, architecture="arm64", strategy=strategy))
    bad, good = (Watched(f, "live", ACCOUNT, REGION, (f"{f}-errors",)) for f in ("traffic-bad", "traffic-good"))
    stand_in = Traffic(moto_endpoint, ACCOUNT, [bad, good])
    stand_in.judge(bad)
    stand_in.judge(good)

    def states() -> dict[str, str]:
        found = cloudwatch.describe_alarms(AlarmNames=["traffic-bad-errors", "traffic-good-errors"])["MetricAlarms"]
        return {a["AlarmName"]: a["StateValue"] for a in found}

    assert states() == {"traffic-bad-errors": "OK", "traffic-good-errors": "OK"}  # no data: notBreaching
    stand_in._put(bad, "2", errors=1.0)
    stand_in._put(good, "2", errors=0.0)
    stand_in.judge(bad)
    stand_in.judge(good)
    assert states() == {"traffic-bad-errors": "ALARM", "traffic-good-errors": "OK"}
    reason = cloudwatch.describe_alarms(AlarmNames=["traffic-bad-errors"])["MetricAlarms"][0]["StateReason"]
    assert reason == "Sum 1 against the threshold 0"
