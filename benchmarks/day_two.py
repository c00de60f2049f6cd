"""Day two on the local platform (`make demo` first): how long a patched upstream takes to reach every service.

Docker Hub moves every upstream tag the committed lock follows (`slipway local seed --republish-upstream`: one changed
file in a layer); then EventBridge fires the platform pipeline's weekly refresh (`slipway local run --scheduled
--approve`: approvals given, as a person would). `patch_propagation_seconds` runs from the refresh's start to the last
verified deploy of every service, target and environment on the new base; `manual_steps_after_bootstrap` counts what
a platform team did on the way (nothing: no synthesis, no `cdk deploy`, no commit -- the approvals are the process,
not a step). Writes benchmarks/results/day_two.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from pipeline.commands.local import run, seed  # noqa: E402
from pipeline.deployers.base import DeployRecord  # noqa: E402
from pipeline.local.state import LocalState  # noqa: E402

CONFIG = ROOT / "platform.toml"


def served(state: LocalState) -> dict[tuple[str, str, str], str]:
    found = {}
    for path in sorted((state.directory / "runs").glob("*/deployed-*.json")):
        record = DeployRecord.load(path)
        found[(path.parent.name, record.environment or "-", record.target.split(":", 1)[0])] = record.image
    return found


def templates(state: LocalState) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (state.directory / "cdk.out").glob("*.template.json")}


def main() -> None:
    given = sys.argv[sys.argv.index("--state") + 1] if "--state" in sys.argv[1:-1] else ""
    state = LocalState.load(Path(given) if given else ROOT / ".slipway")
    if not state.services:
        sys.exit("no local platform: run `make demo` first")
    before, deployed = served(state), templates(state)
    if seed(state_dir=state.directory, config_path=CONFIG, republish=True) != 0:
        sys.exit("seed --republish-upstream failed")
    started = time.monotonic()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(state_dir=state.directory, config_path=CONFIG, scheduled=True, approve=True, as_json=True)
    seconds = round(time.monotonic() - started, 1)
    report = json.loads(out.getvalue())
    after = {(d["service"], d["environment"] or "-", d["target"].split(":", 1)[0]): d for d in report["deployments"]}
    rows = [
        {"service": key[0], "environment": key[1], "target": key[2], "before": before.get(key, "")[-19:],
         "after": after[key]["image"][-19:] if key in after else "(not deployed)",
         "verified": "yes" if key in after and after[key]["verified"] else "no"}
        for key in sorted(set(before) | set(after))
    ]  # fmt: skip
    reached = all(k in after and after[k]["verified"] and after[k]["image"] != before[k] for k in before)
    emit(
        "day_two",
        rows,
        ("service", "environment", "target", "before", "after", "verified"),
        note="seed --republish-upstream, then run --scheduled --approve (the weekly refresh and the wave it starts)",
        summary={
            "patch_propagation_seconds": seconds if code == 0 and reached else None,
            "manual_steps_after_bootstrap": 0,
            "every_target_on_a_new_digest": reached,
            "templates_unchanged": templates(state) == deployed,
            "pipelines_run": sorted({a["pipeline"] for a in report["actions"]}),
        },
    )
    if code != 0 or not reached:
        sys.exit(1)


if __name__ == "__main__":
    main()
