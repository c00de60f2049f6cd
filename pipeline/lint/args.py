"""Build arguments as BuildKit evaluates them, so a rule sees the value the build would use.

- **Scope.** An ARG before the first FROM is global: visible to FROM lines only, and inside a stage only where that
  stage declares it again (``ARG NAME``, which inherits the global value). An ARG inside a stage is visible from its
  declaration to the end of that stage, never in another stage (a builder stage's ``ARG RUNAS=root`` says nothing
  about the final stage's user). ENV values are visible the same way after their instruction.
- **Values.** A build argument given to the build (the lock's ``BASE_*``) overrides a declared default; an undeclared
  one is not visible. A default is expanded with what is visible where it is declared: ``ARG B=${A}``,
  ``${VAR:-word}``, ``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}``.
- **Platform.** BuildKit predefines ``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``, ``TARGETVARIANT`` and their
  ``BUILD*`` twins in the global scope, per platform built: a file is judged once for each platform the service builds.

A reference to something not visible is left as written (``$NAME``), so SW002 can say it is unresolved instead of
judging an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.lint.parse import ParsedDockerfile

AUTOMATIC = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
             "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")  # fmt: skip
BUILD_PLATFORM = "linux/amd64"
"""Where the Lint job and the replay run (CodeBuild's x86 runner)."""


def automatic(platform: str, build_platform: str = BUILD_PLATFORM) -> dict[str, str]:
    """The platform ARGs BuildKit predefines for a build of ``platform`` on ``build_platform``."""
    found = {}
    for prefix, value in (("TARGET", platform), ("BUILD", build_platform)):
        os_, arch, variant = [*value.split("/"), "", ""][:3]
        found.update(
            {f"{prefix}PLATFORM": value, f"{prefix}OS": os_, f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant}
        )
    return found


def expand(text: str, scope: Mapping[str, str]) -> str:
    """BuildKit's word expansion of ``$NAME``/``${NAME}`` and the ``-``/``+`` forms (nested words included);
    unknown names stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
            continue
        if text[i + 1] != "{":
            bare = _NAME.match(text, i + 1)
            if bare is None:
                out.append("$")
                i += 1
                continue
            out.append(scope.get(bare[0], text[i : bare.end()]))
            i = bare.end()
            continue
        end, depth = i + 2, 1
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        if depth:  # no closing brace: left as written
            out.append(text[i:])
            break
        out.append(_braced(text[i + 2 : end - 1], text[i:end], scope))
        i = end
    return "".join(out)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>.*))?", re.S)


def _braced(inner: str, written: str, scope: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(inner)
    if match is None:
        return written
    name, operator, word = match["name"], match["op"], match["word"] or ""
    known, value = name in scope, scope.get(name, "")
    if operator is None:
        return value if known else written
    is_set = known and (bool(value) or not operator.startswith(":"))
    if operator.endswith("-"):
        return value if is_set else expand(word, scope)
    return expand(word, scope) if is_set else ""


@dataclass(frozen=True)
class Scopes:
    """What is visible where, for one platform: FROM lines see ``global_``; an instruction sees ``at[line]``."""

    platform: str
    global_: dict[str, str]
    at: dict[int, dict[str, str]] = field(default_factory=dict)

    def before(self, line: int) -> dict[str, str]:
        return self.at.get(line, {})


def _declare(words: tuple[str, ...], scope: dict[str, str], build_args: Mapping[str, str],
             inherited: Mapping[str, str]) -> None:  # fmt: skip
    for word in words:
        name, sep, default = word.partition("=")
        if name in build_args:
            scope[name] = build_args[name]
        elif sep:
            scope[name] = expand(default.strip("\"'"), scope)
        elif name in inherited:
            scope[name] = inherited[name]


def scopes(dockerfile: ParsedDockerfile, build_args: Mapping[str, str], platform: str) -> Scopes:
    predefined = automatic(platform)
    global_: dict[str, str] = dict(predefined)
    for words in dockerfile.global_args:
        _declare(words, global_, build_args, {})
    result = Scopes(platform, global_)
    for stage in dockerfile.stages:
        scope: dict[str, str] = {}
        for instruction in stage.instructions:
            result.at[instruction.line] = dict(scope)
            if instruction.keyword == "ARG":
                _declare(instruction.args, scope, build_args, global_)
            elif instruction.keyword == "ENV":
                for name, value in zip(instruction.args[0::2], instruction.args[1::2], strict=False):
                    scope[name] = expand(value, scope)
    return result
