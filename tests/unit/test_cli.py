"""The slipway CLI: exit codes and messages a user (or a buildspec) relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.conftest import EXAMPLE


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "ok — platform 'acme'" in capsys.readouterr().out


def test_validate_exits_2_and_prints_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "platform.toml"
    broken.write_text(
        EXAMPLE.read_text().replace('architecture = "arm64"\n      alias', 'architecture = "aarch64"\n      alias')
    )
    assert main(["validate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{broken}: teams[0].services[0].environments[0].lambda.architecture: expected one of 'x86_64', 'arm64', got "
        "'aarch64'" in err
    )
    assert "1 problem(s)" in err


def test_step_failure_is_one_line_and_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["verify", "--image-json", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"slipway verify: {missing}: cannot read (No such file or directory)"


@pytest.mark.parametrize("command", ["validate", "synth", "lint", "build", "stitch", "verify", "deploy"])
def test_help_on_every_command(command: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", command, "--help"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith(f"usage: slipway {command}")
