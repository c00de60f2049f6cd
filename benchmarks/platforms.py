"""Generated platforms for the scale benchmarks and the scale test: what a platform team of many teams would write.

Ten services a team; each service builds for both architectures and promotes through two environments (dev, then
prod behind an approval), each with a Lambda function and an ECS service, in the team's two workload accounts; each
team curates one base and is told through its own topic. A lock of ``lock_entries`` upstream pins is written beside it (``images/lock.json``): synth
reads none of it -- no template holds a lock entry -- and the benchmark shows that by its bytes not moving.
"""

from __future__ import annotations

import json
from pathlib import Path

SERVICES_PER_TEAM = 10
CONNECTION = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b5d4e2a-6f1c-4a8e-9d3b-2c7f1e8a9b40"


def platform_toml(
    services: int, *, environments: bool = True, per_team: int = SERVICES_PER_TEAM, prod_region: str = ""
) -> str:
    """``prod_region``: prod in that region (every service then replicated there); empty: the platform's."""
    lines = [
        '[platform]\nname = "bench"\naccount = "111111111111"\nregion = "eu-west-1"',
        f'connection_arn = "{CONNECTION}"\nsource_repo = "acme/platform"\nbranch = "main"',
        '[[upstreams]]\nprefix = "docker-hub"\nregistry = "docker-hub"\ncredential_secret = "ecr-pullthroughcache/docker-hub"',
    ]  # fmt: skip
    for t in range(-(-services // per_team)):
        dev, prod = f"{200_000_000_000 + 2 * t:012d}", f"{200_000_000_001 + 2 * t:012d}"
        lines.append(f'[[teams]]\nname = "team{t:03d}"')
        if environments:
            lines.append(f'workload_accounts = ["{dev}", "{prod}"]')
        lines.append("[teams.notifications]")  # a topic and a failure rule a team
        lines.append(f'[[teams.base_images]]\nname = "runtime{t:03d}"\ncontext = "images/python"')
        for s in range(min(per_team, services - t * per_team)):
            lines.append(f'[[teams.services]]\nname = "svc{s:03d}"\nsource_repo = "acme/t{t}-s{s}"')
            if not environments:
                lines.append(f'[teams.services.deploy.ecs]\ncluster = "c{t}"\nservice = "s{s}"\ncontainer = "app"')
                continue
            for name, account, approval, region in (("dev", dev, "false", ""), ("prod", prod, "true", prod_region)):
                lines.append(
                    f'[[teams.services.environments]]\nname = "{name}"\naccount = "{account}"\napproval = {approval}\n'
                    f'region = "{region}"\n'
                    f'[teams.services.environments.lambda]\nfunction_name = "t{t}-s{s}"\narchitecture = "arm64"\n'
                    f'[teams.services.environments.ecs]\ncluster = "c{t}"\nservice = "s{s}"\ncontainer = "app"'
                )
    return "\n".join(lines) + "\n"


def write(directory: Path, services: int, *, lock_entries: int = 50, prod_region: str = "") -> Path:
    """``platform.toml`` and ``images/lock.json`` (``lock_entries`` upstream pins) in ``directory``."""
    config = directory / "platform.toml"
    config.write_text(platform_toml(services, prod_region=prod_region))
    (directory / "images").mkdir(exist_ok=True)
    lock = {
        f"UPSTREAM_IMAGE_{i:02d}": f"docker-hub/library/image{i:02d}:1@sha256:{i:064x}" for i in range(lock_entries)
    }
    (directory / "images" / "lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    return config
