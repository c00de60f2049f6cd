"""Slipway's own Dockerfile rules, each a small function over the parsed stages.

hadolint covers generic Dockerfile hygiene; these rules encode what Slipway promises on AWS: bases from the
platform's registry pinned by digest, secrets only as BuildKit mounts, small multi-stage images, a non-root final
stage, and cache-friendly order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.references import DIGEST


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    message: str
    fix: str
    level: str = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} {self.message} (fix: {self.fix})"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int
    """1-based line of the instruction's start."""
    flags: tuple[str, ...] = ()


@dataclass
class Stage:
    base: str
    name: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    allowed_registries: tuple[str, ...]
    """``host/prefix/`` beginnings a base image may have (pull-through prefixes and curated repositories)."""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    fix: str
    check: Callable[[list[Stage], Policy, Mapping[str, str]], Iterator[tuple[int, str]]]


_TOOLCHAIN = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|golang|rustc|cargo|musl-dev|python3?-dev|libc6?-dev|cmake|autoconf)\b"
)
_INSTALL = re.compile(r"\b(apt-get|apt|apk|dnf|yum|microdnf)\s+(-\S+\s+)*(install|add)\b")
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY)", re.I)
_SECRET_FILE = re.compile(r"(^|/)(\.npmrc|\.pypirc|\.netrc|\.env|id_rsa|id_ed25519|credentials|.*\.pem|.*\.key)$")
_DEPENDENCY_INSTALL = re.compile(
    r"\b(pip3? install|npm (ci|install)|yarn install|go mod download|cargo (fetch|build)|bundle install|poetry install|uv sync)\b"
)
_ROOT_USERS = {"root", "0", "0:0", "root:root"}


def _resolve(text: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m[1], m[0]), text)


def _stage_names(stages: Sequence[Stage]) -> set[str]:
    return {s.name.lower() for s in stages if s.name}


def _external_bases(stages: list[Stage], args: Mapping[str, str]) -> Iterator[tuple[Stage, str]]:
    names = _stage_names(stages)
    for stage in stages:
        base = _resolve(stage.base, args)
        if base.lower() in names or base == "scratch":
            continue
        yield stage, base


def base_not_from_platform(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    for stage, base in _external_bases(stages, args):
        if "$" in base:
            continue  # reported by SW002: an unresolved base cannot be checked
        if not base.startswith(policy.allowed_registries):
            allowed = policy.allowed_registries
            shown = (
                ", ".join(allowed[:2]) + (f" and {len(allowed) - 2} more" if len(allowed) > 2 else "")
                or "none configured"
            )
            yield stage.line, f"base image {base!r} is not from the platform registry (allowed: {shown})"


def base_not_pinned(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy
    for stage, base in _external_bases(stages, args):
        if "$" in base:
            yield (
                stage.line,
                f"base image {stage.base!r} is unresolved; give the ARG a pinned default or pass it",
            )
            continue
        digest = base.partition("@")[2]
        if not DIGEST.fullmatch(digest):
            tag = base.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
            what = (
                "uses 'latest'" if tag == "latest" else "has no tag or digest" if not tag else "is pinned by tag only"
            )
            yield stage.line, f"base image {base!r} {what}; pin it by digest"


def toolchain_in_final_stage(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy, args
    for instruction in stages[-1].instructions:
        if (
            instruction.keyword == "RUN"
            and _INSTALL.search(instruction.value)
            and (m := _TOOLCHAIN.search(instruction.value))
        ):
            yield instruction.line, f"toolchain {m[1]!r} installed in the final stage"


def shell_form_entrypoint(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy, args
    for instruction in stages[-1].instructions:
        if instruction.keyword in ("ENTRYPOINT", "CMD") and not instruction.value.lstrip().startswith("["):
            yield instruction.line, f"{instruction.keyword} in shell form ({instruction.value.strip()!r})"


def secrets_in_image(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy, args
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword in ("ARG", "ENV"):
                name = re.split(r"[=\s]", instruction.value.strip(), maxsplit=1)[0]
                if _SECRET_NAME.search(name):
                    yield (
                        instruction.line,
                        f"{instruction.keyword} {name} looks like a secret; build args and ENV are stored in the image",
                    )
            if instruction.keyword in ("COPY", "ADD"):
                sources = instruction.value.split()[:-1]
                secret = next((s for s in sources if _SECRET_FILE.search(s)), None)
                if secret:
                    yield (
                        instruction.line,
                        f"{instruction.keyword} of secret file {secret!r} puts it in a layer (deleting it later does not remove it)",
                    )


def package_manager_hygiene(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy, args
    for stage in stages:
        previous: Instruction | None = None
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                previous = instruction
                continue
            text = instruction.value
            mounted_cache = any("type=cache" in f for f in instruction.flags)
            if re.search(r"\bapt-get update\b", text) and not re.search(r"\bapt-get (-\S+\s+)*install\b", text):
                yield (
                    instruction.line,
                    "apt-get update in its own layer (the install that follows may use a stale index)",
                )
            elif (
                re.search(r"\bapt-get (-\S+\s+)*install\b", text)
                and "/var/lib/apt/lists" not in text
                and not mounted_cache
            ):
                yield (
                    instruction.line,
                    "apt-get install without removing /var/lib/apt/lists in the same layer",
                )
            if re.search(r"\bapk add\b", text) and "--no-cache" not in text and not mounted_cache:
                yield instruction.line, "apk add without --no-cache"
            if re.search(r"\bpip3? install\b", text) and "--no-cache-dir" not in text and not mounted_cache:
                yield instruction.line, "pip install without --no-cache-dir (or a cache mount)"
            if (
                previous is not None
                and previous.keyword == "RUN"
                and _INSTALL.search(previous.value)
                and _INSTALL.search(text)
            ):
                yield instruction.line, "package installs split across layers; combine them in one RUN"
            previous = instruction


def context_copied_before_dependencies(
    stages: list[Stage], policy: Policy, args: Mapping[str, str]
) -> Iterator[tuple[int, str]]:
    del policy, args
    for stage in stages:
        copied_all: Instruction | None = None
        for instruction in stage.instructions:
            if instruction.keyword == "COPY" and not any(f.startswith("--from") for f in instruction.flags):
                if instruction.value.split()[:-1] == ["."]:
                    copied_all = instruction
            elif instruction.keyword == "RUN" and copied_all and _DEPENDENCY_INSTALL.search(instruction.value):
                yield (
                    copied_all.line,
                    "whole context copied before installing dependencies: any source change re-installs them",
                )
                break


def final_stage_runs_as_root(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy
    final = stages[-1]
    users = [i for i in final.instructions if i.keyword == "USER"]
    if not users:
        yield final.line, "final stage sets no USER, so it runs as root"
    elif _resolve(users[-1].value.strip(), args) in _ROOT_USERS:
        yield users[-1].line, f"final stage runs as {users[-1].value.strip()!r}"


def add_from_url(stages: list[Stage], policy: Policy, args: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    del policy, args
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword == "ADD" and re.search(r"\bhttps?://", instruction.value):
                yield instruction.line, "ADD from a URL: unpinned, uncached, unverified download"


RULES: tuple[Rule, ...] = (
    Rule("SW001", "Base image from the platform registry", "FROM <account>.dkr.ecr.<region>.amazonaws.com/<pull-through prefix or team>/bases/...", base_not_from_platform),
    Rule("SW002", "Base image pinned by digest", "FROM repo:tag@sha256:<digest> (slipway bases update writes images/lock.json)", base_not_pinned),
    Rule("SW003", "No toolchain in the final stage", "compile in a builder stage; COPY --from=build only the artifacts", toolchain_in_final_stage),
    Rule("SW004", "Exec-form ENTRYPOINT/CMD", 'ENTRYPOINT ["/app/server"] so signals reach the process', shell_form_entrypoint),
    Rule("SW005", "Secrets only as BuildKit secret mounts", "RUN --mount=type=secret,id=NAME ... and slipway build --secret id=NAME,env=VAR", secrets_in_image),
    Rule("SW006", "Package installs combined and cleaned in one layer", "RUN apt-get update && apt-get install -y --no-install-recommends ... && rm -rf /var/lib/apt/lists/*", package_manager_hygiene),
    Rule("SW007", "Dependencies installed before the source is copied", "COPY the lock/requirements file, install, then COPY the rest", context_copied_before_dependencies),
    Rule("SW008", "Final stage runs as a non-root user", "USER 65534:65534 (or a named user the base creates)", final_stage_runs_as_root),
    Rule("SW009", "No ADD from a URL", "download in a builder stage with a checksum, or COPY a vendored file", add_from_url),
)  # fmt: skip
RULES_BY_ID = {r.id: r for r in RULES}
