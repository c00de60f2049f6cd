"""`slipway validate` on platforms of 1,000 and 10,000 services (target: 10,000 under 3 s). Prints a table; writes
JSON. Each size runs in its own process, as a user runs it: interpreter start-up, TOML parsing and every check."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from benchmarks.synth_scale import platform_toml  # noqa: E402

SIZES = (1_000, 10_000)
TARGET_SECONDS = 3.0


def measure(services: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "platform.toml"
        config.write_text(platform_toml(services))
        best = float("inf")
        for _ in range(3):
            started = time.monotonic()
            completed = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "validate", str(config)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            best = min(best, time.monotonic() - started)
            if completed.returncode != 0:
                sys.exit(f"validate failed on {services} services:\n{completed.stderr[-2000:]}")
    return {"services": services, "seconds": round(best, 2)}


def main() -> None:
    # --smoke (the end-to-end suite runs it): the smallest size, results in a temporary directory.
    rows = [measure(n) for n in ((100,) if "--smoke" in sys.argv[1:] else SIZES)]
    largest = rows[-1]
    emit("validate_scale", rows, ("services", "seconds"),
         note=f"slipway validate in its own process, best of 3; target: 10,000 services under {TARGET_SECONDS:.0f} s",
         summary={"validate_10000_seconds": largest["seconds"],
                  "target_met": float(str(largest["seconds"])) < TARGET_SECONDS})  # fmt: skip


if __name__ == "__main__":
    main()
