"""``slipway status``: for every service, environment and target, the digest serving now -- read live from the target
in its account -- its release and commit, since when, and drift (exit 1 when any target drifts or cannot be read).

An environment's targets are read as a role assumed in its account: by default the service's workload role there
(what the team's deploy roles assume); ``--role-name`` names another the caller may assume in every workload account
(a read-only role of the organization). ``--local`` reads the replay's stand-ins, as its platform team does
(``OrganizationAccountAccessRole`` in the workload accounts).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from pipeline import config, status, status_page
from pipeline.deployers import workload
from pipeline.naming import partition_for, workload_role_name
from pipeline.registry import client_for_host
from pipeline.table import render


def register(commands: Any) -> None:
    parser = commands.add_parser("status", help="what serves where, read live; drift", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    parser.add_argument("--json", action="store_true", help="one object per target")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write one static page: services x environments")
    parser.add_argument("--role-name", default="", help="the role assumed in each workload account (default: the "
                        "service's workload role there)")  # fmt: skip
    parser.add_argument("--local", type=Path, nargs="?", const=Path(".slipway"), metavar="STATE",
                        help="read the local replay's stand-ins (state directory, default .slipway)")  # fmt: skip
    parser.set_defaults(
        run=lambda a: show(config_path=a.config, as_json=a.json, page=a.html, role_name=a.role_name, local=a.local)
    )


def sessions(role_name: str) -> status.Sessions:
    """Each place's session: this process's own in the platform's account, an assumed role in a workload account."""
    cache: dict[tuple[str, str, str], Any] = {}

    def session(place: status.Place) -> Any:
        if not place.environment:
            return boto3.Session(region_name=place.region)
        name = role_name or workload_role_name(place.team, place.service, place.environment)
        role = f"arn:{partition_for(place.region)}:iam::{place.account}:role/{name}"
        key = (role, place.environment, place.region)
        if key not in cache:
            cache[key] = workload.session(role, place.environment, place.region)
        return cache[key]

    return session


def show(*, config_path: Path, as_json: bool = False, page: Path | None = None, role_name: str = "",
         local: Path | None = None) -> int:  # fmt: skip
    loaded = config.load(config_path)
    with _local(local) as default_role:
        rows = status.collect(loaded, sessions(role_name or default_role), status.Releases(client_for_host))
    if page is not None:
        page.write_text(status_page.render(rows, platform=loaded.platform.name))
    if as_json:
        print(json.dumps([r.json() for r in rows], indent=2))
    else:
        print(render(("service", "environment", "account", "target", "digest", "release", "since", "verified", "state"), [
            (r.service, r.environment or "-", r.account, r.target, r.digest[:19] or "-", r.release or "-",
             r.since[:19] or "-", r.verified[:48] or "-", r.state) for r in rows
        ]))  # fmt: skip
        for row in status.drifted(rows):
            print(f"{row.service} {row.environment or '(platform account)'} {row.target}: {row.state}: {row.why}")
    return 1 if status.drifted(rows) else 0


@contextlib.contextmanager
def _local(state_dir: Path | None) -> Iterator[str]:
    """Nothing in the cloud; with ``--local``, the replay's stand-ins reached as the replay reaches them."""
    if state_dir is None:
        yield ""
        return
    from pipeline.local.iam_enforcement import ORGANIZATION_ROLE
    from pipeline.local.reading import reading
    from pipeline.local.state import LocalState

    with reading(LocalState.load(state_dir)):
        yield ORGANIZATION_ROLE
