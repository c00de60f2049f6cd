"""``slipway local up|down|status|seed|run``: the whole pipeline on one machine (real BuildKit, registry; moto AWS)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline import config, replication
from pipeline.local import lifecycle, runner
from pipeline.local.reading import reading
from pipeline.local.replay import notifications
from pipeline.local.replay.report import Report, record_timing
from pipeline.local.state import MOTO_PORT, REGISTRY_PORT, LocalState
from pipeline.table import render


def register(commands: Any) -> None:
    parser = commands.add_parser("local", help="run the pipeline on this machine", description=__doc__)
    parser.add_argument("--state", type=Path, default=Path(".slipway"), help="state and logs (default: %(default)s)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up_parser = verbs.add_parser("up", help="start registry, builder and moto (only what is not running)")
    up_parser.add_argument("--registry-port", type=int, default=REGISTRY_PORT)
    up_parser.add_argument("--moto-port", type=int, default=MOTO_PORT)
    up_parser.add_argument("--config", type=Path, default=Path("platform.toml"), help="the platform's account for moto")
    up_parser.set_defaults(
        run=lambda a: up(state_dir=a.state, registry_port=a.registry_port, moto_port=a.moto_port, config_path=a.config)
    )
    verbs.add_parser("down", help="stop what `up` started, by PID").set_defaults(run=lambda a: down(state_dir=a.state))
    verbs.add_parser("status", help="what is running; exit 1 if anything is down").set_defaults(
        run=lambda a: status(state_dir=a.state)
    )
    seed_parser = verbs.add_parser("seed", help="upstream bases (offline) and curated bases into the registry")
    seed_parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    seed_parser.add_argument(
        "--republish-upstream", action="store_true",
        help="publish a new image under every upstream tag (a changed file in a layer), as Docker Hub does when "
        "Debian ships an update; the weekly refresh (`local run --scheduled`) picks it up",
    )  # fmt: skip
    seed_parser.set_defaults(
        run=lambda a: seed(state_dir=a.state, config_path=a.config, republish=a.republish_upstream)
    )
    run_parser = verbs.add_parser("run", help="replay every pipeline of the synthesized cloud assembly")
    run_parser.add_argument(
        "service", nargs="?", default="", help="TEAM/SERVICE: only its pipeline (and what its jobs start)"
    )
    run_parser.add_argument(
        "--scheduled",
        action="store_true",
        help="fire the scheduled starts now (the platform's weekly upstream refresh, and the wave it starts) instead",
    )
    _replay_options(run_parser)
    run_parser.set_defaults(
        run=lambda a: run(
            state_dir=a.state,
            config_path=a.config,
            service=a.service,
            as_json=a.json,
            approve=a.approve,
            scheduled=a.scheduled,
        )
    )
    push_parser = verbs.add_parser(
        "push", help="commit a source repository's folder and start the pipelines it triggers"
    )
    push_parser.add_argument(
        "repository", help="OWNER/NAME, as in platform.toml (examples/repos.toml names the folder)"
    )
    push_parser.add_argument(
        "--from", dest="checkout", type=Path, default=None,
        help="a git checkout whose tracked files are pushed (default: this one, at the folder examples/repos.toml names)",
    )  # fmt: skip
    _replay_options(push_parser)
    push_parser.set_defaults(
        run=lambda a: push(
            state_dir=a.state,
            config_path=a.config,
            repository=a.repository,
            as_json=a.json,
            approve=a.approve,
            checkout=a.checkout,
        )
    )


def _replay_options(parser: Any) -> None:
    parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    parser.add_argument("--approve", action="store_true", help="approve manual approval actions (else: rejected)")
    parser.add_argument("--json", action="store_true", help='print {"actions": [...], "deployments": [...]}')


def _verified(check: dict[str, Any] | None) -> str:
    """``invoke 200 aarch64``, ``GET /health 200 x86_64``, ``run 0 aarch64``."""
    if not check:
        return "-"
    return " ".join(str(part) for part in (check["check"], check["status"], check["machine"]) if part != "")


def _traffic(strategy: dict[str, Any] | None) -> str:
    """``all at once``, or ``canary 10% OK, 100%: promoted`` (#29): the steps and each bake's alarm state."""
    if not strategy:
        return "all at once"
    steps = ", ".join(
        f"{s['percent']}%" + (f" {s['alarm_state']}" if s["alarm_state"] else "") for s in strategy["steps"]
    )
    return f"{strategy['kind']} {steps}: {strategy['outcome']}"


def _use_builder(state: LocalState) -> None:
    if state.docker_host:
        os.environ["DOCKER_HOST"] = state.docker_host


def up(
    *, state_dir: Path, registry_port: int = REGISTRY_PORT, moto_port: int = MOTO_PORT,
    config_path: Path = Path("platform.toml"),
) -> int:  # fmt: skip
    loaded = config.load(config_path) if config_path.exists() else None
    account = loaded.platform.account if loaded else ""
    regions = (loaded.platform.region, *replication.regions(loaded)) if loaded else ()
    state = lifecycle.up(LocalState.load(state_dir), registry_port=registry_port, moto_port=moto_port,
                         account=account, regions=regions)  # fmt: skip
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


def seed(*, state_dir: Path, config_path: Path, republish: bool = False) -> int:
    state = LocalState.load(state_dir)
    _use_builder(state)
    lock = runner.seed(config.load(config_path), state, republish=republish)
    print(render(("build argument", "pinned base"), sorted(lock.items())))
    return 0


def run(
    *, state_dir: Path, config_path: Path, service: str = "", as_json: bool = False, approve: bool = False,
    scheduled: bool = False,
) -> int:  # fmt: skip
    state = LocalState.load(state_dir)
    _use_builder(state)
    started = time.monotonic()
    loaded = config.load(config_path)
    if scheduled:
        return _report(runner.fire_schedules(loaded, state, approve=approve), "", as_json)
    report = runner.run(loaded, state, approve=approve, selection=service)
    timing = record_timing(state.directory, time.monotonic() - started)
    with reading(state):  # what each team's topic delivered to its inbox during the run
        report.notifications = notifications.told(state.aws_endpoint, state.directory / "cdk.out")
    (state.directory / "runs").mkdir(parents=True, exist_ok=True)
    (state.directory / "runs" / "last-run.json").write_text(json.dumps(report.json(), indent=2))
    _keep_told(state.directory / "runs" / "told.json", report.notifications)
    return _report(report, timing, as_json)


def _keep_told(path: Path, told: dict[str, list[dict[str, str]]]) -> None:
    """Every run's messages, in order, per topic (an inbox is read once; this is what each team has received)."""
    kept: dict[str, list[dict[str, str]]] = json.loads(path.read_text()) if path.exists() else {}
    for topic, messages in told.items():
        kept.setdefault(topic, []).extend(messages)
    path.write_text(json.dumps(kept, indent=2))


def push(
    *, state_dir: Path, config_path: Path, repository: str, as_json: bool = False, approve: bool = False,
    checkout: Path | None = None,
) -> int:  # fmt: skip
    state = LocalState.load(state_dir)
    _use_builder(state)
    loaded = config.load(config_path)
    return _report(runner.push(loaded, state, repository, approve=approve, checkout=checkout), "", as_json)


def _first_line(message: str) -> str:
    """An EventBridge message is the transformer's JSON string; CodePipeline's approval a JSON object."""
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = message
    if isinstance(parsed, dict):
        parsed = parsed.get("approval", {}).get("customData", message)
    return str(parsed)[:160]


def _report(report: Report, timing: str, as_json: bool) -> int:
    """One line per action, then the deployments; exit 1 naming the first failed action with its log's last lines."""
    if as_json:
        print(json.dumps(report.json(), indent=2))
    else:
        print()
        print(render(("pipeline", "stage", "action", "role", "status", "seconds"), [
            (a.pipeline, a.stage + (" (rollback)" if a.execution.endswith("-rollback") else ""), a.action, a.role,
             a.status, f"{a.seconds:.1f}") for a in report.actions
        ]))  # fmt: skip
        print()
        print(render(("service", "environment", "account", "deployed to", "image (pinned by digest)", "verified",
                      "traffic"), [
            (d["service"], d["environment"] or "-", d["account"], d["target"], d["image"], _verified(d["verified"]),
             _traffic(d.get("strategy")) + (f" ({d['via']})" if d.get("via") else ""))
            for d in report.deployments
        ]))  # fmt: skip
        for topic, messages in report.notifications.items():
            print(f"\n{topic} was told ({len(messages)}):")
            for told in messages:
                print(f"  - {told['subject'] or _first_line(told['message'])}")
        if timing:
            print(f"\n{timing}; assembly replayed: {report.assembly}")
    for failed in report.failed[:1]:
        print(f"\n{failed.pipeline} / {failed.stage} / {failed.action}: {failed.status}\n{failed.detail}\nlog: "
              f"{failed.log or '-'}", file=sys.stderr)  # fmt: skip
        return 1
    return 0
