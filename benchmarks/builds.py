"""Build benchmarks on the local platform (`make demo` first): a one-line change rebuilt on a fresh builder,
reproducibility, native vs emulated, image size naive vs Slipway, and stitch cost. Prints tables; writes JSON under
benchmarks/results/.

All builds go through the one builder (BuildKit via buildx, `pipeline.builders.buildx`), as CodeBuild runs them.
Cold: nothing in the builder and a fresh repository (no registry cache). Fresh runner: the builder emptied again
(BuildKit's cache pruned, every image removed), only the registry cache the cold build exported (mode=max, every
stage) to reuse -- what a new CodeBuild job has. Warm, local: BuildKit's local cache kept (a developer's machine).
Reproducible: a second cold build of the same commit from an emptied builder, with no cache imported, stitched into
an index whose digest must equal the first's.

Each step acts as the role the pipeline would use, through the same registry gate: builds as the service's build
role (temporary credentials from the AWS stand-in, as CodeBuild hands a job), stitches as its Stitch role, into the
service's own repository (builds push by digest; stitches tag ``bench-<run>``, never a release tag). The stand-in's
admin is refused there, as any principal but a build role is by the repository policy.

``--smoke`` (the end-to-end suite runs it, so the benchmark cannot silently rot): one service, one platform, the
stitch cost, results written to a temporary directory instead of benchmarks/results/.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import emit  # noqa: E402
from pipeline import assembly, bases  # noqa: E402
from pipeline.build import build_image  # noqa: E402
from pipeline.builders.buildx import forget_everything  # noqa: E402
from pipeline.deployers.workload import acting_as  # noqa: E402
from pipeline.local import aws, transfers  # noqa: E402
from pipeline.local.replay import authorize, iam  # noqa: E402
from pipeline.local.runner import aws_environment  # noqa: E402
from pipeline.local.state import LocalState  # noqa: E402
from pipeline.records import BuildRecord, ImageRecord  # noqa: E402
from pipeline.registry import RepositoryRef, client_for_host  # noqa: E402
from pipeline.reproducible import source_date_epoch  # noqa: E402
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
TARGET_RATIO = 0.10
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ECR = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


def role_of(state: LocalState, service: str, action: str) -> dict[str, str]:
    """The environment of ``action``'s CodeBuild role in ``service``'s pipeline (``Build-amd64``, ``Stitch``): what a
    job of that action acts as."""
    outdir = state.directory / "cdk.out"
    pipeline = next(p for p in assembly.load(outdir) if p.name == f"slipway-{service.replace('/', '-')}")
    stage_action = next(a for _, a in pipeline.actions() if a.name == action)
    project = pipeline.projects[str(stage_action.configuration["ProjectName"])]
    assume = iam.assumer(aws.client("sts", state.aws_endpoint), lambda: authorize.current(outdir).trusts)
    return assume(project.role)


def build(
    state: LocalState,
    repo: str,
    context: Path,
    platform: str,
    args: dict[str, str],
    dockerfile: Path | None = None,
    *,
    epoch: int = 0,
    use_cache: bool = True,
) -> BuildRecord:
    declared = bases.declared_args(dockerfile or context / "Dockerfile")
    with acting_as(role_of(state, repo, f"Build-{platform.split('/')[1]}")):
        return build_image(
            repository=f"{ECR}/{repo}", platform=platform, context=context,
            dockerfile=dockerfile or context / "Dockerfile", builder="buildx", network_host=True,
            build_args={k: v for k, v in args.items() if k in declared}, source_date_epoch=epoch, use_cache=use_cache,
        )  # fmt: skip


def stitched(state: LocalState, service: str, builds: list[BuildRecord], tag: str, **options: object) -> Any:
    """Stitch as the service's Stitch role."""
    with acting_as(role_of(state, service, "Stitch")):
        client = client_for_host(ECR)
        return client, stitch(client, builds, tag=tag, **options)  # type: ignore[arg-type]


def rebuild_and_emulation(
    state: LocalState, args: dict[str, str], run_id: str, services: dict[str, Any] = SERVICES,
    platforms: tuple[str, ...] = PLATFORMS,
) -> list[dict[str, object]]:  # fmt: skip
    rows = []
    for name, (context, changed, line) in services.items():
        epoch = source_date_epoch(context)
        for platform in platforms:
            repo = name
            with tempfile.TemporaryDirectory() as directory:
                work = Path(directory) / "ctx"
                shutil.copytree(context, work)
                forget_everything()
                # Cold: nothing in the builder, no registry cache imported (the cache it exports is the one the
                # fresh runner then has, as a first push leaves it for the next).
                cold = build(state, repo, work, platform, args, epoch=epoch, use_cache=False)
                with (work / changed).open("a") as handle:
                    handle.write(line)
                forget_everything()
                log = transfers.log_path(state.directory)
                start = transfers.mark(log)
                fresh_runner = build(state, repo, work, platform, args, epoch=epoch)
                moved = transfers.since(log, start)
                with (work / changed).open("a") as handle:
                    handle.write(line)
                warm_local = build(state, repo, work, platform, args, epoch=epoch)
            rows.append({
                "service": name, "platform": platform, "cold_s": cold.seconds,
                "warm_registry_s": fresh_runner.seconds, "warm_local_s": warm_local.seconds,
                "warm_local_pct": round(100 * warm_local.seconds / cold.seconds),
                "warm_registry_pct": round(100 * fresh_runner.seconds / cold.seconds),
                "warm_registry_cached_steps": fresh_runner.cache_hits,
                "fresh_runner_bytes_moved": moved.total, "fresh_runner_bytes_pulled": moved.pulled,
                "fresh_runner_bytes_pushed": moved.pushed,
                "changed_layer_bytes": changed_layer_bytes(state, repo, cold, fresh_runner),
            })  # fmt: skip
    return rows


def changed_layer_bytes(state: LocalState, repo: str, before: BuildRecord, after: BuildRecord) -> int:
    """Compressed bytes of the layers ``after`` has and ``before`` has not: what a one-line change must move at
    least (its layer, up once; nothing else need come down when the rest is in the registry already)."""
    with acting_as(role_of(state, repo, f"Build-{after.platform.split('/')[1]}")):
        client = client_for_host(ECR)
        ref = RepositoryRef.parse(f"{ECR}/{repo}")
        old, new = (client.get_manifest(ref, r.digest, (OCI_MANIFEST,)).json() for r in (before, after))
    had = {layer["digest"] for layer in old["layers"]}
    return sum(int(layer["size"]) for layer in new["layers"] if layer["digest"] not in had)


def reproducibility(state: LocalState, args: dict[str, str], run_id: str) -> list[dict[str, object]]:
    """Two cold builds of one commit, each from an emptied builder with no cache imported: same index digest?"""
    rows = []
    for name, (context, _, _) in SERVICES.items():
        epoch = source_date_epoch(context)
        indexes = []
        for attempt in (1, 2):
            builds = []
            for platform in PLATFORMS:
                forget_everything()
                builds.append(build(state, name, context, platform, args, epoch=epoch, use_cache=False))
            _, result = stitched(state, name, builds, f"bench-{run_id}-try-{attempt}", commit=f"bench-{run_id}")
            record = result.record
            indexes.append(record.index_digest)
        rows.append({"service": name, "first_index": indexes[0], "second_index": indexes[1],
                     "reproducible": indexes[0] == indexes[1]})  # fmt: skip
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
                name,  # pushed by digest into the service's own repository, as its build role may
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


def stitch_cost(state: LocalState, run_id: str, services: Any = SERVICES) -> list[dict[str, object]]:
    rows = []
    for name in services:
        record = ImageRecord.load(state.directory / "runs" / name.replace("/", "-") / "image.json")
        builds = [
            BuildRecord(record.repository, p, i.digest, i.size, 0.0, "bench") for p, i in record.platforms.items()
        ]
        started = time.monotonic()
        client, _ = stitched(state, name, builds, f"bench-{run_id}", expected_platforms=list(PLATFORMS))
        rows.append({
            "service": name, "platforms": len(builds), "seconds": round(time.monotonic() - started, 3),
            "round_trips": client.round_trips, "bytes_moved": client.bytes_moved,
            "layer_bytes": sum(i.size for i in record.platforms.values()),
        })  # fmt: skip
    return rows


def smoke(state: LocalState) -> list[dict[str, object]]:
    """The smallest run of every code path above: one service, one platform (amd64, native), the stitch cost."""
    args = bases.build_args(bases.load(state.lock_path), state.registry)
    run_id = time.strftime("%Y%m%d%H%M%S")
    static = {"search/indexer": SERVICES["search/indexer"]}
    rows = rebuild_and_emulation(state, args, run_id, static, ("linux/amd64",))
    emit("stitch", stitch_cost(state, run_id, static), ("service", "platforms", "seconds", "bytes_moved"))
    emit("rebuild", rows, ("service", "platform", "cold_s", "warm_registry_s", "warm_local_s",
                           "fresh_runner_bytes_moved", "changed_layer_bytes"))  # fmt: skip
    return rows


def main() -> None:
    # --state DIR: another local platform's state (the end-to-end suite's); default: `make demo`'s.
    given = sys.argv[sys.argv.index("--state") + 1] if "--state" in sys.argv[1:-1] else ""
    state = LocalState.load(Path(given) if given else ROOT / ".slipway")
    if not state.services:
        sys.exit("benchmarks need the local platform: run `make demo` first")
    if state.docker_host:
        os.environ["DOCKER_HOST"] = state.docker_host
    # As the replay's jobs: images under the platform's ECR name, reached at the local registry; each step then
    # acts as its pipeline role (role_of).
    os.environ.update(aws_environment(state))
    if "--smoke" in sys.argv[1:]:
        os.environ.setdefault("SLIPWAY_BENCH_RESULTS", tempfile.mkdtemp(prefix="slipway-bench-"))
        smoke(state)
        return
    args = bases.build_args(bases.load(state.lock_path), state.registry)
    run_id = time.strftime("%Y%m%d%H%M%S")
    emit("stitch", stitch_cost(state, run_id), ("service", "platforms", "seconds", "round_trips", "bytes_moved", "layer_bytes"),
         note="stitch + verify read manifests and configs only: bytes_moved is a few KB against the layers' size")  # fmt: skip
    emit("size", sizes(state, args, run_id), ("service", "naive_mb", "slipway_mb", "saved_mb", "saved_pct"),
         note="linux/amd64, compressed bytes in the registry; target: static binary on scratch <= 2 MB")  # fmt: skip
    rows = rebuild_and_emulation(state, args, run_id)
    ratio = max(float(r["warm_registry_s"]) / float(r["cold_s"]) for r in rows)
    bytes_met = all(int(r["fresh_runner_bytes_moved"]) <= 2 * int(r["changed_layer_bytes"]) + 1_000_000 for r in rows)
    emit("rebuild", rows, ("service", "platform", "cold_s", "warm_registry_s", "warm_local_s", "warm_registry_pct",
                           "warm_local_pct", "fresh_runner_bytes_moved", "changed_layer_bytes"),
         note=f"one-line source change; warm_registry = a fresh runner (emptied builder, registry cache only); "
              f"target: <= {TARGET_RATIO:.0%} of cold; bytes: what the fresh runner's build pulled from and pushed to "
              "the registry (the gate's and the S3 stand-in's transfer log), target <= 2 x changed_layer_bytes + 1 MB",
         summary={"fresh_runner_rebuild_ratio": round(ratio, 3), "fresh_runner_bytes_within_target": bytes_met})  # fmt: skip
    repro = reproducibility(state, args, run_id)
    emit("reproducible", repro, ("service", "first_index", "second_index", "reproducible"),
         note="two cold builds of one commit (builder emptied, no cache imported) stitched into one index each",
         summary={"reproducible": all(bool(r["reproducible"]) for r in repro)})  # fmt: skip
    emulation = []
    for name in SERVICES:
        native, emulated = (next(r for r in rows if r["service"] == name and r["platform"] == p) for p in PLATFORMS)
        emulation.append({"service": name, "native_amd64_s": native["cold_s"], "emulated_arm64_s": emulated["cold_s"],
                          "ratio": round(float(emulated["cold_s"]) / float(native["cold_s"]), 1)})  # fmt: skip
    emit("emulation", emulation, ("service", "native_amd64_s", "emulated_arm64_s", "ratio"),
         note="cold builds; why the cloud pipeline builds arm64 on native ARM_CONTAINER runners")  # fmt: skip


if __name__ == "__main__":
    main()
