"""What BuildKit refuses after parsing: its instruction-level checks (``frontend/dockerfile/instructions/parse.go``).

The ``dockerfile`` package runs BuildKit's AST parser only, which accepts words BuildKit's instruction parsing then
refuses: an unknown instruction, a flag the instruction does not take (``COPY --frobnicate=1``, ``CMD --port 8080``,
where the flag swallows the word), too few or too many arguments, ``FROM x AS`` without a name, a stage name BuildKit
rejects, a blank ARG or ENV name, ``SHELL`` outside JSON form, ``ONBUILD`` of what may not be a trigger. A file
BuildKit would not build must not pass the gate: each is reported as the build would fail, with file and line (exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# Flags each instruction takes (BuildKit 0.13+ with the labs-free Dockerfile frontend 1.x); any other is refused.
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"mount", "network", "security", "device"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "keep-git-dir", "checksum", "exclude", "unpack"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}
KNOWN = frozenset(
    {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
     "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
)  # fmt: skip
EXACTLY_ONE = frozenset({"USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"})
AT_LEAST_ONE = frozenset({"ARG", "ENV", "EXPOSE", "LABEL", "VOLUME", "RUN", "HEALTHCHECK"})
NOT_TRIGGERS = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
# BuildKit's validStageName, applied to the lower-cased name.
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$", re.ASCII)


def problem(command: Any) -> str | None:
    """Why BuildKit refuses this parsed command (one ``dockerfile.Command``), or None."""
    keyword = str(command.cmd).upper()
    args: Sequence[str] = tuple(command.value)
    if keyword not in KNOWN:
        return f"unknown instruction: {command.cmd}"
    allowed = FLAGS.get(keyword, frozenset())
    for flag in command.flags:
        name = str(flag).removeprefix("--").partition("=")[0]
        if name not in allowed:
            hint = f" (it takes {', '.join(f'--{f}' for f in sorted(allowed))})" if allowed else " (it takes none)"
            return f"{keyword}: unknown flag: --{name}{hint}"
    if keyword == "FROM":
        return _from(args)
    if keyword in ("COPY", "ADD") and len(args) < 2:
        return (
            f"{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
        )
    if keyword in EXACTLY_ONE and len(args) != 1:
        return f"{keyword} requires exactly one argument"
    if keyword in AT_LEAST_ONE and not [a for a in args if a]:
        return f"{keyword} requires at least one argument"
    if keyword == "ARG" and any(not word.partition("=")[0] for word in args):
        return "ARG names can not be blank"
    if keyword == "ENV" and any(not name for name in args[::2]):
        return "ENV names can not be blank"
    if keyword == "SHELL" and not command.json:
        return "SHELL requires the arguments to be in JSON form"
    if keyword == "ONBUILD" and str(command.sub_cmd or "").upper() in NOT_TRIGGERS:
        return f"{str(command.sub_cmd).upper()} isn't allowed as an ONBUILD trigger"
    return None


def _from(args: Sequence[str]) -> str | None:
    if len(args) not in (1, 3) or not args[0]:
        return "FROM requires either one or three arguments"
    if len(args) == 3:
        if args[1].upper() != "AS":
            return f"FROM: expected 'AS' before the stage name, got {args[1]!r}"
        if not _STAGE_NAME.fullmatch(args[2].lower()):
            return f"invalid name for build stage: {args[2]!r}, name can't start with a number or contain symbols"
    return None
