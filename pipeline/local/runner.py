"""``slipway local seed``, ``run`` and ``push``: the synthesized pipelines replayed on this machine.

seed: what exists before the first push -- upstream bases at their pull-through-cache paths (offline: busybox and
debootstrap), one git repository per source repository (``examples/repos.toml``), and in the AWS stand-in what the
platform team creates out of band (the build secrets' values) or what owns the deploy targets (function, service).
``--republish-upstream``: Docker Hub publishing an update under the same upstream tags.

run: the platform team's one manual step (``cdk deploy --all`` after ``cdk bootstrap``: the app synthesized and
deployed by the CloudFormation stand-in through the bootstrap deploy roles, the path the platform pipeline's Deploy
job takes too), then every pipeline as CodePipeline starts it on creation -- the platform pipeline first -- and then
whatever the jobs start through CodePipeline's API: a base's publication to the lock store starts what is registered
as building on it, the platform's Deploy starts each pipeline whose definition it changed, until nothing is left.
Nothing here builds, stitches, publishes or deploys: the actions' buildspecs do; and after the first deploy only the
platform pipeline's Deploy job synthesizes and changes the deployed definitions.

run --scheduled: what EventBridge does at the scheduled time (the platform pipeline's weekly upstream refresh), and
the wave it starts. push: a new commit of one source repository; each pipeline on it starts if its V2 trigger's
filters match the push, and the wave it starts follows.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline import assembly, bases, lock_store, runner_image
from pipeline.config import PlatformConfig
from pipeline.deployers import workload
from pipeline.errors import SlipwayError
from pipeline.local import aws, load_balancer, platform_repo, traffic, verify
from pipeline.local.cloudformation_standin import SERVICE_PRINCIPAL_ENV, StandInCloudFormation
from pipeline.local.pull_through import UPSTREAM
from pipeline.local.replay import authorize, cdk, codebuild, conditions, executor, iam, notifications, sources, starts
from pipeline.local.replay.report import Report, deployments
from pipeline.local.seed import republish_upstreams, seed_upstreams
from pipeline.local.state import STATE_ENV, LocalState
from pipeline.progress import progress
from pipeline.references import ecr_registry
from pipeline.registry import RepositoryRef, client_for_host
from pipeline.registry.base import ENDPOINT_ENV, REGIONS_ENV

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_PIPELINE = "slipway-platform"
REPOS = ROOT / "examples" / "repos.toml"
STANDIN_SECRET = "local-stand-in-value"
_RECORDING = threading.Lock()


class LocalRunError(SlipwayError):
    pass


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
        REGIONS_ENV: state.regions,  # empty before `up` started one: every region at the registry
    }  # fmt: skip


def _seed(config: PlatformConfig, state: LocalState, *, republish: bool = False) -> dict[str, str]:
    # Upstreams land in the upstream stand-in behind the platform's ECR name (the seed logs in and pushes as a job
    # does, as the stand-in's admin): the pull-through cache path fills only when a pull by tag imports them.
    registry = ecr_registry(config.platform.account, config.platform.region)
    client = client_for_host(registry)
    platforms = _platforms(config)
    work, cache = state.directory / "seed", state.directory / "cache"
    if republish:
        progress("seed: the upstream registries publish an update under every upstream tag")
        upstreams = republish_upstreams(client, registry=registry, platforms=platforms, work=work, cache=cache)
    else:
        progress("seed: upstream bases in the upstream stand-in (a pull by tag through the cache imports them)")
        upstreams = seed_upstreams(client, registry=registry, platforms=platforms, work=work, cache=cache)
    # Entries name the cache path: what the upstream serves there once a pull by tag has imported it.
    lock = {key: bases.entry(RepositoryRef.parse(r.repository).name.removeprefix(f"{UPSTREAM}/"), tag, r.index_digest)
            for key, (r, tag) in upstreams.items()}  # fmt: skip
    bases.save(state.lock_path, {**bases.load(state.lock_path), **lock})
    for key, value in sorted(lock.items()):
        progress(f"  {key:<18} {value}")
    if republish:
        return lock
    progress("seed: source repositories")
    for repository, (branch, folder) in repositories(config).items():
        revision = sources.seed_repository(state.git_root, repository, branch, ROOT, folder,
                                           overlay=platform_repo.commits(config, state, repository))  # fmt: skip
        progress(f"  {repository:<22} {branch} {revision.commit[:12]} ({folder})")
    progress("seed: secrets' values and deploy targets in the AWS stand-in")
    aws.provision_all(config, state.aws_endpoint, STANDIN_SECRET, state=state.directory)
    return lock


def _context(state: LocalState, approve: bool, config: PlatformConfig | None = None) -> executor.Context:
    """``config``: the deploy targets whose load balancers and callers the stand-ins play (started for this run)."""
    assembly_dir = state.directory / "cdk.out"

    def secret(reference: str, role: dict[str, str]) -> str:
        name, _, key = reference.partition(":")
        secrets = aws.client("secretsmanager", state.aws_endpoint, iam.keys(role))
        value = str(secrets.get_secret_value(SecretId=name)["SecretString"])
        return str(json.loads(value)[key]) if key else value

    environment = {
        **aws_environment(state),
        "SLIPWAY_LOCAL_STANDINS": "1", "SLIPWAY_BUILD_NETWORK": "host", "CODEBUILD_BUILD_SUCCEEDING": "1",
        # Where the stand-ins keep what a job's kubectl reaches (the cluster stand-in on the job's PATH).
        STATE_ENV: str(state.directory),
    }  # fmt: skip
    if state.docker_host:
        environment["DOCKER_HOST"] = state.docker_host
    if state.aws_credentials():
        admin = aws.client("sts", state.aws_endpoint).get_caller_identity()
        # Who plays CodeBuild for the roles the platform's Deploy job creates.
        environment[SERVICE_PRINCIPAL_ENV] = admin["Arn"]
        # AWS's own pullers (Lambda's service, the ECS agent) in the local checks.
        for region in [r.split("=", 1)[0] for r in state.regions.split(",") if r] or [aws.REGION]:  # each registry
            runtime = f"{ecr_registry(admin['Account'], region)}/runtime"
            environment.update(verify.runtime_login(state.directory / "runtime-docker", runtime))
    # This machine's CA bundle (a TLS-intercepting proxy), mounted into the jobs: what the runner's host would trust.
    environment.update({k: v for k, v in os.environ.items() if k == "SSL_CERT_FILE"})
    if config is not None:  # the shifting aliases' callers, and CloudWatch judging their alarms (#29)
        traffic.start(state.aws_endpoint, config)
    if config is not None and (fronted := aws.load_balanced(config)):  # the ECS health URLs, through the job's proxy
        probe = aws.health_probe(state.aws_endpoint, config.platform.account)
        _, reach = load_balancer.start(state.directory / "load-balancers", fronted, probe,
                                       extra_ca=os.environ.get("SSL_CERT_FILE", ""))  # fmt: skip
        environment.update(reach)

    def report(result: executor.ActionResult) -> None:
        progress(
            f"  {result.pipeline:<36} {result.stage:<14} {result.action:<14} {result.status:<9} {result.seconds:>6.1f}s"
        )

    sts, trusts = aws.client("sts", state.aws_endpoint), lambda: authorize.current(assembly_dir).trusts
    assume = functools.partial(iam.assumer, sts, trusts, enforced=bool(state.aws_credentials()))
    return executor.Context(
        git_root=state.git_root, runs=state.directory / "executions", environment=environment, secret=secret,
        assume=assume(iam.CODEBUILD), enter=conditions.evaluator(state.aws_endpoint, assume(iam.CODEPIPELINE)),
        authorize=lambda project, variables: authorize.deploy_problems(authorize.current(assembly_dir), project, variables),
        approve=approve, report=report, mounts=codebuild.host_mounts(state.docker_host),
        **notifications.telling(state.aws_endpoint, assembly_dir, aws.REGION),
    )  # fmt: skip


def _deploy_stacks(outdir: Path, state: LocalState, config: PlatformConfig) -> None:
    """The platform team's `cdk deploy --all` from a laptop (after `cdk bootstrap` of every place it deploys to):
    the one deploy path the platform pipeline's Deploy job takes too -- the CloudFormation stand-in, acting through
    the bootstrap deploy roles. The pipelines it creates are started by that creation; :func:`_run` runs them itself
    (platform first, each unless it is up to date), so those starts are not followed again. Also what restores a
    restarted AWS stand-in (in-memory): the deployed assembly deployed again."""
    aws.bootstrap(config, state.aws_endpoint)
    principal = aws.client("sts", state.aws_endpoint).get_caller_identity()["Arn"] if state.aws_credentials() else ""
    cloudformation = StandInCloudFormation(
        state.directory, state.aws_endpoint, principal, config.platform.account, enforce_iam=bool(principal)
    )
    cloudformation.deploy(outdir)
    client = aws.client("codepipeline", state.aws_endpoint)
    starts.pending(assembly.load(cloudformation.location), client, state.directory / "executions" / "started.json")


def _run(config: PlatformConfig, state: LocalState, *, approve: bool = False, selection: str = "") -> Report:
    if selection:
        config.find_service(selection)  # an unknown TEAM/SERVICE is bad input, named before anything runs
    if "UPSTREAM_DEBIAN" not in bases.load(state.lock_path):
        raise LocalRunError(f"{state.lock_path}: no upstream bases yet; run `slipway local seed` first")
    # Idempotent: a restarted AWS stand-in has lost what `seed` put there.
    aws.provision_all(config, state.aws_endpoint, STANDIN_SECRET, state=state.directory)
    context = _context(state, approve, config)
    report = Report(assembly=state.directory / "cdk.out")
    # The platform team's one manual step, `cdk deploy --all`, the first time only: after it, a platform change
    # reaches the deployed stacks through the platform pipeline's Deploy job, as in the cloud, and what the bases
    # publish reaches the jobs through the lock store -- never through a synthesis here.
    if (report.assembly / "manifest.json").exists():
        progress(f"deployed already: a platform change deploys through its pipeline (slipway local push "
                 f"{config.platform.source_repo})")  # fmt: skip
        _deploy_stacks(report.assembly, state, config)  # a restarted AWS stand-in has lost the assets and roles
        pipelines = assembly.load(report.assembly)
    else:
        if not set(runner_image.TARGETS) <= set(bases.load(state.lock_path)):
            # No runner yet: `cdk deploy --all` synthesizes the Registry stack alone (infra.platform_app.build_app).
            cdk.synthesize(config, state.directory / "synth", lock=platform_repo.lock(state))
            _deploy_stacks(state.directory / "synth", state, config)
            branch, folder = repositories(config)[config.platform.source_repo]
            platform_repo.bootstrap_runner(config, state, branch, folder)
        pipelines = cdk.synthesize(config, state.directory / "synth", lock=platform_repo.lock(state))
        _deploy_stacks(state.directory / "synth", state, config)
    if selection:
        _execute_all([p for p in pipelines if p.name == _pipeline_name(selection)], context, state, report)
        _follow(context, state, report)
        return report
    # CodePipeline starts each pipeline when it is created; `cdk deploy --all` creates the platform's stack (its
    # upstream refresh) before the stacks of the pipelines that build on bases. A pipeline whose bases are not
    # published yet fails at Build, registered: the publication starts it again (what _follow runs).
    for group in _creation_order(pipelines):
        started = [p for p in group if not _up_to_date(p, state)]
        for pipeline in group:
            if pipeline not in started:
                progress(f"{pipeline.name}: up to date (its last run succeeded on this commit)")
        _execute_all(started, context, state, report)
        _follow(context, state, report)
    return report


def _creation_order(pipelines: list[assembly.Pipeline]) -> list[list[assembly.Pipeline]]:
    platform = [p for p in pipelines if p.name == PLATFORM_PIPELINE]
    return [platform, [p for p in pipelines if p.name != PLATFORM_PIPELINE]]


def lock_store_of(config: PlatformConfig, state: LocalState) -> lock_store.LockStore:
    """The platform's lock store in the AWS stand-in, read as the platform team's administrator."""
    return lock_store.LockStore(aws.client("ssm", state.aws_endpoint), lock_store.lock_path(config.platform.name))


def _mirror_lock(config: PlatformConfig, state: LocalState) -> None:
    """The lock store as it stands after a run, in ``.slipway/lock.json``: what `slipway lint` in this checkout
    resolves ``FROM ${BASE_…}`` with (a view: jobs read the store itself)."""
    bases.save(state.lock_path, {**bases.load(state.lock_path), **lock_store_of(config, state).entries()})


def _follow(context: executor.Context, state: LocalState, report: Report) -> None:
    """Run what the jobs started through CodePipeline's API (a base's publication, the platform's refresh), and what
    those runs start in turn, until nothing is left: the wave of a new base through everything built on it."""
    client = aws.client("codepipeline", state.aws_endpoint)
    # The deployed definitions read again each time: the platform's Deploy job may have changed them.
    while started := starts.pending(
        assembly.load(report.assembly), client, state.directory / "executions" / "started.json"
    ):
        progress(f"started through CodePipeline: {', '.join(p.name for p in started)}")
        _execute_all(started, context, state, report)


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
        report.actions += execution.results + (execution.rollback.results if execution.rollback else [])
        report.latest[pipeline.name] = execution.succeeded
        report.deployments += deployments(pipeline, execution, state.directory)
        if execution.succeeded:
            _remember(execution, state)
    return execution


def _fire_schedules(
    config: PlatformConfig, state: LocalState, *, approve: bool = False, only: set[str] | None = None
) -> Report:
    """What EventBridge does at the scheduled time: start each pipeline that has a schedule (the platform's weekly
    upstream refresh) on its branch's head -- whether or not that commit was built before -- and the wave it starts.
    ``only``: those pipeline names."""
    report = Report(assembly=state.directory / "cdk.out")
    scheduled = [p for p in assembly.load(report.assembly) if p.schedules and (only is None or p.name in only)]
    progress(f"schedules fired: {', '.join(p.name for p in scheduled) or 'none'}")
    _deploy_stacks(report.assembly, state, config)  # a restarted AWS stand-in has lost the assets and roles
    context = _context(state, approve, config)
    _execute_all(scheduled, context, state, report)
    _follow(context, state, report)
    return report


def _push(
    config: PlatformConfig, state: LocalState, repository: str, *, approve: bool = False, checkout: Path | None = None
) -> Report:
    """Commit the folder's current content to ``repository`` and start each pipeline whose trigger matches.
    ``checkout``: a git checkout whose tracked files are pushed instead (at its root)."""
    known = repositories(config)
    if repository not in known:
        raise LocalRunError(f"source repository {repository!r}: not in platform.toml (known: {', '.join(known)})")
    branch, folder = known[repository]
    before = sources.head(state.git_root, repository, branch).commit
    source, folder = (ROOT, folder) if checkout is None else (checkout, ".")
    revision = sources.seed_repository(state.git_root, repository, branch, source, folder,
                                       overlay=platform_repo.commits(config, state, repository))  # fmt: skip
    report = Report(assembly=state.directory / "cdk.out")
    if revision.commit == before:
        progress(f"{repository}: nothing to push ({branch} is at {before[:12]})")
        return report
    files = sources.changed_files(state.git_root, revision, before)
    _deploy_stacks(report.assembly, state, config)  # a restarted AWS stand-in has lost the assets and roles
    context = _context(state, approve, config)
    for pipeline in assembly.load(report.assembly):
        if pipeline.repository != repository:
            continue
        if not sources.triggered(pipeline, branch, files):
            progress(f"{pipeline.name}: not started (no changed file matches its trigger: {', '.join(files)})")
            continue
        _execute(pipeline, context, state, report)
    _follow(context, state, report)
    return report


@contextlib.contextmanager
def _acting_for(state: LocalState) -> Iterator[None]:
    """This process reaches the stand-ins as a job does (AWS at moto as its admin, ECR at the local registries; the
    builder, the runtime's registry login), given back afterwards, the load balancers stopped: nothing leaks."""
    acting = aws_environment(state)
    if state.docker_host:
        acting["DOCKER_HOST"] = state.docker_host
    acting[verify.RUNTIME_DOCKER_CONFIG] = str(state.directory / "runtime-docker")
    try:
        with workload.acting_as(acting):
            yield
    finally:
        load_balancer.stop_all()


def seed(config: PlatformConfig, state: LocalState, *, republish: bool = False) -> dict[str, str]:
    with _acting_for(state):
        return _seed(config, state, republish=republish)


def run(config: PlatformConfig, state: LocalState, *, approve: bool = False, selection: str = "") -> Report:
    with _acting_for(state):
        report = _run(config, state, approve=approve, selection=selection)
        _mirror_lock(config, state)
        return report


def fire_schedules(
    config: PlatformConfig, state: LocalState, *, approve: bool = False, only: set[str] | None = None
) -> Report:
    with _acting_for(state):
        report = _fire_schedules(config, state, approve=approve, only=only)
        _mirror_lock(config, state)
        return report


def push(
    config: PlatformConfig, state: LocalState, repository: str, *, approve: bool = False, checkout: Path | None = None
) -> Report:
    with _acting_for(state):
        report = _push(config, state, repository, approve=approve, checkout=checkout)
        _mirror_lock(config, state)
        return report
