"""``slipway local seed``, ``run`` and ``push``: the synthesized pipelines replayed on this machine.

seed: what exists before the first push -- upstream bases at their pull-through-cache paths (offline: busybox and
debootstrap), one git repository per source repository (``examples/repos.toml``), and in the AWS stand-in what the
platform team creates out of band (the build secrets' values) or what owns the deploy targets (function, service).

run: every pipeline of the cloud assembly, as CodePipeline starts it on creation. The curated bases bootstrap the
lock: the base pipelines whose ``FROM`` arguments the lock satisfies run first; what their Stitch actions published
goes into the lock; the app is synthesized again with it; and so on (debian → python → the rest). Then the service
pipelines run on the final assembly. Nothing here builds, stitches or deploys: the actions' buildspecs do.

push: a new commit of one source repository; each pipeline on it starts if its V2 trigger's filters match the push.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import bases
from pipeline.config import PlatformConfig
from pipeline.deployers import workload
from pipeline.deployers.base import DeployRecord
from pipeline.errors import SlipwayError
from pipeline.local import aws, load_balancer, verify
from pipeline.local.replay import assembly, authorize, cdk, codebuild, executor, iam, sources
from pipeline.local.seed import seed_busybox, seed_debian
from pipeline.local.state import STATE_ENV, LocalState
from pipeline.naming import base_repository_name
from pipeline.progress import progress
from pipeline.references import ecr_registry
from pipeline.registry import RepositoryRef, client_for_host
from pipeline.registry.base import ENDPOINT_ENV

ROOT = Path(__file__).resolve().parents[2]
REPOS = ROOT / "examples" / "repos.toml"
STANDIN_SECRET = "local-stand-in-value"
_RECORDING = threading.Lock()


class LocalRunError(SlipwayError):
    pass


@dataclass
class Report:
    actions: list[executor.ActionResult] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    assembly: Path = Path()

    @property
    def failed(self) -> list[executor.ActionResult]:
        return [a for a in self.actions if a.status != "Succeeded"]

    def json(self) -> dict[str, Any]:
        return {"actions": [a.row() for a in self.actions], "deployments": self.deployments}


def _platforms(config: PlatformConfig) -> list[str]:
    services = {p for team in config.teams for s in team.services for p in s.platforms}
    curated = {p for team in config.teams for b in team.base_images for p in b.platforms}
    return sorted(services | curated)


def repositories(config: PlatformConfig) -> dict[str, tuple[str, str]]:
    """``{FullRepositoryId: (branch, folder of this checkout)}`` for the platform's and every service's repository."""
    try:
        folders = tomllib.loads(REPOS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocalRunError(f"{REPOS}: unreadable ({exc})") from exc
    wanted = {config.platform.source_repo: config.platform.branch}
    wanted.update({s.source_repo: s.branch for _, s in config.services()})
    missing = sorted(r for r in wanted if not isinstance(folders.get(r), str))
    if missing:
        raise LocalRunError(f"{REPOS}: no folder for source repository {', '.join(missing)}")
    return {repo: (branch, str(folders[repo])) for repo, branch in wanted.items()}


def aws_environment(state: LocalState) -> dict[str, str]:
    """How Slipway's tools reach the stand-ins: AWS APIs at moto, every ECR registry at the local registry."""
    admin = state.aws_credentials() or {"AccessKeyId": "local", "SecretAccessKey": "local"}
    return {
        "AWS_ENDPOINT_URL": state.aws_endpoint, "AWS_ACCESS_KEY_ID": admin["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"],
        "AWS_DEFAULT_REGION": aws.REGION, "AWS_REGION": aws.REGION, ENDPOINT_ENV: state.registry,
    }  # fmt: skip


def _seed(config: PlatformConfig, state: LocalState) -> dict[str, str]:
    # Upstreams land where ECR's pull-through cache would serve them: under the platform's ECR name, so the seed
    # logs in and pushes exactly as a pipeline job does.
    registry = ecr_registry(config.platform.account, config.platform.region)
    client = client_for_host(registry)
    platforms = _platforms(config)
    work, cache = state.directory / "seed", state.directory / "cache"
    progress("seed: upstream bases at their pull-through-cache paths")
    seed_busybox(client, registry=registry, platforms=platforms, work=work / "busybox", debs=cache)
    debian = seed_debian(client, registry=registry, platforms=platforms, work=work / "debian", cache=cache)
    name = RepositoryRef.parse(debian.repository).name
    lock = {"UPSTREAM_DEBIAN": bases.entry(name, debian.tag, debian.index_digest)}
    bases.save(state.lock_path, lock)
    progress(f"  {'debian (upstream)':<18} {name}:{debian.tag}@{debian.index_digest}")
    progress("seed: source repositories")
    for repository, (branch, folder) in repositories(config).items():
        revision = sources.seed_repository(state.git_root, repository, branch, ROOT, folder)
        progress(f"  {repository:<22} {branch} {revision.commit[:12]} ({folder})")
    progress("seed: secrets' values and deploy targets in the AWS stand-in")
    aws.provision_all(config, state.aws_endpoint, STANDIN_SECRET, state=state.directory)
    return lock


def _context(state: LocalState, approve: bool, config: PlatformConfig | None = None) -> executor.Context:
    """``config``: the deploy targets whose load balancers the jobs reach (the stand-in started for this run)."""
    assembly_dir = state.directory / "cdk.out"

    def secret(reference: str, role: dict[str, str]) -> str:
        keys = {"AccessKeyId": role["AWS_ACCESS_KEY_ID"], "SecretAccessKey": role["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": role["AWS_SESSION_TOKEN"]} if role else None  # fmt: skip
        name, _, key = reference.partition(":")
        value = str(
            aws.client("secretsmanager", state.aws_endpoint, keys).get_secret_value(SecretId=name)["SecretString"]
        )
        return str(json.loads(value)[key]) if key else value

    environment = {
        **aws_environment(state),
        "SLIPWAY_LOCAL_STANDINS": "1", "SLIPWAY_BUILD_NETWORK": "host", "CODEBUILD_BUILD_SUCCEEDING": "1",
        # Where the stand-ins keep what a job's kubectl reaches (the cluster stand-in on the job's PATH).
        STATE_ENV: str(state.directory),
    }  # fmt: skip
    if state.docker_host:
        environment["DOCKER_HOST"] = state.docker_host
    if state.aws_credentials():  # AWS's own pullers (Lambda's service, the ECS agent) in the local checks
        account = aws.client("sts", state.aws_endpoint).get_caller_identity()["Account"]
        registry = ecr_registry(account, aws.REGION)
        environment.update(verify.runtime_login(state.directory / "runtime-docker", f"{registry}/runtime"))
    # The runner's network: how this machine reaches PyPI (its proxy CA, its mirrors), as CodeBuild's has its own.
    environment.update({k: v for k, v in os.environ.items() if k.startswith("PIP_") or k == "SSL_CERT_FILE"})
    if config is not None and (fronted := aws.load_balanced(config)):
        # The services' load balancers (the ECS health URLs), reached through the job's HTTPS proxy.
        probe = aws.health_probe(state.aws_endpoint, config.platform.account)
        _, reach = load_balancer.start(state.directory / "load-balancers", fronted, probe,
                                       extra_ca=os.environ.get("SSL_CERT_FILE", ""))  # fmt: skip
        environment.update(reach)

    def report(result: executor.ActionResult) -> None:
        progress(
            f"  {result.pipeline:<36} {result.stage:<14} {result.action:<14} {result.status:<9} {result.seconds:>6.1f}s"
        )

    return executor.Context(
        git_root=state.git_root, runs=state.directory / "executions",
        runner_image=codebuild.runner_image(state.directory), environment=environment, secret=secret,
        assume=iam.assumer(aws.client("sts", state.aws_endpoint), lambda: authorize.current(assembly_dir).trusts)
        if state.aws_credentials() else lambda role: {},
        authorize=lambda project, variables: authorize.deploy_problems(
            authorize.current(assembly_dir), project, variables
        ),
        approve=approve, report=report,
    )  # fmt: skip


def _deploy_stacks(outdir: Path, state: LocalState) -> None:
    """`cdk deploy`'s part the replay depends on: file assets where the templates say, the roles and policies."""
    cdk.publish_assets(outdir, aws.client("s3", state.aws_endpoint))
    if state.aws_credentials():
        identity = aws.client("sts", state.aws_endpoint).get_caller_identity()
        iam.apply(outdir, lambda account: aws.client_in("iam", state.aws_endpoint, account, identity["Account"]),
                  identity["Arn"])  # fmt: skip


def _base_pipelines(config: PlatformConfig) -> dict[str, tuple[str, set[str], str]]:
    """``{pipeline name: (lock key, build arguments its FROM lines need, repository)}`` for every curated base."""
    return {
        f"slipway-{team.name}-base-{base.name}": (
            base.lock_key, bases.required_args(ROOT / base.context / base.dockerfile),
            base_repository_name(team.name, base.name),
        )
        for team in config.teams for base in team.base_images
    }  # fmt: skip


def _history(state: LocalState, config: PlatformConfig) -> list[str]:
    """The platform repository's commits, newest first (what `slipway bases update` reads from its checkout)."""
    return sources.history(state.git_root, config.platform.source_repo, config.platform.branch)


def _run(config: PlatformConfig, state: LocalState, *, approve: bool = False, selection: str = "") -> Report:
    if selection:
        config.find_service(selection)  # an unknown TEAM/SERVICE is bad input, named before anything runs
    lock = bases.load(state.lock_path)
    if "UPSTREAM_DEBIAN" not in lock:
        raise LocalRunError(f"{state.lock_path}: no upstream bases yet; run `slipway local seed` first")
    registry = ecr_registry(config.platform.account, config.platform.region)
    # Idempotent: a restarted AWS stand-in has lost what `seed` put there.
    aws.provision_all(config, state.aws_endpoint, STANDIN_SECRET, state=state.directory)
    context = _context(state, approve, config)
    report = Report(assembly=state.directory / "cdk.out")
    remaining = _base_pipelines(config)
    while True:
        pipelines = cdk.synthesize(config, state.lock_path, report.assembly)
        _deploy_stacks(report.assembly, state)
        ready = [p for p in pipelines if p.name in remaining and remaining[p.name][1] <= set(lock)]
        if not ready:
            break
        current = [p for p in ready if _up_to_date(p, state) and remaining[p.name][0] in lock]
        for pipeline in current:
            progress(f"{pipeline.name}: up to date (its last run succeeded on this commit)")
            remaining.pop(pipeline.name)
        # Independent pipelines run side by side, as CodePipeline runs them.
        executed = _execute_all([p for p in ready if p not in current], context, state, report)
        if not all(e.succeeded for e in executed):
            return report
        # What the base pipelines published, found as `slipway bases update` finds it: the newest release tag of each
        # base in the platform repository's history (never the jobs' own records).
        wave = {remaining[e.pipeline.name][0]: remaining.pop(e.pipeline.name)[2] for e in executed}
        found = bases.published(client_for_host(registry), registry, wave, _history(state, config))
        if missing := sorted(set(wave) - set(found)):
            raise LocalRunError(f"bases {', '.join(missing)}: their pipelines succeeded but published no release tag")
        lock.update(found)
        bases.save(state.lock_path, lock)
    if remaining:
        raise LocalRunError(f"base pipelines {', '.join(remaining)}: their FROM build arguments can never be satisfied")
    services = []
    for pipeline in pipelines:
        if pipeline.name in _base_pipelines(config) or (selection and pipeline.name != _pipeline_name(selection)):
            continue
        if not selection and _up_to_date(pipeline, state):
            progress(f"{pipeline.name}: up to date (its last run succeeded on this commit)")
            continue
        services.append(pipeline)
    _execute_all(services, context, state, report)
    return report


def _execute_all(
    pipelines: list[assembly.Pipeline], context: executor.Context, state: LocalState, report: Report
) -> list[executor.Execution]:
    if not pipelines:
        return []
    with ThreadPoolExecutor(max_workers=len(pipelines)) as pool:
        return list(pool.map(lambda p: _execute(p, context, state, report), pipelines))


def _last_runs(state: LocalState) -> dict[str, dict[str, str]]:
    path = state.directory / "executions" / "last.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _up_to_date(pipeline: assembly.Pipeline, state: LocalState) -> bool:
    """Whether the last execution succeeded on the branch's head: CodePipeline starts a pipeline when it is created
    and on pushes (an updated definition alone starts nothing), so an unchanged commit has nothing to run."""
    last = _last_runs(state).get(pipeline.name, {})
    return last.get("commit") == sources.head(state.git_root, pipeline.repository, pipeline.branch).commit


def _remember(execution: executor.Execution, state: LocalState) -> None:
    runs = _last_runs(state)
    runs[execution.pipeline.name] = {"commit": execution.revision.commit}
    path = state.directory / "executions" / "last.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=2, sort_keys=True))


def _pipeline_name(selection: str) -> str:
    return "slipway-" + selection.replace("/", "-")


def _execute(
    pipeline: assembly.Pipeline, context: executor.Context, state: LocalState, report: Report
) -> executor.Execution:
    revision = sources.head(state.git_root, pipeline.repository, pipeline.branch)
    progress(f"{pipeline.name}: {pipeline.repository}@{pipeline.branch} {revision.commit[:12]}")
    execution = executor.execute(pipeline, revision, context)
    with _RECORDING:  # pipelines of one wave finish on their own threads
        report.actions += execution.results
        report.deployments += _deployments(pipeline, execution, state)
        if execution.succeeded:
            _remember(execution, state)
    return execution


def _deployments(pipeline: assembly.Pipeline, execution: executor.Execution, state: LocalState) -> list[dict[str, Any]]:
    """What the deploy actions wrote, kept under ``runs/<team>-<service>/`` next to image.json."""
    kept = state.directory / "runs" / pipeline.name.removeprefix("slipway-")
    found = []
    for name, directory in execution.artifacts.items():
        if name == "image":
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy2(directory / "image.json", kept / "image.json")
        for path in sorted(directory.glob("deployed-*.json")) if name.startswith("deployed_") else []:
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, kept / path.name)
            record = DeployRecord.load(path)
            verified = asdict(record.verified) if record.verified else None
            account = record.account or authorize.current(state.directory / "cdk.out").account
            found.append({"service": pipeline.name.removeprefix("slipway-"), "environment": record.environment,
                          "account": account, "target": record.target, "image": record.image,
                          "verified": verified})  # fmt: skip
    rendered = list(execution.directory.glob("*/*/src/deployment.json"))
    for path in rendered:
        shutil.copy2(path, kept / "deployment.json")
    return found


def _fire_schedules(state: LocalState, *, approve: bool = False, only: set[str] | None = None) -> Report:
    """What EventBridge does at the scheduled time: start each pipeline that has a schedule (the weekly base rebuild)
    on its branch's head -- whether or not that commit was built before. ``only``: those pipeline names."""
    report = Report(assembly=state.directory / "cdk.out")
    scheduled = [p for p in assembly.load(report.assembly) if p.schedules and (only is None or p.name in only)]
    progress(f"schedules fired: {', '.join(p.name for p in scheduled) or 'none'}")
    _deploy_stacks(report.assembly, state)  # a restarted AWS stand-in has lost the assets and roles
    _execute_all(scheduled, _context(state, approve), state, report)
    return report


def _push(config: PlatformConfig, state: LocalState, repository: str, *, approve: bool = False) -> Report:
    """Commit the folder's current content to ``repository`` and start each pipeline whose trigger matches."""
    known = repositories(config)
    if repository not in known:
        raise LocalRunError(f"source repository {repository!r}: not in platform.toml (known: {', '.join(known)})")
    branch, folder = known[repository]
    before = sources.head(state.git_root, repository, branch).commit
    revision = sources.seed_repository(state.git_root, repository, branch, ROOT, folder)
    report = Report(assembly=state.directory / "cdk.out")
    if revision.commit == before:
        progress(f"{repository}: nothing to push ({branch} is at {before[:12]})")
        return report
    files = sources.changed_files(state.git_root, revision, before)
    _deploy_stacks(report.assembly, state)  # a restarted AWS stand-in has lost the assets and roles
    context = _context(state, approve, config)
    for pipeline in assembly.load(report.assembly):
        if pipeline.repository != repository:
            continue
        if not sources.triggered(pipeline, branch, files):
            progress(f"{pipeline.name}: not started (no changed file matches its trigger: {', '.join(files)})")
            continue
        _execute(pipeline, context, state, report)
    return report


def record_timing(state: LocalState, seconds: float) -> str:
    """Keep run times; describe this run against the first one (the registry cache at work)."""
    path = state.directory / "runs" / "history.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({"seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=2))
    if len(history) == 1:
        return f"run took {seconds:.1f}s (first run: cold cache)"
    first = history[0]["seconds"]
    return f"run took {seconds:.1f}s vs {first:.1f}s the first time ({first / max(seconds, 0.1):.1f}x faster, registry cache reused)"


@contextlib.contextmanager
def _acting_for(state: LocalState) -> Iterator[None]:
    """This process reaches the stand-ins as a job does (AWS at moto as its admin, ECR at the local registry; the
    builder, and the runtime's registry login for what the stand-ins run), and the environment is given back
    afterwards, the load balancers stopped: nothing leaks into whatever runs next in the process."""
    acting = aws_environment(state)
    if state.docker_host:
        acting["DOCKER_HOST"] = state.docker_host
    acting[verify.RUNTIME_DOCKER_CONFIG] = str(state.directory / "runtime-docker")
    try:
        with workload.acting_as(acting):
            yield
    finally:
        load_balancer.stop_all()


def seed(config: PlatformConfig, state: LocalState) -> dict[str, str]:
    with _acting_for(state):
        return _seed(config, state)


def run(config: PlatformConfig, state: LocalState, *, approve: bool = False, selection: str = "") -> Report:
    with _acting_for(state):
        return _run(config, state, approve=approve, selection=selection)


def fire_schedules(state: LocalState, *, approve: bool = False, only: set[str] | None = None) -> Report:
    with _acting_for(state):
        return _fire_schedules(state, approve=approve, only=only)


def push(config: PlatformConfig, state: LocalState, repository: str, *, approve: bool = False) -> Report:
    with _acting_for(state):
        return _push(config, state, repository, approve=approve)
