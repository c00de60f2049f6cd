"""The traffic stand-in (#29): the callers of each Lambda alias that shifts traffic, and CloudWatch evaluating its
alarms. In AWS a canary is judged by real traffic; the replay has none, so while ``slipway local run`` (or ``push``)
runs, one thread per AWS stand-in plays both parts for every Lambda target whose strategy watches alarms:

- **Callers.** While the alias splits its traffic (``RoutingConfig.AdditionalVersionWeights``), requests go to it one
  at a time, :data:`ROUND` to a round, each to the version the weights give it: the new version's share first in each
  round (``max(1, round(ROUND * weight))`` requests), the rest to the version the alias names. Each is Lambda's Invoke of
  that version -- the AWS stand-in runs its image, as Lambda does -- with the events of :data:`EVENTS` in turn. Traffic
  flows only while an alias is split: that is where the replay needs it, and the bound leaves the cores to the builds.
- **CloudWatch.** Each request puts ``AWS/Lambda`` ``Invocations`` and ``Errors`` (a function error is one) under
  Lambda's dimensions: the function, the alias (``Resource``) and the version that ran (``ExecutedVersion``). Every
  tick each watched alarm is evaluated as CloudWatch evaluates it -- its statistic over its last ``Period`` *
  ``EvaluationPeriods`` seconds, read back with ``GetMetricStatistics``, against its threshold, missing data treated
  as the alarm says -- and its state set (``SetAlarmState``) when it changes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import LambdaTarget, PlatformConfig
from pipeline.local import aws
from pipeline.progress import progress

ROUND = 10
"""Requests to a round: a 10 % canary gets one of them, first."""
EVENTS: tuple[dict[str, str], ...] = ({"path": "/"}, {"path": "/health"})
"""What the callers send, in turn (the example's HTTP-shaped events; the smoke event is ``/health``)."""
TICK_SECONDS = 1.0
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_MISSING = {"breaching": "ALARM", "notBreaching": "OK", "missing": "INSUFFICIENT_DATA", "ignore": ""}


@dataclass(frozen=True)
class Watched:
    function: str
    alias: str
    account: str
    region: str
    alarms: tuple[str, ...]


def watched(config: PlatformConfig) -> list[Watched]:
    """Every Lambda target whose strategy watches alarms, where it runs."""
    return [
        Watched(target.function_name, target.alias, account, region, target.strategy.alarms)
        for account, region, target in aws.deploy_places(config)
        if isinstance(target, LambdaTarget) and target.strategy.alarms
    ]


def version_for(request: int, weight: float, new: str, old: str) -> str:
    """The version request number ``request`` of the split goes to: the new one's share first in each round."""
    return new if request % ROUND < max(1, round(ROUND * weight)) else old


def evaluate(alarm: dict[str, Any], datapoints: list[dict[str, Any]]) -> tuple[str, str]:
    """``(state, reason)`` of ``alarm`` over ``datapoints`` (its window's, as GetMetricStatistics gives them); an empty
    state: leave the alarm as it is (missing data ``ignore``)."""
    statistic, threshold = alarm["Statistic"], float(alarm["Threshold"])
    if not datapoints:
        state = _MISSING.get(alarm.get("TreatMissingData", "missing"), "INSUFFICIENT_DATA")
        return (
            state,
            f"no data in the last {alarm['Period'] * alarm['EvaluationPeriods']} s (treated as {state or 'before'})",
        )
    values = [float(point[statistic]) for point in datapoints]
    value = sum(values) / len(values) if statistic == "Average" else sum(values)
    value = max(values) if statistic == "Maximum" else min(values) if statistic == "Minimum" else value
    breached = _COMPARE[alarm["ComparisonOperator"]](value, threshold)
    return ("ALARM" if breached else "OK"), f"{statistic} {value:g} against the threshold {threshold:g}"


class Traffic:
    """Both parts for ``targets``, one tick at a time (:meth:`tick`); :func:`start` runs it on a thread."""

    def __init__(self, endpoint: str, platform_account: str, targets: list[Watched]) -> None:
        self.endpoint, self.platform_account, self.targets = endpoint, platform_account, targets
        self._sent: dict[Watched, tuple[tuple[str, str, float], int]] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}

    def _client(self, service: str, target: Watched) -> Any:
        key = (service, target.account, target.region)
        if key not in self._clients:
            self._clients[key] = aws.client_in(
                service, self.endpoint, target.account, self.platform_account, target.region
            )
        return self._clients[key]

    def tick(self) -> None:
        for target in self.targets:
            self.send(target)
            self.judge(target)

    def send(self, target: Watched) -> None:
        """One request to the alias, if it splits its traffic."""
        lam = self._client("lambda", target)
        alias = lam.get_alias(FunctionName=target.function, Name=target.alias)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if not weights:
            self._sent.pop(target, None)
            return
        new, weight = next(iter(weights.items()))
        split = (alias["FunctionVersion"], new, float(weight))
        seen, request = self._sent.get(target, (split, 0))
        request = request if seen == split else 0
        version = version_for(request, float(weight), new, alias["FunctionVersion"])
        answer = lam.invoke(FunctionName=target.function, Qualifier=version,
                            Payload=json.dumps(EVENTS[request % len(EVENTS)]).encode())  # fmt: skip
        answer["Payload"].read()
        self._sent[target] = (split, request + 1)
        self._put(target, version, errors=1.0 if answer.get("FunctionError") else 0.0)

    def _put(self, target: Watched, version: str, *, errors: float) -> None:
        function = {"Name": "FunctionName", "Value": target.function}
        resource = {"Name": "Resource", "Value": f"{target.function}:{target.alias}"}
        executed = {"Name": "ExecutedVersion", "Value": version}
        now = datetime.now(UTC)
        # One point under all three dimensions: moto matches an alarm's dimensions as a subset of a point's (where
        # CloudWatch keeps an aggregate per set), so the function's and the alias's alarms each count it once.
        self._client("cloudwatch", target).put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": name, "Dimensions": [function, resource, executed], "Value": value, "Unit": "Count",
             "Timestamp": now}
            for name, value in (("Invocations", 1.0), ("Errors", errors))
        ])  # fmt: skip

    def judge(self, target: Watched) -> None:
        """Each watched alarm evaluated over its window; its state set when it changes."""
        cloudwatch = self._client("cloudwatch", target)
        now = datetime.now(UTC)
        for alarm in cloudwatch.describe_alarms(AlarmNames=list(target.alarms))["MetricAlarms"]:
            window = int(alarm["Period"]) * int(alarm["EvaluationPeriods"])
            points = cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"], MetricName=alarm["MetricName"], Dimensions=alarm.get("Dimensions", []),
                StartTime=now - timedelta(seconds=window), EndTime=now + timedelta(seconds=1), Period=window,
                Statistics=[alarm["Statistic"]],
            )["Datapoints"]  # fmt: skip
            state, reason = evaluate(alarm, points)
            if state and state != alarm["StateValue"]:
                cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)


_RUNNING: dict[str, Traffic] = {}
_LOCK = threading.Lock()


def start(endpoint: str, config: PlatformConfig) -> Traffic:
    """The stand-in for ``endpoint`` (one thread per AWS stand-in, for this process's life), watching ``config``'s
    targets; started once, its targets replaced by a later run's."""
    with _LOCK:
        if endpoint in _RUNNING:
            _RUNNING[endpoint].targets = watched(config)
            return _RUNNING[endpoint]
        traffic = _RUNNING[endpoint] = Traffic(endpoint, config.platform.account, watched(config))
    threading.Thread(target=_forever, args=(traffic,), daemon=True, name="slipway-traffic").start()
    return traffic


def _forever(traffic: Traffic) -> None:
    told: set[str] = set()
    while True:
        time.sleep(TICK_SECONDS)
        try:
            traffic.tick()
        except Exception as exc:  # a stand-in that stopped (or a target not made yet): say it once, keep going
            traffic._clients.clear()  # a restarted AWS stand-in hands out new credentials: ask again next tick
            message = f"traffic stand-in: {type(exc).__name__}: {exc}"
            if message not in told:
                told.add(message)
                progress(message)
