"""The options of ``slipway deploy`` and ``slipway rollback``, checked as strictly as platform.toml before anything
changes: a target built from the command line obeys the same rules as the same value in platform.toml (the model's
own ``Annotated`` rules), and the environment options agree with each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.config.loader import value_problems
from pipeline.config.model import is_region
from pipeline.deployers.base import DeployTarget
from pipeline.errors import InputError

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$", re.ASCII)
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", re.ASCII)
# A field whose option is not its name with '-' for '_'.
_OPTION = {"task_roles": "--task-role", "cpu_architecture": "--cpu-architecture", "kind": "--strategy",
           "alarms": "--alarm"}  # fmt: skip


def option_for(field: str) -> str:
    name = field.split("[", 1)[0].rsplit(".", 1)[-1]  # a nested value (strategy.percent) by its own option
    return _OPTION.get(name, "--" + name.replace("_", "-"))


def checked_target(target: DeployTarget) -> DeployTarget:
    """``target`` when every value keeps platform.toml's rule for it; otherwise every problem, by option, exit 2."""
    problems = [f"{option_for(field)}: {message}" for field, message in value_problems(target)]
    if problems:
        raise InputError("; ".join(problems) + "; nothing was changed")
    return target


@dataclass(frozen=True)
class Where:
    """An environment's workload role and region, or neither (the platform's own account)."""

    environment: str
    role_arn: str
    region: str

    @classmethod
    def from_args(cls, args: Any) -> Where:
        environment = getattr(args, "environment", "")
        where = cls(environment, args.role_arn, args.region)
        problems = []
        if environment and not _ENVIRONMENT.fullmatch(environment):
            problems.append(f"--environment: expected an environment name of platform.toml, got {environment[:60]!r}")
        if environment and not args.role_arn:
            problems.append(
                f"--environment {environment[:60]}: needs --role-arn (the environment's workload role); without it "
                "the deploy would act in this job's own account"
            )
        if args.role_arn and not _ROLE_ARN.fullmatch(args.role_arn):
            problems.append(
                f"--role-arn: expected an IAM role ARN 'arn:aws:iam::ACCOUNT:role/NAME', got {args.role_arn[:80]!r}"
            )
        if args.region and not is_region(args.region):
            problems.append(f"--region: expected an AWS region such as 'eu-west-1', got {args.region[:40]!r}")
        if problems:
            raise InputError("; ".join(problems) + "; nothing was changed")
        return where
