"""A progressive traffic shift (#29): a strategy's steps, each baked with its alarms watched, and what happened.

The deployer moves the traffic (:class:`Move`: a Lambda alias's weights); this module decides when, reads the alarms
during each bake (CloudWatch ``DescribeAlarms`` in the target's account), and on one in ``ALARM`` moves all traffic
back and ends the deploy as failed (:class:`RolledBackError`), naming the step and the alarm. A retry in the middle of a
shift resumes at the step the target is on (its bake watched again), so no split is ever left that the record does
not describe.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, get_args

from botocore.exceptions import ClientError

from pipeline.config.strategy import Strategy, StrategyKind
from pipeline.deployers.base import DeployError, DeployRecord, Grant, Permission

PROMOTED, ROLLED_BACK = "promoted", "rolled back"
ALARM_ARN = "arn:{partition}:cloudwatch:{region}:{account}:alarm:%s"
POLL_SECONDS = 10.0
"""How often a bake reads its alarms (CloudWatch evaluates a standard alarm once a minute)."""


@dataclass(frozen=True)
class Step:
    percent: int
    seconds: int
    alarm_state: str = ""
    """The worst state the bake saw (``OK``, ``INSUFFICIENT_DATA``, ``ALARM``); empty: no alarm watched."""


@dataclass(frozen=True)
class Shift:
    kind: str
    steps: tuple[Step, ...] = ()
    outcome: str = PROMOTED
    reason: str = ""

    def json(self) -> dict[str, Any]:
        steps = [{"percent": s.percent, "seconds": s.seconds, "alarm_state": s.alarm_state} for s in self.steps]
        return {
            "kind": self.kind,
            "steps": steps,
            "outcome": self.outcome,
            **({"reason": self.reason} if self.reason else {}),
        }


class RolledBackError(DeployError):
    """An alarm fired during a bake: all traffic is back on the previous version (``shift`` says where and why)."""

    def __init__(self, message: str, shift: Shift) -> None:
        super().__init__(message)
        self.shift = shift
        self.record: DeployRecord | None = None
        """What serves now, the shift in it (the deployer adds it; the deploy command writes it)."""


class Alarms(Protocol):
    def states(self, names: Sequence[str]) -> Mapping[str, str]: ...


class CloudWatchAlarms:
    """The alarms' states as CloudWatch holds them; an alarm that does not exist is an error (a typo would otherwise
    watch nothing). ``client``: a CloudWatch client, or a session to make one from when the first alarm is read (a
    deployer made for ``slipway status``, or a target with no strategy, never reads one)."""

    def __init__(self, client: Any, where: str) -> None:
        self._client, self._where = client, where

    @functools.cached_property
    def _cloudwatch(self) -> Any:
        return self._client.client("cloudwatch") if hasattr(self._client, "client") else self._client

    def states(self, names: Sequence[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        try:
            for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
                answer = self._cloudwatch.describe_alarms(AlarmNames=list(names[start : start + 100]))
                found |= {a["AlarmName"]: a["StateValue"] for a in answer.get("MetricAlarms", [])}
                found |= {a["AlarmName"]: a["StateValue"] for a in answer.get("CompositeAlarms", [])}
        except ClientError as exc:
            raise DeployError(f"{self._where}: cannot read alarms ({exc.response['Error']['Code']})") from exc
        missing = sorted(set(names) - set(found))
        if missing:
            raise DeployError(f"{self._where}: alarm {missing[0]!r} does not exist (strategy.alarms)")
        return found


def add_arguments(parser: argparse.ArgumentParser, kinds: Sequence[str] = get_args(StrategyKind)) -> None:
    """The deploy command's strategy options, as ``Strategy.cli_args`` writes them."""
    default = Strategy()
    parser.add_argument("--strategy", default=default.kind, choices=kinds)
    parser.add_argument("--percent", type=int, default=default.percent, help="canary: its share of traffic")
    parser.add_argument("--bake-seconds", type=int, default=default.bake_seconds, help="canary: its bake")
    parser.add_argument("--step-percent", type=int, default=default.step_percent, help="linear: each step")
    parser.add_argument("--interval-seconds", type=int, default=default.interval_seconds, help="linear: its bake")
    parser.add_argument("--alarm", action="append", default=[], help="a CloudWatch alarm each bake watches")


def from_args(args: argparse.Namespace) -> Strategy:
    return Strategy(kind=args.strategy, percent=args.percent, bake_seconds=args.bake_seconds,
                    step_percent=args.step_percent, interval_seconds=args.interval_seconds,
                    alarms=tuple(args.alarm))  # fmt: skip


def alarm_grants(strategy: Strategy) -> tuple[Permission, ...]:
    """A shift's bakes read the alarms it names, and only those."""
    if not strategy.alarms:
        return ()
    alarms = tuple(ALARM_ARN % name for name in strategy.alarms)
    return (Grant(actions=("cloudwatch:DescribeAlarms",), resources=alarms,
                  reason="the alarms the traffic shift watches (strategy.alarms)"),)  # fmt: skip


Move = Callable[[int], None]
"""Put ``percent`` of the traffic on the new version (0: all on the previous one; 100: all on the new one)."""


def shift(
    strategy: Strategy,
    move: Move,
    alarms: Alarms,
    what: str,
    *,
    on_now: int = 0,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Shift:
    """Each step of ``strategy`` from the one the target is on (``on_now``: the new version's share found there by a
    retry), its bake watched; all traffic back (``move(0)``) and RolledBackError as soon as an alarm is in ``ALARM``."""
    names = strategy.alarms
    if names:
        alarms.states(names)  # every alarm exists before anything moves
    done: list[Step] = []
    for percent, seconds in strategy.steps():
        if percent < on_now:
            continue
        move(percent)
        state, firing = _bake(alarms, names, seconds, poll, clock, sleep) if percent < 100 else ("", "")
        done.append(Step(percent, seconds, state))
        if firing:
            move(0)
            reason = f"rolled back at {percent} %: alarm {firing} in ALARM"
            raised = Shift(strategy.kind, tuple(done), ROLLED_BACK, reason)
            raise RolledBackError(f"{what}: {reason}; all traffic is back on the previous version", raised)
    return Shift(strategy.kind, tuple(done))


def read(alarms: Alarms, names: Sequence[str]) -> tuple[str, str]:
    """One read of the alarms: ``(state, the alarm in ALARM or "")``, the state ``ALARM``, else ``INSUFFICIENT_DATA``
    when one has too little data, else ``OK``; ``("", "")`` when none is watched."""
    if not names:
        return "", ""
    states = alarms.states(names)
    firing = sorted(name for name, state in states.items() if state == "ALARM")
    if firing:
        return "ALARM", firing[0]
    return ("INSUFFICIENT_DATA" if "INSUFFICIENT_DATA" in states.values() else "OK"), ""


def worse(seen: str, state: str) -> str:
    """The worse of two states a bake saw (``INSUFFICIENT_DATA`` over ``OK`` over nothing read)."""
    return state if state == "INSUFFICIENT_DATA" or not seen else seen


def watched(alarms: Alarms | None, what: str) -> Alarms:
    """``alarms``, or CloudWatch as the process's own session reaches it."""
    if alarms is not None:
        return alarms
    import boto3

    return CloudWatchAlarms(boto3.Session(), what)


def _bake(
    alarms: Alarms,
    names: Sequence[str],
    seconds: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[str, str]:
    """``(worst state seen, the alarm in ALARM or "")`` over ``seconds``, the alarms read at least once."""
    deadline, seen = clock() + seconds, ""
    while True:
        state, firing = read(alarms, names)
        if firing:
            return state, firing
        seen = worse(seen, state)
        left = deadline - clock()
        if left <= 0:
            return seen, ""
        sleep(min(poll, left))
