"""One pipeline execution, as CodePipeline runs it: stages in order, within a stage the actions of one run order side
by side and the next run order after them, artifacts handed on by name, ``#{Namespace.Variable}`` resolved, and the
first failed (or rejected) action ending the execution with later stages untouched."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.assembly import Action, Pipeline, Project, Stage
from pipeline.errors import SlipwayError
from pipeline.local.replay import codebuild, sources, standins


class ExecutionError(SlipwayError):
    pass


@dataclass(frozen=True)
class ActionResult:
    pipeline: str
    stage: str
    action: str
    role: str
    status: str
    """``Succeeded``, ``Failed``, or ``Rejected`` (a manual approval nobody gave)."""
    seconds: float
    log: str = ""
    detail: str = ""
    execution: str = ""
    """The execution it belongs to (its directory's name: start time and commit)."""

    def row(self) -> dict[str, object]:
        return {"pipeline": self.pipeline, "execution": self.execution, "stage": self.stage, "action": self.action,
                "role": self.role, "status": self.status, "seconds": self.seconds}  # fmt: skip


@dataclass
class Context:
    """What every execution shares: where sources and workspaces live, the job environment, and the stand-ins."""

    git_root: Path
    runs: Path
    environment: dict[str, str]
    secret: Callable[[str, dict[str, str]], str]
    """Reads a ``SECRETS_MANAGER`` value with the job's role credentials (as CodeBuild reads it with the project's)."""
    assume: Callable[[str], dict[str, str]] = lambda role: {}
    """``role ARN → AWS_* variables`` of that role's temporary credentials."""
    authorize: Callable[[Project, dict[str, str]], list[str]] = lambda project, variables: []
    """What AWS would deny the job before it runs (Slipway's own evaluation of the synthesized policies)."""
    approve: bool = False
    report: Callable[[ActionResult], None] = lambda result: None
    host_jobs: bool = False
    """Unit tests only: a project whose image is not in ECR by digest runs in this process's shell. The replay runs
    every job in its project's image, and refuses any other."""
    mounts: tuple[str, ...] = ()
    """Host paths a container job reaches at the same path besides the state directory (the Docker socket's
    directory, a CA bundle the environment names)."""
    on_approval: Callable[[Execution, Stage, Action], None] = lambda run, stage, action: None
    """What CodePipeline does when an approval waits (tells its topic: :mod:`pipeline.local.replay.notifications`)."""
    on_failure: Callable[[Execution, Stage], None] = lambda run, stage: None
    """What a failed stage sets off (EventBridge's rules on CodePipeline's event)."""
    enter: Callable[[Pipeline, Stage], str] = lambda pipeline, stage: "its entry conditions are not evaluated here"
    """A stage's ``BeforeEntry`` conditions, evaluated as CodePipeline does (:mod:`pipeline.local.replay.conditions`):
    empty when every condition holds, else why the stage may not start."""


@dataclass
class Execution:
    pipeline: Pipeline
    revision: sources.Revision
    directory: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)
    results: list[ActionResult] = field(default_factory=list)
    rollback: Execution | None = None
    """What a failed stage's ``OnFailure`` result ``ROLLBACK`` started: that stage again, with the artifacts of the
    last execution that succeeded in it (none: it never succeeded, nothing to roll back to)."""

    @property
    def succeeded(self) -> bool:
        return (
            bool(self.results)
            and all(r.status == "Succeeded" for r in self.results)
            and len(self.results) == len(self.pipeline.actions())
        )


_VARIABLE = re.compile(r"#\{([A-Za-z0-9_@-]+)\.([A-Za-z0-9_@-]+)\}")


def resolve_variables(text: str, variables: dict[str, dict[str, str]]) -> str:
    def one(match: re.Match[str]) -> str:
        namespace, name = match.group(1), match.group(2)
        if name not in variables.get(namespace, {}):
            raise ExecutionError(f"variable #{{{namespace}.{name}}}: no action published it")
        return variables[namespace][name]

    return _VARIABLE.sub(one, text)


def execute(pipeline: Pipeline, revision: sources.Revision, context: Context) -> Execution:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    directory = context.runs / pipeline.name / f"{stamp}-{revision.commit[:8]}"
    while directory.exists():  # two executions in one second (a failed start, then the start its base made)
        directory = directory.with_name(directory.name + "+")
    run = Execution(pipeline, revision, directory)
    for stage in pipeline.stages:
        if stage.before_entry and (why := context.enter(pipeline, stage)):
            # The condition's result FAIL: the stage fails without running an action, and the execution ends.
            refused = ActionResult(pipeline.name, stage.name, "BeforeEntry", pipeline.role.rsplit("/", 1)[-1],
                                   "Failed", 0.0, detail=why, execution=run.directory.name)  # fmt: skip
            context.report(refused)
            run.results.append(refused)
            context.on_failure(run, stage)
            return run
        if not _run_stage(run, stage, context):
            context.on_failure(run, stage)
            if stage.on_failure == "ROLLBACK":
                run.rollback = _roll_back(pipeline, stage, context)
            return run
        _succeeded_in(run, stage, context)
    return run


def _run_stage(run: Execution, stage: Stage, context: Context) -> bool:
    for wave in stage.waves():
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            results = list(pool.map(functools.partial(_timed, run, stage, context=context), wave))
        run.results += results
        if any(r.status != "Succeeded" for r in results):
            return False
    return True


def _last_success(context: Context, pipeline: Pipeline, stage: Stage) -> Path:
    return context.runs / pipeline.name / "succeeded" / f"{stage.name}.json"


def _succeeded_in(run: Execution, stage: Stage, context: Context) -> None:
    """What CodePipeline keeps of the last execution that succeeded in a stage: its source revision, variables and
    the artifacts the stage's actions read (in the artifact store, here under that execution's directory)."""
    inputs = {name: str(run.artifacts[name]) for action in stage.actions for name in action.inputs}
    path = _last_success(context, run.pipeline, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {"execution": run.directory.name, "revision": asdict(run.revision), "variables": run.variables,
            "artifacts": inputs}  # fmt: skip
    path.write_text(json.dumps(kept, indent=2))


def _roll_back(pipeline: Pipeline, stage: Stage, context: Context) -> Execution | None:
    """CodePipeline V2's stage rollback: a new execution of ``stage`` alone, with what the last execution that
    succeeded in it had. The previous release goes out again, on every target of the stage."""
    path = _last_success(context, pipeline, stage)
    if not path.exists():
        return None
    kept = json.loads(path.read_text())
    stamp, twice = time.strftime("%Y%m%dT%H%M%S", time.gmtime()), ""
    while (directory := context.runs / pipeline.name / f"{stamp}{twice}-rollback").exists():
        twice += "+"  # two rollbacks in one second: the name still ends in -rollback
    back = Execution(pipeline, sources.Revision(**kept["revision"]), directory,
                     artifacts={name: Path(p) for name, p in kept["artifacts"].items()},
                     variables=kept["variables"])  # fmt: skip
    _run_stage(back, stage, context)
    return back


def _timed(run: Execution, stage: Stage, action: Action, *, context: Context) -> ActionResult:
    started = time.monotonic()
    log = run.directory / stage.name / action.name / "log.txt"
    try:
        status, detail = _perform(run, stage, action, context)
    except SlipwayError as exc:
        status, detail = "Failed", str(exc)
    except Exception as exc:  # an action fails as CodePipeline reports it, never as a traceback
        status, detail = "Failed", f"{type(exc).__name__}: {exc}"
    result = ActionResult(
        run.pipeline.name, stage.name, action.name, action.role.rsplit("/", 1)[-1], status,
        round(time.monotonic() - started, 1), str(log) if log.exists() else "", detail, run.directory.name,
    )  # fmt: skip
    context.report(result)
    return result


def _perform(run: Execution, stage: Stage, action: Action, context: Context) -> tuple[str, str]:
    if action.provider == "CodeStarSourceConnection":
        return _source(run, action, context)
    if action.provider == "Manual":
        context.on_approval(run, stage, action)
        if context.approve:
            return "Succeeded", "approved (--approve)"
        return "Rejected", "manual approval not given (run with --approve)"
    if action.provider == "CodeBuild":
        return _codebuild(run, stage, action, context)
    raise ExecutionError(f"action {action.name}: provider {action.provider} is not replayed")


def _source(run: Execution, action: Action, context: Context) -> tuple[str, str]:
    config = action.configuration
    if (config.get("FullRepositoryId"), config.get("BranchName")) != (run.revision.repository, run.revision.branch):
        raise ExecutionError(f"source {config.get('FullRepositoryId')}@{config.get('BranchName')}: not this push")
    output = run.directory / "artifacts" / action.outputs[0]
    sources.checkout(context.git_root, run.revision, output)
    run.artifacts[action.outputs[0]] = output
    if action.namespace:
        run.variables[action.namespace] = run.revision.variables(str(config.get("ConnectionArn", "")))
    return "Succeeded", run.revision.commit


def _codebuild(run: Execution, stage: Stage, action: Action, context: Context) -> tuple[str, str]:
    project = run.pipeline.projects[str(action.configuration["ProjectName"])]
    missing = [name for name in action.inputs if name not in run.artifacts]
    if missing:
        raise ExecutionError(f"input artifacts {', '.join(missing)}: no earlier action produced them")
    raw = action.configuration.get("EnvironmentVariables", "[]")
    overrides = {v["name"]: resolve_variables(str(v["value"]), run.variables) for v in json.loads(raw or "[]")}
    plaintext = {v.name: v.value for v in project.variables if v.type == "PLAINTEXT"}
    if problems := context.authorize(project, plaintext):
        return "Failed", "\n".join(problems)
    workspace = run.directory / stage.name / action.name
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    started = time.monotonic()
    role = context.assume(project.role)
    container = None
    if codebuild.in_container(project):
        # CodeBuild pulls a custom image with the project's service role (ImagePullCredentialsType SERVICE_ROLE).
        login = workspace / "pull"
        _login(project.image, {**context.environment, **role}, login)
        state = str(context.runs.parent)
        stand_ins = f"{standins.prepare(context.runs.parent)}:{codebuild.STANDINS}:ro"
        mounts = (f"{state}:{state}", stand_ins, *(f"{m}:{m}" for m in context.mounts))
        container = codebuild.Container(project.image, codebuild.container_platform(project), mounts, login)
        environment = codebuild.base_environment(workspace, {**context.environment, **role})
    elif context.host_jobs:
        environment = codebuild.base_environment(workspace, {**context.environment, **role}, container=False)
    else:
        return "Failed", f"image {project.image}: the replay runs a job only in an ECR image named by digest"
    job = codebuild.Job(
        project=project,
        workspace=workspace,
        primary=str(action.configuration.get("PrimarySource") or (action.inputs[0] if action.inputs else "")),
        inputs={name: run.artifacts[name] for name in action.inputs},
        environment=environment,
        action_variables=overrides,
        secret=lambda reference: context.secret(reference, role),
        container=container,
        started=started,
    )
    outcome = codebuild.run(job)
    if not outcome.succeeded:
        return "Failed", f"phase {outcome.failed_phase}:\n{codebuild.tail(outcome.log)}"
    for name in action.outputs:
        run.artifacts[name] = outcome.output
    return "Succeeded", ""


def _login(image: str, environment: dict[str, str], config: Path) -> None:
    """``docker login`` to the image's registry under ``config`` with a token the job's role asked ECR for."""
    import base64

    import boto3

    from pipeline.builders.docker_cli import docker_binary, docker_env
    from pipeline.registry.base import endpoint

    host = image.split("/", 1)[0]
    region = host.split(".")[3]
    client = boto3.Session(
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=region,
    ).client("ecr", endpoint_url=environment.get("AWS_ENDPOINT_URL"))
    data = client.get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1]
    config.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [docker_binary(), "--config", str(config), "login", "--username", "AWS", "--password-stdin", endpoint(host)],
        input=password, env={**os.environ, **docker_env(), "DOCKER_HOST": environment.get("DOCKER_HOST", "")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise ExecutionError(f"image {image}: the project role's registry login failed: {completed.stderr.strip()}")
