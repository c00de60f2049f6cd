"""Synth at scale: generated platforms of 10, 50 and 200 services. Prints a table; writes JSON.

Each size is synthesized in its own process (jsii start-up included, as `cdk synth` pays it), with cdk-nag on.
Targets: no stack above 400 resources (CloudFormation's cap is 500); 200 services under 30 s on 2 cores.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402

SIZES = (10, 50, 200)
TEAMS = 10


def platform_toml(services: int) -> str:
    lines = [
        '[platform]\nname = "bench"\naccount = "111111111111"\nregion = "eu-west-1"',
        'connection_arn = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b5d4e2a-6f1c-4a8e-9d3b-2c7f1e8a9b40"',
        '[[upstreams]]\nprefix = "docker-hub"\nregistry = "docker-hub"\ncredential_secret = "ecr-pullthroughcache/docker-hub"',
    ]
    per_team = -(-services // TEAMS)
    made = 0
    for t in range(TEAMS):
        lines.append(f'[[teams]]\nname = "team{t:02d}"')
        for s in range(per_team):
            if made == services:
                break
            lines.append(
                f'[[teams.services]]\nname = "svc{s:03d}"\nsource_repo = "acme/t{t}-s{s}"\n'
                f'[teams.services.deploy.ecs]\ncluster = "c{t}"\nservice = "s{s}"\ncontainer = "app"'
            )
            made += 1
    return "\n".join(lines) + "\n"


CHILD = """
import json, sys
from infra.platform_app import build_app
from pipeline.config import load
assembly = build_app(load(sys.argv[1]), outdir=sys.argv[2]).synth()
print(json.dumps([[s.stack_name, len(s.template.get("Resources", {}))] for s in assembly.stacks]))
"""


def measure(services: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "platform.toml"
        config.write_text(platform_toml(services))
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, str(config), str(Path(directory) / "cdk.out")],
            cwd=ROOT, capture_output=True, text=True, check=True,
            env={"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "PATH": "/usr/bin:/bin", "HOME": "/root"},
        )  # fmt: skip
        seconds = time.monotonic() - started
        peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    stacks = json.loads(completed.stdout.strip().splitlines()[-1])
    largest = max(stacks, key=lambda s: s[1])
    return {
        "services": services,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 1024),
        "stacks": len(stacks),
        "largest_stack": largest[0],
        "largest_stack_resources": largest[1],
        "under_400": largest[1] <= 400,
    }


def main() -> None:
    # --smoke (the end-to-end suite runs it): the smallest size, results in a temporary directory.
    results = [measure(n) for n in ((10,) if "--smoke" in sys.argv[1:] else SIZES)]
    emit(
        "synth_scale",
        results,
        ("services", "seconds", "peak_rss_mb", "stacks", "largest_stack_resources", "under_400"),
        note="target: every stack <= 400 resources; 200 services < 30 s (2 cores). Peak RSS is the python process; node's jsii runtime is a child of it.",
    )


if __name__ == "__main__":
    main()
