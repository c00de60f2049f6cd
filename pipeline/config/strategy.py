"""How a deploy moves traffic (#29): all at once, or a canary or linear shift whose every bake watches alarms.

``[teams.services.deploy.lambda.strategy]`` (and an environment's): ``kind``, its numbers, and ``alarms`` (CloudWatch
alarm names in the target's account and region). A shift moves the alias's weight to the new version step by step;
during each step's bake the alarms are read, and one in ``ALARM`` sends all traffic back to the previous version
(:mod:`pipeline.deployers.shift`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pipeline.config.values import InRange, Matches

StrategyKind = Literal["all-at-once", "canary", "linear"]
# CloudWatch alarm names: 1-255 characters; Slipway takes a set no shell or YAML needs to quote (names are passed to
# the deploy job on its command line, quoted all the same).
_ALARM_NAME = re.compile(r"^[A-Za-z0-9._/#:@+=-]{1,255}$", re.ASCII)
MAX_SHIFT_SECONDS = 7 * 3600
"""A shift's bakes in all: the deploy job waits them out, its CodeBuild timeout grown by them
(:mod:`infra.service_pipeline`), and CodeBuild stops a build after 8 hours: an hour is left for the rest."""


@dataclass(frozen=True, kw_only=True)
class Strategy:
    kind: StrategyKind = "all-at-once"
    percent: Annotated[int, InRange(1, 99)] = 10
    """canary: the share of traffic the new version takes during the bake."""
    bake_seconds: Annotated[int, InRange(0, 3600)] = 300
    """canary: how long the canary runs with the alarms watched before the rest moves."""
    step_percent: Annotated[int, InRange(1, 50)] = 10
    """linear: the share each step adds."""
    interval_seconds: Annotated[int, InRange(0, 3600)] = 60
    """linear: how long each step runs with the alarms watched."""
    alarms: tuple[Annotated[str, Matches(_ALARM_NAME, "a CloudWatch alarm name")], ...] = ()

    def steps(self) -> tuple[tuple[int, int], ...]:
        """``(percent on the new version, seconds it bakes)``, the last one always ``(100, 0)``."""
        if self.kind == "canary":
            return ((self.percent, self.bake_seconds), (100, 0))
        if self.kind == "linear":
            return (*((p, self.interval_seconds) for p in range(self.step_percent, 100, self.step_percent)), (100, 0))
        return ((100, 0),)

    @property
    def seconds(self) -> int:
        return sum(seconds for _, seconds in self.steps())

    def cli_args(self) -> tuple[str, ...]:
        """What the deploy job is told (nothing for the default: all at once, no alarm)."""
        if self == Strategy():
            return ()
        numbers = {"canary": ("--percent", str(self.percent), "--bake-seconds", str(self.bake_seconds)),
                   "linear": ("--step-percent", str(self.step_percent), "--interval-seconds",
                              str(self.interval_seconds))}.get(self.kind, ())  # fmt: skip
        return ("--strategy", self.kind, *numbers, *(a for alarm in self.alarms for a in ("--alarm", alarm)))
