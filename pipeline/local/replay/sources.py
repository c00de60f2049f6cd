"""The git host's stand-in: one local git repository per ``FullRepositoryId``, and CodePipeline's V2 push trigger.

``slipway local seed`` makes the repositories from this checkout (``examples/repos.toml`` names the folder of each);
a commit is only added when the folder's content changed, dated by the last commit that touched the folder here, so
a fresh seed of the same checkout gives the same commits' content and time (and so the same image digests).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.assembly import Pipeline, PushFilter
from pipeline.errors import SlipwayError


class SourceError(SlipwayError):
    pass


@dataclass(frozen=True)
class Revision:
    """What a Source action outputs: a commit of a branch, and the variables CodePipeline gives it."""

    repository: str
    branch: str
    commit: str
    author_date: str
    message: str

    def variables(self, connection_arn: str) -> dict[str, str]:
        return {
            "CommitId": self.commit, "AuthorDate": self.author_date, "BranchName": self.branch,
            "FullRepositoryName": self.repository, "CommitMessage": self.message, "ConnectionArn": connection_arn,
        }  # fmt: skip


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), **(env or {})},
    )  # fmt: skip
    if completed.returncode != 0:
        raise SourceError(f"git {' '.join(args[:2])} in {cwd}: {completed.stderr.strip()[-300:]}")
    return completed.stdout.strip()


def repository_path(root: Path, repository: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository) or ".." in repository:
        raise SourceError(f"source repository {repository!r}: expected OWNER/NAME")
    return root / repository


def _tracked_files(checkout: Path, folder: str) -> list[str]:
    """The folder's files as git sees them here (tracked, plus untracked ones not ignored), relative to the folder."""
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", folder or ".", cwd=checkout)
    prefix = "" if folder in ("", ".") else folder.rstrip("/") + "/"
    return sorted({f.removeprefix(prefix) for f in listed.split("\0") if f and (checkout / f).is_file()})


def _folder_time(checkout: Path, folder: str) -> str:
    try:
        return _git("log", "-1", "--format=%cI", "--", folder or ".", cwd=checkout) or "2026-01-01T00:00:00+00:00"
    except SourceError:
        return "2026-01-01T00:00:00+00:00"


def seed_repository(
    root: Path, repository: str, branch: str, checkout: Path, folder: str, *, overlay: dict[str, bytes] | None = None
) -> Revision:
    """Make (or update) the local repository ``repository`` from ``checkout/folder``; return the branch's head.
    ``overlay``: files (path relative to the repository's root → content) written over the folder's."""
    path = repository_path(root, repository)
    if not (path / ".git").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--initial-branch", branch, cwd=path)
    elif _git("branch", "--show-current", cwd=path) != branch:
        _git("checkout", "--quiet", "-B", branch, cwd=path)
    for entry in path.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name in _tracked_files(checkout, folder):
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkout / folder / name, target)
    for name, content in (overlay or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(content)
    _git("add", "--all", cwd=path)
    if _git("status", "--porcelain", cwd=path):
        when = _folder_time(checkout, folder)
        identity = {"GIT_AUTHOR_NAME": "slipway", "GIT_AUTHOR_EMAIL": "slipway@localhost", "GIT_AUTHOR_DATE": when,
                    "GIT_COMMITTER_NAME": "slipway", "GIT_COMMITTER_EMAIL": "slipway@localhost",
                    "GIT_COMMITTER_DATE": when}  # fmt: skip
        _git("commit", "--quiet", "-m", f"seed from {folder or '.'}", cwd=path, env=identity)
    return head(root, repository, branch)


def head(root: Path, repository: str, branch: str) -> Revision:
    path = repository_path(root, repository)
    if not (path / ".git").is_dir():
        raise SourceError(f"source repository {repository}: no local repository at {path} (run `slipway local seed`)")
    try:
        commit = _git("rev-parse", "--verify", f"refs/heads/{branch}", cwd=path)
    except SourceError:
        raise SourceError(f"source repository {repository}: no branch {branch!r}") from None
    date, message = _git("log", "-1", "--format=%aI%n%s", commit, cwd=path).split("\n", 1)
    return Revision(repository, branch, commit, date, message)


def history(root: Path, repository: str, branch: str) -> list[str]:
    """The branch's commits, newest first."""
    return _git("rev-list", f"refs/heads/{branch}", cwd=repository_path(root, repository)).split()


def checkout(root: Path, revision: Revision, destination: Path) -> None:
    """The commit's files, as the Source action's output artifact (no ``.git``, as CodePipeline's zip)."""
    destination.mkdir(parents=True, exist_ok=True)
    path = repository_path(root, revision.repository)
    archive = subprocess.run(["git", "archive", revision.commit], cwd=path, capture_output=True, check=False)
    if archive.returncode != 0:
        raise SourceError(f"git archive {revision.commit} in {path}: {archive.stderr.decode()[-300:]}")
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def changed_files(root: Path, revision: Revision, since: str) -> list[str]:
    """Files the push changed: against ``since`` (the commit the pipeline last saw), else every file of the commit."""
    path = repository_path(root, revision.repository)
    if since:
        listed = _git("diff", "--name-only", "-z", since, revision.commit, cwd=path)
    else:
        listed = _git("ls-tree", "-r", "--name-only", "-z", revision.commit, cwd=path)
    return [f for f in listed.split("\0") if f]


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """CodePipeline's trigger globs: ``**`` any number of directories, ``*`` and ``?`` within one path segment."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _matches(value: str, includes: tuple[str, ...], excludes: tuple[str, ...]) -> bool:
    if any(glob_pattern(p).fullmatch(value) for p in excludes):
        return False
    return not includes or any(glob_pattern(p).fullmatch(value) for p in includes)


def push_starts(flt: PushFilter, branch: str, files: list[str]) -> bool:
    """One push filter: the branch matches, and (when file paths are filtered) at least one changed file does."""
    if not _matches(branch, flt.branches, flt.branches_excluded):
        return False
    if not flt.paths and not flt.paths_excluded:
        return True
    return any(_matches(f, flt.paths, flt.paths_excluded) for f in files)


def triggered(pipeline: Pipeline, branch: str, files: list[str]) -> bool:
    """Whether a push starts ``pipeline``: any of its push filters matches (no trigger: every push to its branch)."""
    if not pipeline.triggers:
        return branch == pipeline.branch
    return any(push_starts(f, branch, files) for f in pipeline.triggers)
