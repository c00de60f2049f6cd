"""``slipway rollback <target> --record deployed-<target>.json``: return the target to the record's previous digest,
checked against the registry and verified the way a deploy is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import records
from pipeline.arguments import seconds
from pipeline.deployers import DEPLOYERS
from pipeline.deployers.base import DeployRecord
from pipeline.rollback import rollback


def register(commands: Any) -> None:
    parser = commands.add_parser("rollback", help="return a target to its previous digest", description=__doc__)
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for kind, deployer in DEPLOYERS.items():
        sub = targets.add_parser(kind, help=f"roll back a {kind} target")
        sub.add_argument("--record", type=Path, default=Path(f"deployed-{kind}.json"), help="the deploy record")
        sub.add_argument("--out", type=Path, default=Path(f"rolled-back-{kind}.json"), help="the rollback's record")
        sub.add_argument("--timeout", type=seconds, default=600)
        deployer.add_arguments(sub)
        sub.set_defaults(
            run=lambda a, d=deployer: run(
                d.from_args(a), d.target_from_args(a), record_path=a.record, out=a.out, timeout=a.timeout
            )
        )


def run(deployer: Any, target: Any, *, record_path: Path, out: Path, timeout: float, registry: Any = None) -> int:
    record = rollback(deployer, target, DeployRecord.load(record_path), timeout=timeout, registry=registry)
    records.write(out, record)
    print(
        f"{record.target}: rolled back to {record.image}{f' (verified: {record.verified})' if record.verified else ''}"
    )
    return 0
