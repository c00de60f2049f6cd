"""``slipway preflight``: read-only checks of the account before ``cdk deploy``. One line per check; exit 1 on any
failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import config, preflight


def register(commands: Any) -> None:
    parser = commands.add_parser("preflight", help="check the account before cdk deploy --all", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=lambda a: run(config_path=a.config, as_json=a.json))


def run(*, config_path: Path, as_json: bool = False, clients: preflight.Clients | None = None) -> int:
    loaded = config.load(config_path)
    checks = list(preflight.run(loaded, clients or preflight.boto3_clients(loaded.platform.region)))
    if as_json:
        print(preflight.as_json(checks))
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<40} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1
