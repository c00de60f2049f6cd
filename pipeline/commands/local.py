"""``slipway local up|down|status|seed|run``: the whole pipeline on one machine (real BuildKit, registry; moto AWS)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.local import lifecycle, runner
from pipeline.local.state import MOTO_PORT, REGISTRY_PORT, LocalState
from pipeline.table import render


def register(commands: Any) -> None:
    parser = commands.add_parser("local", help="run the pipeline on this machine", description=__doc__)
    parser.add_argument("--state", type=Path, default=Path(".slipway"), help="state and logs (default: %(default)s)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up_parser = verbs.add_parser("up", help="start registry, builder and moto (only what is not running)")
    up_parser.add_argument("--registry-port", type=int, default=REGISTRY_PORT)
    up_parser.add_argument("--moto-port", type=int, default=MOTO_PORT)
    up_parser.set_defaults(run=lambda a: up(state_dir=a.state, registry_port=a.registry_port, moto_port=a.moto_port))
    verbs.add_parser("down", help="stop what `up` started, by PID").set_defaults(run=lambda a: down(state_dir=a.state))
    verbs.add_parser("status", help="what is running; exit 1 if anything is down").set_defaults(
        run=lambda a: status(state_dir=a.state)
    )
    seed_parser = verbs.add_parser("seed", help="upstream bases (offline) and curated bases into the registry")
    seed_parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    seed_parser.set_defaults(run=lambda a: seed(state_dir=a.state, config_path=a.config))
    run_parser = verbs.add_parser("run", help="lint, build, stitch, verify and deploy each service")
    run_parser.add_argument("service", nargs="?", default="", help="TEAM/SERVICE (default: all)")
    run_parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    run_parser.add_argument("--json", action="store_true", help="print the results as JSON")
    run_parser.set_defaults(
        run=lambda a: run(state_dir=a.state, config_path=a.config, service=a.service, as_json=a.json)
    )


def _build_cells(build: dict[str, Any]) -> tuple[str, str]:
    """Seconds and cache hits, or "reused" when unchanged inputs meant no build at all."""
    if build["builder"] == "reused":
        return "reused", "-"
    return f"{build['seconds']:.1f}", str(build["cache_hits"])


def _verified(check: dict[str, Any] | None) -> str:
    """``invoke 200 aarch64``, ``GET /health 200 x86_64``, ``run 0 aarch64``."""
    if not check:
        return "-"
    return " ".join(str(part) for part in (check["check"], check["status"], check["machine"]) if part != "")


def _use_builder(state: LocalState) -> None:
    if state.docker_host:
        os.environ["DOCKER_HOST"] = state.docker_host


def up(*, state_dir: Path, registry_port: int = REGISTRY_PORT, moto_port: int = MOTO_PORT) -> int:
    state = lifecycle.up(LocalState.load(state_dir), registry_port=registry_port, moto_port=moto_port)
    for running in state.services.values():
        origin = f"started, pid {running.pid}" if running.ours else "already running"
        print(f"{running.name:<9} {running.address} ({origin})")
    return 0


def down(*, state_dir: Path) -> int:
    stopped = lifecycle.down(LocalState.load(state_dir))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing that `up` started"))
    return 0


def status(*, state_dir: Path) -> int:
    rows = lifecycle.status(LocalState.load(state_dir))
    print(render(("service", "address", "state", "started by up"), [
        (s.name, s.address, "running" if s.running else "down", "yes" if s.ours else "no") for s in rows
    ]))  # fmt: skip
    return 0 if all(s.running for s in rows) else 1


def seed(*, state_dir: Path, config_path: Path) -> int:
    state = LocalState.load(state_dir)
    _use_builder(state)
    lock = runner.seed(config.load(config_path), state)
    print(render(("build argument", "pinned base"), sorted(lock.items())))
    return 0


def run(*, state_dir: Path, config_path: Path, service: str = "", as_json: bool = False) -> int:
    state = LocalState.load(state_dir)
    _use_builder(state)
    started = time.monotonic()
    results = runner.run(config.load(config_path), state, service)
    timing = runner.record_timing(state, time.monotonic() - started)
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    rows = [
        (
            r.service,
            b["platform"],
            b["digest"][:19] + "…",
            f"{b['size'] / 1e6:.1f} MB",
            *_build_cells(b),
        )
        for r in results
        for b in r.builds
    ]
    print()
    print(render(("service", "platform", "digest", "size", "build s", "cache hits"), rows))
    print()
    deploys = [(r.service, d["target"], d["image"], _verified(d["verified"])) for r in results for d in r.deploys]
    print(render(("service", "deployed to", "image (pinned by digest)", "verified"), deploys))
    print()
    print(timing)
    return 0
