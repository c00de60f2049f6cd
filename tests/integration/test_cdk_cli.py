"""The pinned CDK CLI and `python app.py` synthesize offline, with no AWS credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "AWS_EC2_METADATA_DISABLED": "true"}


def test_pinned_cdk_cli_synthesizes_every_stack(tmp_path: Path) -> None:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        pytest.fail("node_modules/.bin/cdk missing: `npm ci` (make setup) installs the pinned CLI")
    completed = subprocess.run(
        [str(cdk), "synth", "--quiet", "--output", str(tmp_path / "cdk.out")],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    templates = sorted(p.name for p in (tmp_path / "cdk.out").glob("*.template.json"))
    assert "Slipway-Acme-Registry.template.json" in templates
    assert "Slipway-Acme-Pipelines-payments-1.template.json" in templates


def test_python_app_synthesizes_and_bad_config_names_the_key(tmp_path: Path) -> None:
    broken = tmp_path / "platform.toml"
    broken.write_text((ROOT / "platform.toml").read_text().replace('region = "eu-west-1"', 'region = "mars-1"'))
    completed = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env={**offline_env(), "SLIPWAY_CONFIG": str(broken)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 1
    assert "platform.region: expected an AWS region such as 'eu-west-1', got 'mars-1'" in completed.stderr
