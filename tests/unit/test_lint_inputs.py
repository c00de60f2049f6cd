"""Bad paths given to the lint gate: a FIFO never hangs it, and one missing path does not stop the others."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.cli import main

GOOD = (
    "FROM 127.0.0.1:5000/docker-hub/library/debian:bookworm@sha256:" + "1" * 64 + "\n"
    "USER 65534:65534\nENTRYPOINT [\"/app\"]\n"
)  # fmt: skip
BAD = GOOD.replace("USER 65534:65534\n", "")


def _lint(capsys: Any, tmp_path: Path, *paths: Path) -> tuple[int, str, str]:
    code = main(
        ["lint", "--config", str(tmp_path / "none.toml"), "--lock", str(tmp_path / "lock.json"), *map(str, paths)]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_fifo_is_refused_at_once_and_never_read(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "lock.json").write_text("{}")
    fifo = tmp_path / "Dockerfile"
    os.mkfifo(fifo)
    code, _, err = _lint(capsys, tmp_path, fifo)
    assert code == 2 and f"{fifo}: not a regular file" in err


def test_a_missing_path_among_several_is_reported_and_the_others_are_still_linted(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "lock.json").write_text("{}")
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text(BAD)
    code, out, err = _lint(capsys, tmp_path, tmp_path / "missing.Dockerfile", bad)
    assert code == 2
    assert f"error: {tmp_path / 'missing.Dockerfile'}: no such file or directory" in err
    assert f"{bad}:" in out and "SW008" in out  # the file that exists was linted, its finding printed
