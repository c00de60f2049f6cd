"""``slipway rollback <target> --record deployed-<target>.json``: return the target to the record's previous digest,
checked against the registry and verified the way a deploy is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import notify, records
from pipeline.arguments import seconds
from pipeline.deploy_options import Where, checked_target
from pipeline.deployers import DEPLOYERS, workload
from pipeline.deployers.base import DeployError, DeployRecord, aws_reached
from pipeline.registry import RepositoryRef, client_for_host
from pipeline.rollback import rollback


def register(commands: Any) -> None:
    parser = commands.add_parser("rollback", help="return a target to its previous digest", description=__doc__)
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for kind, deployer in DEPLOYERS.items():
        sub = targets.add_parser(kind, help=f"roll back a {kind} target")
        sub.add_argument("--record", type=Path, default=Path(f"deployed-{kind}.json"), help="the deploy record")
        sub.add_argument("--out", type=Path, default=Path(f"rolled-back-{kind}.json"), help="the rollback's record")
        sub.add_argument("--timeout", type=seconds, default=600)
        sub.add_argument("--role-arn", default="", help="an environment's workload role: assumed first (cross-account)")
        sub.add_argument("--region", default="", help="the environment's region (default: the caller's)")
        sub.add_argument("--notify-topic", default="", help="the team's SNS topic: told of the rollback")
        deployer.add_arguments(sub)
        sub.set_defaults(run=lambda a, d=deployer: _run(d, a))


def _run(deployer: Any, args: Any) -> int:
    """In an environment, everything -- the registry check included -- acts as its workload role."""
    target = checked_target(deployer.target_from_args(args))
    where = Where.from_args(args)
    record = DeployRecord.load(args.record)
    records.reserve(args.out, f"rollback of {target.label}", nothing="nothing was rolled back")
    acting = workload.session(where.role_arn, "", where.region)
    registry = client_for_host(record.previous_image.partition("/")[0], session=acting)
    return run(deployer.from_args(args, acting), target, record_path=args.record, out=args.out,
               timeout=args.timeout, registry=registry, notify_topic=args.notify_topic)  # fmt: skip


def run(deployer: Any, target: Any, *, record_path: Path, out: Path, timeout: float, registry: Any = None,
        notify_topic: str = "") -> int:  # fmt: skip
    records.reserve(out, f"rollback of {target.label}", nothing="nothing was rolled back")
    with aws_reached(target.label):
        record = rollback(deployer, target, DeployRecord.load(record_path), timeout=timeout, registry=registry)
    try:
        records.write(out, record)
    except OSError as exc:
        raise DeployError(
            f"{record.target}: rolled back to {record.image}, but the record could not be written to {out} "
            f"({exc.strerror or exc}); the target serves {record.image} now"
        ) from exc
    print(
        f"{record.target}: rolled back to {record.image}{f' (verified: {record.verified})' if record.verified else ''}"
    )
    if notify_topic:
        notify.publish(notify_topic, *notify.rolled_back(record, RepositoryRef.parse(record.image.split("@")[0]).name))
    return 0
