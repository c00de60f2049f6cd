"""``slipway preflight``: read-only checks of the account before ``cdk deploy``. One line per check; exit 1 on any
failure.

The quota checks count what the platform's stacks create: from ``--assembly`` (a ``cdk synth`` output), or from a
synthesis into a temporary directory (seconds; minutes at hundreds of services)."""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline import config, preflight, quotas
from pipeline.assembly import AssemblyError


def register(commands: Any) -> None:
    parser = commands.add_parser("preflight", help="check the account before cdk deploy --all", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--assembly", type=Path, help="a synthesized cdk.out to count from (default: synthesize)")
    parser.set_defaults(run=lambda a: run(config_path=a.config, as_json=a.json, assembly=a.assembly))


def run(
    *,
    config_path: Path,
    as_json: bool = False,
    clients: preflight.Clients | None = None,
    assembly: Path | None = None,
) -> int:
    loaded = config.load(config_path)
    try:
        needs = _needs(loaded, assembly)
    except AssemblyError as exc:
        print(f"slipway preflight: --assembly {assembly}: {exc}", file=sys.stderr)
        return 2
    checks = list(preflight.run(loaded, clients or preflight.boto3_clients(loaded.platform.region), needs))
    if as_json:
        print(preflight.as_json(checks))
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<40} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def _needs(loaded: config.PlatformConfig, assembly: Path | None) -> Counter[str]:
    if assembly is not None:
        return quotas.footprint(assembly, loaded.platform.account)
    from pipeline.commands.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="slipway-preflight-") as directory:
        synthesize(loaded, Path(directory))
        return quotas.footprint(Path(directory), loaded.platform.account)
