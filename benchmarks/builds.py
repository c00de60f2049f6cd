"""Build benchmarks on the local platform (`make demo` first): rebuild after a one-line change, native vs emulated,
image size naive vs Slipway, and stitch cost. Prints tables; writes JSON under benchmarks/results/.

Cold: BuildKit's local cache pruned and a fresh repository (nothing to reuse). Warm, registry: local cache pruned
again (a fresh CI runner), only the registry cache from the cold build to reuse. Warm, local: BuildKit's local cache
kept (a developer's machine). The CDK DockerImageAsset way -- one platform, no registry cache -- rebuilds on a fresh
runner exactly like the cold build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from pipeline import bases  # noqa: E402
from pipeline.commands.build import build_image  # noqa: E402
from pipeline.local.services import DOCKER_CLIENT  # noqa: E402
from pipeline.local.state import LocalState  # noqa: E402
from pipeline.records import BuildRecord, ImageRecord  # noqa: E402
from pipeline.registry.distribution import DistributionClient  # noqa: E402
from pipeline.stitch import stitch  # noqa: E402

SERVICES = {
    # name: (context, file changed by one line, line appended)
    "payments/api": (ROOT / "examples" / "web", "app/__main__.py", "# one-line change\n"),
    "search/indexer": (ROOT / "examples" / "static", "indexer.c", "/* one-line change */\n"),
}
NAIVE = {
    "payments/api": ROOT / "benchmarks" / "naive" / "web",
    "search/indexer": ROOT / "benchmarks" / "naive" / "static",
}
PLATFORMS = ("linux/amd64", "linux/arm64")


def prune() -> None:
    subprocess.run([DOCKER_CLIENT, "builder", "prune", "--all", "--force"], capture_output=True, check=True)


def build(
    state: LocalState, repo: str, context: Path, platform: str, args: dict[str, str], dockerfile: Path | None = None
) -> BuildRecord:
    declared = bases.declared_args(dockerfile or context / "Dockerfile")
    return build_image(
        repository=f"{state.registry}/{repo}", platform=platform, context=context,
        dockerfile=dockerfile or context / "Dockerfile", builder="docker", network_host=True,
        build_args={k: v for k, v in args.items() if k in declared},
    )  # fmt: skip


def rebuild_and_emulation(state: LocalState, args: dict[str, str], run_id: str) -> list[dict[str, object]]:
    rows = []
    for name, (context, changed, line) in SERVICES.items():
        for platform in PLATFORMS:
            repo = f"bench/{name.replace('/', '-')}-{platform.split('/')[1]}-{run_id}"
            with tempfile.TemporaryDirectory() as directory:
                work = Path(directory) / "ctx"
                shutil.copytree(context, work)
                prune()
                cold = build(state, repo, work, platform, args)
                with (work / changed).open("a") as handle:
                    handle.write(line)
                prune()
                warm_registry = build(state, repo, work, platform, args)
                with (work / changed).open("a") as handle:
                    handle.write(line)
                warm_local = build(state, repo, work, platform, args)
            rows.append({
                "service": name, "platform": platform, "cold_s": cold.seconds,
                "warm_registry_s": warm_registry.seconds, "warm_local_s": warm_local.seconds,
                "warm_local_pct": round(100 * warm_local.seconds / cold.seconds),
                "warm_registry_pct": round(100 * warm_registry.seconds / cold.seconds),
            })  # fmt: skip
    return rows


def sizes(state: LocalState, args: dict[str, str], run_id: str) -> list[dict[str, object]]:
    rows = []
    for name, context in NAIVE.items():
        source = SERVICES[name][0]
        with tempfile.TemporaryDirectory() as directory:
            work = Path(directory) / "ctx"
            shutil.copytree(source, work)
            naive = build(
                state,
                f"bench/naive-{name.replace('/', '-')}-{run_id}",
                work,
                "linux/amd64",
                args,
                context / "Dockerfile",
            )
        record = ImageRecord.load(state.directory / "runs" / name.replace("/", "-") / "image.json")
        slipway = record.platforms["linux/amd64"].size
        rows.append({
            "service": name, "naive_mb": round(naive.size / 1e6, 1), "slipway_mb": round(slipway / 1e6, 2),
            "saved_mb": round((naive.size - slipway) / 1e6, 1), "saved_pct": round(100 * (naive.size - slipway) / naive.size),
        })  # fmt: skip
    return rows


def stitch_cost(state: LocalState, run_id: str) -> list[dict[str, object]]:
    rows = []
    for name in SERVICES:
        record = ImageRecord.load(state.directory / "runs" / name.replace("/", "-") / "image.json")
        builds = [
            BuildRecord(record.repository, p, i.digest, i.size, 0.0, "bench") for p, i in record.platforms.items()
        ]
        client = DistributionClient()
        started = time.monotonic()
        stitch(client, builds, tag=f"bench-{run_id}", expected_platforms=list(PLATFORMS))
        rows.append({
            "service": name, "platforms": len(builds), "seconds": round(time.monotonic() - started, 3),
            "round_trips": client.round_trips, "bytes_moved": client.bytes_moved,
            "layer_bytes": sum(i.size for i in record.platforms.values()),
        })  # fmt: skip
    return rows


def main() -> None:
    state = LocalState.load(ROOT / ".slipway")
    if not state.services:
        sys.exit("benchmarks need the local platform: run `make demo` first")
    if state.docker_host:
        os.environ["DOCKER_HOST"] = state.docker_host
    args = bases.build_args(bases.load(state.lock_path), state.registry)
    run_id = time.strftime("%Y%m%d%H%M%S")
    emit("stitch", stitch_cost(state, run_id), ("service", "platforms", "seconds", "round_trips", "bytes_moved", "layer_bytes"),
         note="stitch + verify read manifests and configs only: bytes_moved is a few KB against the layers' size")  # fmt: skip
    emit("size", sizes(state, args, run_id), ("service", "naive_mb", "slipway_mb", "saved_mb", "saved_pct"),
         note="linux/amd64, compressed bytes in the registry; target: static binary on scratch <= 2 MB")  # fmt: skip
    rows = rebuild_and_emulation(state, args, run_id)
    emit("rebuild", rows, ("service", "platform", "cold_s", "warm_registry_s", "warm_local_s", "warm_registry_pct", "warm_local_pct"),
         note="one-line source change; target: warm <= 10% of cold")  # fmt: skip
    emulation = []
    for name in SERVICES:
        native, emulated = (next(r for r in rows if r["service"] == name and r["platform"] == p) for p in PLATFORMS)
        emulation.append({"service": name, "native_amd64_s": native["cold_s"], "emulated_arm64_s": emulated["cold_s"],
                          "ratio": round(float(emulated["cold_s"]) / float(native["cold_s"]), 1)})  # fmt: skip
    emit("emulation", emulation, ("service", "native_amd64_s", "emulated_arm64_s", "ratio"),
         note="cold builds; why the cloud pipeline builds arm64 on native ARM_CONTAINER runners")  # fmt: skip


if __name__ == "__main__":
    main()
