"""``slipway deploy <target>``: deploy image.json pinned by digest, and write what was deployed where.

One subcommand per registered deployer (``pipeline.deployers.DEPLOYERS``); each deployer owns its options.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline import records
from pipeline.arguments import seconds
from pipeline.deployers import DEPLOYERS, workload
from pipeline.deployers.base import Deployer, DeployError, DeployRecord, DeployTarget, Verification, aws_reached
from pipeline.errors import InputError
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import verify

STANDINS_ENV = "SLIPWAY_LOCAL_STANDINS"
"""Set only by the local replay: deploy to the local stand-ins and prove the deployed digest answers there."""


def register(commands: Any) -> None:
    parser = commands.add_parser("deploy", help="deploy image.json to Lambda, ECS or EKS", description=__doc__)
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for kind, deployer in DEPLOYERS.items():
        sub = targets.add_parser(kind, help=deployer.help)
        sub.add_argument("--image-json", type=Path, default=Path("image.json"))
        sub.add_argument("--out", type=Path, default=Path(f"deployed-{kind}.json"), help="deploy record")
        sub.add_argument(
            "--timeout", type=seconds, default=600, help="seconds to wait for the rollout (0: do not wait)"
        )
        sub.add_argument("--environment", default="", help="the environment this deploy promotes the release to")
        sub.add_argument("--role-arn", default="", help="the environment's workload role: assumed before deploying")
        sub.add_argument("--region", default="", help="the environment's region (default: the job's)")
        deployer.add_arguments(sub)
        sub.set_defaults(run=lambda a, d=deployer: _run(d, a))


def _run(kind: type[Deployer], args: Any) -> int:
    target = kind.target_from_args(args)
    # Preflight: the workload role is assumed before anything changes; a missing or untrusting role stops here.
    acting = workload.assume(args.role_arn, args.environment, args.region) if args.role_arn else {}
    where = {"environment": args.environment, "account": workload.account_of(args.role_arn)}
    if os.environ.get(STANDINS_ENV):
        # The local replay: moto records the deploy but runs nothing, so the stand-in runs the deployed digest.
        from pipeline.local import aws

        repository = ImageRecord.load(args.image_json).repository
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        return deploy(lambda: aws.local_deployer(endpoint, target, repository, args.out.parent), target,
                      image_json=args.image_json, out=args.out, timeout=aws.LOCAL_TIMEOUT[target.kind],
                      check=lambda record, image: aws.check(target, record, image, args.out.parent),
                      acting_as=acting, where=where)  # fmt: skip
    return deploy(lambda: kind.from_args(args), target, image_json=args.image_json, out=args.out,
                  timeout=args.timeout, acting_as=acting, where=where)  # fmt: skip


def deploy(
    deployer: Deployer | Callable[[], Deployer],
    target: DeployTarget,
    *,
    image_json: Path,
    out: Path,
    timeout: float = 600,
    registry: RegistryClient | None = None,
    check: Callable[[DeployRecord, ImageRecord], Verification] | None = None,
    acting_as: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> int:
    """Checked before anything changes: ``--out`` is writable (a deploy that cannot write its record would leave a
    retry without its rollback target), and the registry serves exactly what image.json says -- the index by digest
    and by tag, each child's bytes and its config's real architecture (an amd64 child labelled arm64 is refused).

    The registry is read as the job itself; the deployer (a factory: made here) then acts with ``acting_as`` in the
    environment (an environment's workload-role credentials and region). ``where``: ``environment`` and ``account``
    for the record."""
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise InputError(f"--out {out}: directory {out.parent} does not exist or is not writable; nothing was deployed")
    image = ImageRecord.load(image_json)
    verify(registry or client_for(RepositoryRef.parse(image.repository)), image)
    with workload.acting_as(acting_as or {}), aws_reached(target.label):
        made = deployer if hasattr(deployer, "deploy") else deployer()
        record = replace(made.deploy(image, target, timeout=timeout), **(where or {}))
        if check is not None:
            record = replace(record, verified=check(record, image))
    if record.verified is not None and not record.verified.ok:
        records.write(out, record)
        raise DeployError(f"{target.label}: {record.image} failed its check ({record.verified})")
    return _finish(record, out)


def _finish(record: DeployRecord, out: Path) -> int:
    records.write(out, record)
    state = "deployed" if record.changed else "already serving this digest (nothing changed)"
    revision = f" revision {record.revision}" if record.revision else ""
    place = f" in {record.environment} ({record.account})" if record.environment else ""
    print(f"{record.target}{place}: {record.image} [{state}]{revision}")
    return 0
