"""SOURCE_DATE_EPOCH comes from the commit, never from the clock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.reproducible import parse_source_date, source_date_epoch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1764400000", 1764400000), ("2025-11-29T07:06:40Z", 1764400000), ("2025-11-29T08:06:40+01:00", 1764400000)],
)
def test_commit_times_parse_from_seconds_or_iso_8601(text: str, seconds: int) -> None:
    assert parse_source_date(text) == seconds


@pytest.mark.parametrize(
    "text", ["yesterday", "2025-11-29T07:06:40", "\uff11\uff17\uff16\uff14", "1969-12-31T00:00:00Z"]
)
def test_fails_on_a_time_that_is_not_a_commit_time(text: str) -> None:
    with pytest.raises(InputError, match=r"--source-date '.*': (expected seconds since 1970|before 1970)"):
        parse_source_date(text)


def test_defaults_to_the_last_commit_touching_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    env = {"GIT_AUTHOR_DATE": "@1700000000 +0000", "GIT_COMMITTER_DATE": "@1700000500 +0000", "HOME": str(tmp_path)}
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    for argv in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(tmp_path), *argv], env=env, check=True, capture_output=True)
    assert source_date_epoch(tmp_path / "svc") == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert source_date_epoch(tmp_path / "svc") == 1600000000
    assert source_date_epoch(tmp_path / "svc", "1500000000") == 1500000000


def test_outside_a_checkout_it_is_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert source_date_epoch(tmp_path) == 0
