"""The runner image on the local platform (`make demo` first): what a job costs before its first command, what a
one-line push waits for, and what the image weighs.

A one-line change to payments/api (a comment in its app) is pushed (`slipway local push acme/payments-api --from
<checkout>`, approvals given): `one_line_push_seconds` runs from the push to its last verified deploy (dev and prod,
Lambda and ECS). Each of its CodeBuild jobs logs its overhead -- from the action's start (the project role's registry
login, the container's start in the runner image, the inputs copied) to its first buildspec command; the goal is 1 s.
Before the runner, every job spent about 4 s fetching and installing Slipway (the Stitch job: 4.3 s for 0.04 s of
stitching). `runner_bytes` is each child's compressed size (config and layers), what a fresh CodeBuild host pulls.
Writes benchmarks/results/runner.json.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from pipeline import bases, runner_image  # noqa: E402
from pipeline.config import load  # noqa: E402
from pipeline.local import runner  # noqa: E402
from pipeline.local.replay.codebuild import OVERHEAD  # noqa: E402
from pipeline.local.state import LocalState  # noqa: E402
from pipeline.oci import ANY_MANIFEST  # noqa: E402
from pipeline.references import ecr_registry  # noqa: E402
from pipeline.registry import RepositoryRef, client_for_host  # noqa: E402

CONFIG = ROOT / "platform.toml"
SERVICE = ROOT / "examples" / "web"
GOAL_SECONDS = 1.0
_OVERHEAD = re.compile(re.escape(OVERHEAD) + r" ([0-9.]+) s")


def one_line_change(directory: Path) -> Path:
    """payments/api's folder as a git checkout with one more line in its app."""
    checkout = directory / "payments-api"
    shutil.copytree(SERVICE, checkout)
    app = next(p for p in sorted((checkout / "app").rglob("*.py")))
    app.write_text(app.read_text() + f"# one-line change {time.time_ns()}\n")
    git = ["git", "-C", str(checkout), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "--quiet"], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "one line"], check=True)
    return checkout


def runner_bytes(state: LocalState) -> dict[str, int]:
    config = load(CONFIG)
    registry = ecr_registry(config.platform.account, config.platform.region)
    entry = bases.load(state.lock_path)[runner_image.LOCK_KEY]
    client = client_for_host(registry)
    repo = RepositoryRef(registry, runner_image.REPOSITORY)
    index = client.get_manifest(repo, entry.rpartition("@")[2], ANY_MANIFEST).json()
    sizes = {}
    for child in index["manifests"]:
        manifest = client.get_manifest(repo, child["digest"], ANY_MANIFEST).json()
        platform = f"{child['platform']['os']}/{child['platform']['architecture']}"
        sizes[platform] = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    return sizes


def main() -> None:
    state = LocalState.load()
    config = load(CONFIG)
    with tempfile.TemporaryDirectory() as directory:
        checkout = one_line_change(Path(directory))
        started = time.monotonic()
        report = runner.push(config, state, "acme/payments-api", approve=True, checkout=checkout)
        push_seconds = round(time.monotonic() - started, 1)
    rows = []
    for action in report.actions:
        found = _OVERHEAD.search(Path(action.log).read_text()) if action.log else None
        if found:
            rows.append({"pipeline": action.pipeline, "action": action.action, "status": action.status,
                         "seconds": action.seconds, "overhead_seconds": float(found.group(1))})  # fmt: skip
    failed = [f"{a.pipeline}/{a.action}" for a in report.actions if a.status != "Succeeded"]
    overheads = [r["overhead_seconds"] for r in rows]
    with runner._acting_for(state):
        sizes = runner_bytes(state)
    emit(
        "runner",
        rows,
        ("pipeline", "action", "status", "seconds", "overhead_seconds"),
        note="one-line push of payments/api; overhead: action start -> first buildspec command",
        summary={
            "one_line_push_seconds": push_seconds,
            "failed_actions": failed,
            "job_overhead_median_seconds": round(statistics.median(overheads), 2) if overheads else None,
            "job_overhead_max_seconds": max(overheads, default=None),
            "job_overhead_goal_seconds": GOAL_SECONDS,
            "job_overhead_met": bool(overheads) and max(overheads) <= GOAL_SECONDS,
            "runner_bytes": sizes,
        },
    )
    if failed:
        sys.exit(f"runner benchmark: {', '.join(failed)} failed")


if __name__ == "__main__":
    main()
