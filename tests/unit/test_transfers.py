"""The transfer log #30's benchmark reads its bytes from (:mod:`pipeline.local.transfers`)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipeline.local import transfers


def test_since_counts_what_came_after_the_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "transfers.jsonl"
    monkeypatch.setenv(transfers.ENV, str(log))
    assert transfers.mark(log) == 0 and transfers.since(log, 0) == transfers.Moved()
    transfers.record(transfers.PULLED, 100, "GET /v2/a/blobs/sha256:1")
    start = transfers.mark(log)
    transfers.record(transfers.PUSHED, 7, "PUT /v2/a/blobs/uploads/x")
    transfers.record(transfers.PULLED, 5, "GET /v2/a/manifests/b")
    transfers.record(transfers.PULLED, 0, "GET /v2/a/blobs/sha256:2")  # nothing moved: no line
    assert transfers.since(log, start) == transfers.Moved(pushed=7, pulled=5)
    assert transfers.since(log, 0).total == 112
    assert len(log.read_text().splitlines()) == 3


def test_nothing_is_recorded_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(transfers.ENV, raising=False)
    transfers.record(transfers.PUSHED, 10, "PUT /v2/a/manifests/b")
    assert not list(tmp_path.iterdir())


def test_threads_never_interleave_within_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "transfers.jsonl"
    monkeypatch.setenv(transfers.ENV, str(log))
    workers = [threading.Thread(target=lambda: [transfers.record(transfers.PULLED, 3, "x" * 200) for _ in range(200)])
               for _ in range(4)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert transfers.since(log, 0) == transfers.Moved(pulled=3 * 800)
