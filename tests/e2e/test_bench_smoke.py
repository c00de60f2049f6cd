"""`make bench` cannot rot silently again (issue #32): its smallest run, on the replay's platform, acting as the
pipeline's roles through the registry gate. (It had failed since the gate landed: it pushed as the stand-in's admin,
which the repository policy rightly refuses.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.local.state import LocalState
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_make_bench_runs_as_the_pipeline_roles_in_its_smallest_size(local: LocalState, tmp_path: Path) -> None:
    environment = {**os.environ, "SLIPWAY_BENCH_RESULTS": str(tmp_path)}
    for script in (["synth_scale.py", "--smoke"], ["validate_scale.py", "--smoke"],
                   ["builds.py", "--smoke", "--state", str(local.directory)]):  # fmt: skip
        completed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script[0]), *script[1:]], cwd=ROOT,
                                   env=environment, capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
        assert completed.returncode == 0, f"{script[0]}: {completed.stderr[-2000:]}"
    rebuild = json.loads((tmp_path / "rebuild.json").read_text())["rows"]
    assert [(r["service"], r["platform"]) for r in rebuild] == [("search/indexer", "linux/amd64")]
    assert rebuild[0]["warm_registry_s"] > 0 and rebuild[0]["warm_registry_cached_steps"] > 0
    # #30: the fresh runner's bytes, read from the registry's transfer log (it at least reads the cache manifest)
    assert rebuild[0]["fresh_runner_bytes_pulled"] > 0 and rebuild[0]["changed_layer_bytes"] >= 0
    assert json.loads((tmp_path / "stitch.json").read_text())["rows"][0]["platforms"] == 2
    assert json.loads((tmp_path / "synth_scale.json").read_text())["rows"]
    assert not (ROOT / "benchmarks" / "results" / "rebuild.json").read_text().count(str(tmp_path))
