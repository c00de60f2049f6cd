"""SW008 reads the base image's own user when the final stage sets none (issue #32): a distroless ``:nonroot`` base
runs as uid 65532 with no USER line in the Dockerfile built on it."""

from __future__ import annotations

from pathlib import Path

from pipeline.lint import lint_file
from pipeline.lint.base_user import registry_user
from pipeline.lint.rules import Policy
from pipeline.records import BuildRecord
from pipeline.stitch import stitch
from tests.fakes import MemoryRegistry

HOST = "127.0.0.1:5000"
POLICY = Policy((f"{HOST}/",))


def _base(registry: MemoryRegistry, name: str, user: str | None) -> str:
    """A released multi-platform base (an index, as the lock pins it) whose children run as ``user``."""
    repo = f"{HOST}/{name}"
    builds = [BuildRecord(repo, f"linux/{arch}", registry.add_image(repo, "linux", arch, user=user), 1, 1.0, "buildx")
              for arch in ("amd64", "arm64")]  # fmt: skip
    record = stitch(registry, builds, tag="c0ffee").record
    return f"{repo}:c0ffee@{record.index_digest}"


def _lint(tmp_path: Path, base: str, registry: MemoryRegistry) -> list[tuple[str, str]]:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f'FROM {base}\nENTRYPOINT ["/app"]\n')
    users = registry_user(lambda repo: registry)
    return [(f.rule, f.message) for f in lint_file(dockerfile, POLICY, hadolint=False, image_user=users)]


def test_a_base_that_runs_as_non_root_needs_no_user_line(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    assert _lint(tmp_path, _base(registry, "distroless/static", "65532:65532"), registry) == []


def test_a_base_that_runs_as_root_or_names_no_user_is_a_finding(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    assert _lint(tmp_path, _base(registry, "debian", "root"), registry) == [
        ("SW008", "final stage sets no USER and its base runs as 'root'")
    ]
    assert _lint(tmp_path, _base(registry, "alpine", None), registry) == [
        ("SW008", "final stage sets no USER and its base runs as 'root'")
    ]


def test_a_base_that_cannot_be_read_keeps_the_finding(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    unknown = f"{HOST}/nowhere:1@sha256:" + "9" * 64
    assert _lint(tmp_path, unknown, registry) == [("SW008", "final stage sets no USER, so it runs as root")]
    tagged = f"{HOST}/distroless/static:nonroot"  # not pinned: never read (a tag could move under the lint)
    assert [rule for rule, _ in _lint(tmp_path, tagged, registry)] == ["SW002", "SW008"]
