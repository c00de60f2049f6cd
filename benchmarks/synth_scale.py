"""Synth at scale (issue #26): generated platforms of 50, 200 and 500 services (benchmarks/platforms.py: ten
services a team, two environments each with a Lambda function and an ECS service, a curated base a team, a 50-entry
lock). Prints a table; writes JSON.

Each size is synthesized in its own process (jsii start-up included, as `cdk synth` pays it), with cdk-nag on. Peak
RSS is the largest process of the synthesis (Python or node's jsii runtime: Linux hands a waited child's peak up).
Targets, from CloudFormation's and IAM's documented limits (README, "Limits and quotas"): every template under
1,000,000 bytes and 500 resources (Slipway keeps 900,000 and 400); at most 1,000 roles in the platform account (IAM's
default quota); synthesis time growing linearly at worst (500 services within 10x of 50).
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
from benchmarks.platforms import platform_toml, write  # noqa: E402,F401 (platform_toml: validate_scale's)

SIZES = (50, 200, 500)
REPLICA_REGION = "eu-central-1"  # and 500 services once more, each with prod there: ECR replication at scale
MAX_BYTES, MAX_RESOURCES, MAX_ROLES, MAX_REPLICATION_RULES = 1_000_000, 500, 1_000, 10

CHILD = """
import json, sys
from pathlib import Path
from infra.platform_app import build_app
from pipeline.config import load
config = load(sys.argv[1])
assembly = build_app(config, outdir=sys.argv[2]).synth()
print(json.dumps([
    {"name": s.stack_name, "platform": s.environment.account == config.platform.account,
     "replica": s.environment.region != config.platform.region and s.environment.account == config.platform.account,
     "bytes": (Path(sys.argv[2]) / s.template_file).stat().st_size,
     "types": [r["Type"] for r in s.template.get("Resources", {}).values()],
     "rules": sum(len(r["Properties"]["ReplicationConfiguration"]["Rules"]) for r in s.template.get("Resources", {}).values()
                  if r["Type"] == "AWS::ECR::ReplicationConfiguration")}
    for s in assembly.stacks
]))
"""


def count(stacks: list[dict[str, object]], kind: str, *, platform: bool = True) -> int:
    return sum(list(s["types"]).count(kind) for s in stacks if s["platform"] or not platform)  # type: ignore[call-overload]


def measure(services: int, prod_region: str = "") -> dict[str, object]:
    """``prod_region``: every service's prod in that region (replicated there, issue #27)."""
    with tempfile.TemporaryDirectory() as directory:
        config = write(Path(directory), services, prod_region=prod_region)
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
    largest = max(stacks, key=lambda s: s["bytes"])
    most = max(stacks, key=lambda s: len(s["types"]))
    roles = count(stacks, "AWS::IAM::Role")
    return {
        "services": services,
        "prod_region": prod_region or "eu-west-1",
        "teams": -(-services // 10),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 1024),
        "stacks": len(stacks),
        "largest_template_bytes": largest["bytes"],
        "largest_template": largest["name"],
        "most_resources": len(most["types"]),
        "most_resources_stack": most["name"],
        "platform_roles": roles,
        "platform_policies": count(stacks, "AWS::IAM::Policy") + count(stacks, "AWS::IAM::ManagedPolicy"),
        "codebuild_projects": count(stacks, "AWS::CodeBuild::Project"),
        "pipelines": count(stacks, "AWS::CodePipeline::Pipeline"),
        "event_rules": count(stacks, "AWS::Events::Rule"),
        "repositories": count(stacks, "AWS::ECR::Repository"),
        "replication_rules": sum(int(s["rules"]) for s in stacks),  # type: ignore[call-overload]
        "replica_repositories": sum(list(s["types"]).count("AWS::ECR::Repository") for s in stacks if s["replica"]),  # type: ignore[call-overload]
        "workload_roles": count(stacks, "AWS::IAM::Role", platform=False) - roles,
        "within_limits": largest["bytes"] < MAX_BYTES
        and len(most["types"]) < MAX_RESOURCES
        and roles <= MAX_ROLES
        and sum(int(s["rules"]) for s in stacks) <= MAX_REPLICATION_RULES,  # type: ignore[call-overload]
    }


def main() -> None:
    # --smoke (the end-to-end suite runs it): the smallest size, results in a temporary directory.
    smoke = "--smoke" in sys.argv[1:]
    results = [measure(n) for n in ((10,) if smoke else SIZES)]
    by_size = {r["services"]: r for r in results}
    results.append(measure(10 if smoke else 500, prod_region=REPLICA_REGION))
    growth = (
        round(float(by_size[500]["seconds"]) / float(by_size[50]["seconds"]), 1)  # type: ignore[arg-type]
        if {50, 500} <= by_size.keys()
        else None
    )
    emit(
        "synth_scale",
        results,
        ("services", "prod_region", "seconds", "peak_rss_mb", "stacks", "largest_template_bytes", "most_resources",
         "platform_roles", "codebuild_projects", "pipelines", "repositories", "replication_rules", "within_limits"),
        note="limits: template < 1,000,000 bytes, < 500 resources, <= 1,000 roles in the platform account (IAM's "
        "default); synthesis 500 vs 50 services <= 10x. Two cores.",
        summary={"seconds_500_over_50": growth, "every_size_within_limits": all(r["within_limits"] for r in results)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
