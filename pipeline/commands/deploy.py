"""``slipway deploy <target>``: deploy image.json pinned by digest, and write what was deployed where.

One subcommand per registered deployer (``pipeline.deployers.DEPLOYERS``); each deployer owns its options. One path:
the deployer and its clients are made the same way in CodeBuild and in the local replay -- from an explicit session
carrying the environment's workload-role credentials and region. The replay only points that path at its stand-ins
(``AWS_ENDPOINT_URL``, ``SLIPWAY_ECR_ENDPOINT``) and, with ``SLIPWAY_LOCAL_STANDINS``, adds a check after the deploy
that the deployed digest answers (moto runs no ECS tasks or pods).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import ClientError

from pipeline import notify, records, regional
from pipeline.arguments import seconds
from pipeline.attest.release import verify as verify_attestations
from pipeline.attest.signer import KmsSigner, Signer
from pipeline.deploy_options import Where, checked_target
from pipeline.deployers import DEPLOYERS, workload
from pipeline.deployers.base import (
    Deployer,
    DeployError,
    DeployRecord,
    DeployTarget,
    Verification,
    aws_reached,
    verified_mark,
)  # fmt: skip
from pipeline.deployers.shift import RolledBackError
from pipeline.errors import SlipwayError
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import verify

STANDINS_ENV = "SLIPWAY_LOCAL_STANDINS"
"""Set only by the local replay: after the deploy, prove the deployed digest answers on the stand-ins."""

Check = Callable[[DeployRecord, ImageRecord], Verification]


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
        sub.add_argument("--notify-topic", default="", help="the team's SNS topic: told what was deployed, or why not")
        sub.add_argument(
            "--next-approval",
            default="",
            metavar="ENVIRONMENT",
            help="the environment whose approval this release goes to next (named in the message)",
        )
        sub.add_argument("--approval-link", default="", help="where that approval is reviewed")  # fmt: skip
        sub.add_argument(
            "--release-key",
            default="",
            help="the platform's release key (ARN): the release must be "
            "signed with it, with a provenance naming --source and image.json's commit",
        )
        sub.add_argument("--source", default="", help="the source repository the pipeline builds")  # fmt: skip
        deployer.add_arguments(sub)
        sub.set_defaults(run=lambda a, d=deployer: _run(d, a))


def _run(kind: type[Deployer], args: Any) -> int:
    target = checked_target(kind.target_from_args(args))
    where = Where.from_args(args)
    records.reserve(args.out, f"deploy of {target.label}", nothing="nothing was deployed")
    # Preflight: the workload role is assumed before anything changes; a missing or untrusting role stops here.
    acting = workload.session(where.role_arn, where.environment, where.region)
    return deploy(lambda: kind.from_args(args, acting), target, image_json=args.image_json, out=args.out,
                  timeout=args.timeout, check=_local_check(target, args.out.parent, acting),
                  where={"environment": where.environment, "account": workload.account_of(where.role_arn)},
                  region=where.region, notify_topic=args.notify_topic,
                  next_approval=(args.next_approval, args.approval_link),
                  attested=(KmsSigner(args.release_key), args.source) if args.release_key else None)  # fmt: skip


def _local_check(target: DeployTarget, directory: Path, acting: Any) -> Check | None:
    """The replay's proof that the deployed digest answers (around the deploy, never instead of it)."""
    if not os.environ.get(STANDINS_ENV):
        return None
    from pipeline.local import aws

    return lambda record, image: aws.check(target, record, image, directory, acting)


def deploy(
    deployer: Deployer | Callable[[], Deployer],
    target: DeployTarget,
    *,
    image_json: Path,
    out: Path,
    timeout: float = 600,
    registry: RegistryClient | None = None,
    check: Check | None = None,
    where: Mapping[str, str] | None = None,
    region: str = "",
    notify_topic: str = "",
    next_approval: tuple[str, str] = ("", ""),
    attested: tuple[Signer, str] | None = None,
) -> int:
    """Checked before anything changes: ``--out`` can be written (it is claimed with an "in progress" placeholder; a
    deploy that cannot write its record would leave a retry without its rollback target), and the registry serves
    exactly what image.json says -- the index by digest and by tag, each child's bytes and its config's real
    architecture (an amd64 child labelled arm64 is refused).

    The registry is read as the job itself; the deployer (a factory: made here) acts with the clients it was given.
    ``where``: ``environment`` and ``account`` for the record. ``region``: the environment's; in another region than
    the platform's repository, the deploy names its replica there (:mod:`pipeline.regional`), once the replica
    serves the same release (the same check, waited for up to ``timeout``). ``notify_topic``: the team is told the
    outcome (:mod:`pipeline.notify`), a deploy that did not finish included, and ``next_approval`` (environment,
    link) the approval this release goes to next."""
    try:
        record, image = _deploy(deployer, target, image_json, out, timeout, registry, check, where, region, attested)
    except SlipwayError as exc:
        if notify_topic:
            _tell_failure(notify_topic, target, image_json, (where or {}).get("environment", ""), str(exc))
        raise
    if notify_topic:
        service = RepositoryRef.parse(image.repository).name
        told = notify.deployed(record, image, service, next_approval=next_approval[0], approval_link=next_approval[1])
        notify.publish(notify_topic, *told)
    state = "deployed" if record.changed else "already serving this digest (nothing changed)"
    revision = f" revision {record.revision}" if record.revision else ""
    place = f" in {record.environment} ({record.account})" if record.environment else ""
    print(f"{record.target}{place}: {record.image} [{state}]{revision}")
    return 0


def _deploy(
    deployer: Deployer | Callable[[], Deployer],
    target: DeployTarget,
    image_json: Path,
    out: Path,
    timeout: float,
    registry: RegistryClient | None,
    check: Check | None,
    where: Mapping[str, str] | None,
    region: str,
    attested: tuple[Signer, str] | None = None,
) -> tuple[DeployRecord, ImageRecord]:
    records.reserve(out, f"deploy of {target.label}", nothing="nothing was deployed")
    image = ImageRecord.load(image_json)
    home = registry or client_for(RepositoryRef.parse(image.repository))
    verify(home, image)
    if attested is not None:
        # Signed by the platform's release key, built from this pipeline's source at image.json's commit (#28).
        for found in verify_attestations(home, image, attested[0], source=attested[1]):
            print(f"{image.index_uri}: {found.kind}: {found.says}")
    if (local := regional.regional(image, region)) is not image:
        replica = registry or client_for(RepositoryRef.parse(local.repository))
        regional.await_replica(replica, local, verify, timeout=timeout)
        image = local
    with aws_reached(target.label):
        made = deployer if hasattr(deployer, "deploy") else deployer()
        try:
            record = _placed(made.deploy(image, target, timeout=timeout), where)
        except RolledBackError as exc:  # the shift's alarm fired: what serves now (the previous version), and why
            if exc.record is not None:
                _write(out, _placed(exc.record, where))
            raise
    if check is not None:
        try:
            record = replace(record, verified=check(record, image))
        except DeployError:
            _write(out, record)
            raise
    if record.verified is not None and not record.verified.ok:
        _write(out, record)
        raise DeployError(f"{target.label}: {record.image} failed its check ({record.verified})")
    _write(out, record)
    if record.verified is not None:
        _mark(cast(Deployer, made), target, record)
    return record, image


def _mark(deployer: Deployer, target: DeployTarget, record: DeployRecord) -> None:
    """What proved the digest answers, left on the target for ``slipway status``; the deploy stands without it."""
    assert record.verified is not None
    mark = verified_mark(record.image, record.verified, datetime.now(UTC))
    try:
        with aws_reached(target.label):
            deployer.record_verified(target, record.image, mark)
    except (SlipwayError, ClientError) as exc:
        print(f"{target.label}: the verification could not be recorded on the target ({exc}); the deploy stands, "
              "slipway status shows it unverified", file=sys.stderr)  # fmt: skip


def _tell_failure(topic: str, target: DeployTarget, image_json: Path, environment: str, error: str) -> None:
    try:
        release = ImageRecord.load(image_json)
    except SlipwayError:
        return  # no release to name: the job's log says why
    service = RepositoryRef.parse(release.repository).name
    notify.publish(topic, *notify.failed(target.label, release, service, environment, error))


def _placed(record: DeployRecord, where: Mapping[str, str] | None) -> DeployRecord:
    """The record with the environment and account it was deployed in."""
    where = where or {}
    return replace(
        record, environment=where.get("environment", record.environment), account=where.get("account", record.account)
    )


def _write(out: Path, record: DeployRecord) -> None:
    """The record, or -- when it cannot be written after the change -- what changed and how to finish."""
    try:
        records.write(out, record)
    except OSError as exc:
        raise DeployError(
            f"{record.target}: now serves {record.image} (before: {record.previous_image or 'nothing recorded'}), but "
            f"the record could not be written to {out} ({exc.strerror or exc}); run the same deploy again: it finds "
            "the target serving this digest and records the previous image the target keeps"
        ) from exc
