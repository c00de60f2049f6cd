"""The traffic stand-in (#29): requests split by the alias's weights (the canary's share first), their errors put as
Lambda's metrics, and alarms evaluated as CloudWatch evaluates them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from pipeline import config
from pipeline.local import traffic
from pipeline.local.traffic import ROUND, Traffic, Watched, evaluate, version_for
from tests.conftest import EXAMPLE

TARGET = Watched("payments-api", "live", "222222222222", "eu-west-1", ("payments-api-dev-errors",))
ALARM = {"AlarmName": "payments-api-dev-errors", "Statistic": "Sum", "Threshold": 0.0, "Period": 60,
         "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
         "StateValue": "OK", "Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": []}  # fmt: skip


def test_the_example_watches_both_lambda_canaries_where_they_run() -> None:
    assert traffic.watched(config.load(EXAMPLE)) == [
        Watched("payments-api", "live", "222222222222", "eu-west-1", ("payments-api-dev-errors",)),
        Watched("payments-api", "live", "555555555555", "eu-central-1", ("payments-api-prod-errors",)),
    ]


@pytest.mark.parametrize(("weight", "new_share"), [(0.1, 1), (0.3, 3), (0.5, 5), (0.01, 1)])
def test_requests_follow_the_weights_with_the_new_versions_share_first(weight: float, new_share: int) -> None:
    plan = [version_for(i, weight, "2", "1") for i in range(2 * ROUND)]
    assert plan[:ROUND] == ["2"] * new_share + ["1"] * (ROUND - new_share)
    assert plan[ROUND:] == plan[:ROUND]  # every round alike


@pytest.mark.parametrize(
    ("points", "alarm", "state"),
    [
        ([{"Sum": 1.0}], {}, "ALARM"),
        ([{"Sum": 0.0}], {}, "OK"),
        ([], {}, "OK"),  # notBreaching: the errors aged out of the window
        ([], {"TreatMissingData": "breaching"}, "ALARM"),
        ([], {"TreatMissingData": "missing"}, "INSUFFICIENT_DATA"),
        ([], {"TreatMissingData": "ignore"}, ""),  # left as it is
        (
            [{"Sum": 2.0}, {"Sum": 1.0}],
            {"ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 3.0},
            "ALARM",
        ),
        ([{"Average": 0.2}, {"Average": 0.4}], {"Statistic": "Average", "Threshold": 0.25}, "ALARM"),
        (
            [{"Maximum": 5.0}],
            {"Statistic": "Maximum", "ComparisonOperator": "LessThanThreshold", "Threshold": 5.0},
            "OK",
        ),
    ],
)
def test_an_alarm_is_evaluated_as_cloudwatch_evaluates_it(points: list[dict[str, float]], alarm: dict[str, Any],
                                                          state: str) -> None:  # fmt: skip
    assert evaluate({**ALARM, **alarm}, points)[0] == state


class FakeLambda:
    """An alias split 90/10 between versions 1 and 2; version 2 errs on every path but /health."""

    def __init__(self) -> None:
        self.weights: dict[str, float] = {"2": 0.1}
        self.invoked: list[tuple[str, str]] = []

    def get_alias(self, **kwargs: Any) -> dict[str, Any]:
        return {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": self.weights}}

    def invoke(self, FunctionName: str, Qualifier: str, Payload: bytes) -> dict[str, Any]:
        path = json.loads(Payload)["path"]
        self.invoked.append((Qualifier, path))
        failed = Qualifier == "2" and path != "/health"
        return {"Payload": io.BytesIO(b"{}"), **({"FunctionError": "Unhandled"} if failed else {})}


class FakeCloudWatch:
    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []
        self.state = "OK"

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.put += [{**d, "Namespace": Namespace} for d in MetricData]

    def describe_alarms(self, AlarmNames: list[str]) -> dict[str, Any]:
        return {"MetricAlarms": [{**ALARM, "StateValue": self.state}]}

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        errors = [d["Value"] for d in self.put if d["MetricName"] == "Errors"]
        return {"Datapoints": [{"Sum": sum(errors)}] if errors else []}

    def set_alarm_state(self, AlarmName: str, StateValue: str, StateReason: str) -> None:
        self.state = StateValue


def _traffic() -> tuple[Traffic, FakeLambda, FakeCloudWatch]:
    stand_in = Traffic("http://127.0.0.1:1", "111111111111", [TARGET])
    lam, cloudwatch = FakeLambda(), FakeCloudWatch()
    stand_in._clients = {("lambda", TARGET.account, TARGET.region): lam,
                         ("cloudwatch", TARGET.account, TARGET.region): cloudwatch}  # fmt: skip
    return stand_in, lam, cloudwatch


def test_a_canary_failing_on_one_path_sets_its_alarm_off_at_the_first_request() -> None:
    stand_in, lam, cloudwatch = _traffic()
    stand_in.tick()
    assert lam.invoked == [("2", "/")]  # the canary's share first, on the first path
    assert cloudwatch.state == "ALARM"
    errors = [d for d in cloudwatch.put if d["MetricName"] == "Errors"]
    assert [d["Dimensions"] for d in errors] == [[
        {"Name": "FunctionName", "Value": "payments-api"}, {"Name": "Resource", "Value": "payments-api:live"},
        {"Name": "ExecutedVersion", "Value": "2"},
    ]]  # fmt: skip
    assert [d["Value"] for d in errors] == [1.0]


def test_a_good_canary_keeps_its_alarm_ok_and_traffic_stops_with_the_split() -> None:
    stand_in, lam, cloudwatch = _traffic()
    lam.invoke = lambda FunctionName, Qualifier, Payload: (  # type: ignore[method-assign]
        lam.invoked.append((Qualifier, json.loads(Payload)["path"])) or {"Payload": io.BytesIO(b"{}")}
    )
    for _ in range(ROUND + 1):
        stand_in.tick()
    assert [v for v, _ in lam.invoked] == ["2"] + ["1"] * (ROUND - 1) + ["2"]
    assert [p for _, p in lam.invoked][:2] == ["/", "/health"]
    assert cloudwatch.state == "OK"
    lam.weights = {}  # promoted: no split, no traffic
    stand_in.tick()
    assert len(lam.invoked) == ROUND + 1
