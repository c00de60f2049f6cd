"""`make bench`'s attestation row (#28) cannot rot: its smallest run, against docker-registry and moto's KMS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.local import services
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_the_attestation_benchmark_signs_and_checks_a_release(tmp_path: Path) -> None:
    if not Path(services.REGISTRY_BINARY).exists():
        pytest.skip("docker-registry is not installed")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "attest.py"), "--smoke"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "SLIPWAY_BENCH_RESULTS": str(tmp_path)}, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads((tmp_path / "attest.json").read_text())
    # four DSSE attestations and the cosign-format signature: five KMS calls to sign, five to check
    assert (result["kms_sign_calls_per_release"], result["kms_verify_calls_per_deploy_action"]) == (5, 5)
    assert result["kms_calls_per_weekly_wave_at_500_services"] == 500 * (5 + 4 * 5)
    assert result["attestation_bytes_per_release"] > 0
