"""Issue #31 item 4: the status page, loaded in a real browser (Debian's chromium, headless): every service and
environment is there, and a drifted target is marked in red as the browser renders it."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import status, status_page

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the probe of this machine found Chromium needs headless here: no sandbox as root, no network of its own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip
REPO = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/payments/api"
# Reads, after layout, what the browser computed for each target's state and writes it into the DOM.
PROBE = """<script>
for (const t of document.querySelectorAll('[data-target]')) {
  t.dataset.painted = getComputedStyle(t.querySelector('span')).backgroundColor;
}
</script></body>"""


def _rows() -> list[status.Row]:
    def row(service: str, environment: str, target: str, state: str, why: str = "") -> status.Row:
        return status.Row(service, environment, "222222222222", "eu-west-1", target, f"{REPO}@sha256:{'a' * 64}",
                          "c0ffee1", "c0ffee1", "2026-12-04T10:00:00.000+0000", "", state, why)  # fmt: skip

    return [
        row("payments/api", "dev", "lambda:payments-api", status.OK),
        row("payments/api", "dev", "ecs:payments/api", status.OK),
        row("payments/api", "prod", "lambda:payments-api", status.DRIFT, "alias moved by hand"),
        row("payments/api", "prod", "ecs:payments/api", status.OK),
        row("search/indexer", "", "ecs:search/indexer", status.OK),
        row("search/indexer", "", "eks:search/search/indexer", status.OK),
    ]


def chromium(*args: str, profile: Path) -> str:
    completed = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                               text=True, timeout=120, check=True)  # fmt: skip
    return completed.stdout


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make deps installs it)")
def test_the_status_page_shows_every_service_and_environment_and_paints_drift_red(tmp_path: Path) -> None:
    page = status_page.render(_rows(), platform="acme", now=datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    probed = tmp_path / "status.html"
    probed.write_text(page.replace("</body>", PROBE))
    dom = chromium("--dump-dom", probed.as_uri(), profile=tmp_path / "profile")
    for service in ("payments/api", "search/indexer"):
        assert f'data-service="{service}"' in dom
    for environment in ("dev", "prod", ""):
        assert dom.count(f'data-environment="{environment}"') == 2
    drift = dom.split('data-state="drift"', 1)[1].split("</div>", 1)[0]
    assert 'data-painted="rgb(207, 34, 46)"' in drift and "alias moved by hand" in drift
    assert dom.count('data-painted="rgba(0, 0, 0, 0)"') == 5  # every other target: no red
    assert "6 targets, 1 drifting" in dom
