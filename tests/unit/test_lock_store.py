"""The lock store (issue #25): entries read when a job runs, registration before reading, publications that start
exactly the registered pipelines once per version -- and a retry that finishes a publication's starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline import bases, lock_store
from pipeline.commands.stitch import builds_bases
from pipeline.records import BuildRecord, write
from pipeline.stitch import StitchError

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
LOCK, DEPENDENTS = "/slipway/acme/lock/", "/slipway/acme/dependents/"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        iam = boto3.client("iam", region_name="eu-west-1")
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"},
                                "Action": "sts:AssumeRole"}]}  # fmt: skip
        role = iam.create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        pipelines = boto3.client("codepipeline", region_name="eu-west-1")
        for name in ("slipway-payments-base-python", "slipway-search-indexer"):
            create(pipelines, name, role)
        yield boto3.client("ssm", region_name="eu-west-1"), pipelines


def create(pipelines: Any, name: str, role: str) -> None:
    action = {
        "name": "a",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
    }
    pipelines.create_pipeline(pipeline={"name": name, "roleArn": role,
                                        "stages": [{"name": "S", "actions": [action]}, {"name": "T", "actions": [action]}]})  # fmt: skip


def executions(pipelines: Any, name: str) -> int:
    return len(pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"])


def store(aws: tuple[Any, Any]) -> lock_store.LockStore:
    return lock_store.LockStore(aws[0], LOCK, DEPENDENTS, aws[1])


def built(lock: lock_store.LockStore, pipeline: str, uses: list[str], publishes: str = "") -> None:
    """What a Build job of ``pipeline`` registers once it has read its bases."""
    lock.register(pipeline, lock.read(uses), publishes)


def test_a_publication_starts_exactly_the_stale_registered_pipelines(aws: tuple[Any, Any]) -> None:
    lock = store(aws)
    lock.register("slipway-payments-base-python", {"BASE_DEBIAN": ""}, "BASE_PYTHON")  # failed, waiting
    lock.register("slipway-search-indexer", {"UPSTREAM_DEBIAN": ""})
    first = lock.publish("BASE_DEBIAN", f"payments/bases/debian:c1@{D1}")
    assert first.changed and first.started == ("slipway-payments-base-python",)
    assert executions(aws[1], "slipway-payments-base-python") == 1
    assert executions(aws[1], "slipway-search-indexer") == 0
    built(lock, "slipway-payments-base-python", ["BASE_DEBIAN"], "BASE_PYTHON")
    # A rebuild that gave the same index (reproducible build, unmoved upstream) starts nothing: nobody is stale.
    again = lock.publish("BASE_DEBIAN", f"payments/bases/debian:c1.2@{D1}")
    assert not again.changed and again.started == () and again.entry == f"payments/bases/debian:c1@{D1}"
    moved = lock.publish("BASE_DEBIAN", f"payments/bases/debian:c1.2@{D2}")
    assert moved.changed and moved.previous.endswith(D1) and moved.started == ("slipway-payments-base-python",)
    assert executions(aws[1], "slipway-payments-base-python") == 2
    assert lock.read(["BASE_DEBIAN", "BASE_OTHER"]) == {"BASE_DEBIAN": f"payments/bases/debian:c1.2@{D2}"}
    history = aws[0].get_parameter_history(Name=LOCK + "BASE_DEBIAN")["Parameters"]
    assert [p["Value"].rsplit("@", 1)[1] for p in history] == [D1, D2]  # the audit trail: every version kept


def test_a_retried_publication_finishes_the_starts_its_first_attempt_did_not(aws: tuple[Any, Any]) -> None:
    lock = store(aws)
    lock.register("slipway-payments-api", {"BASE_PYTHON": ""})  # not created yet: its start fails
    with pytest.raises(Exception, match="PipelineNotFound"):
        lock.publish("BASE_PYTHON", f"payments/bases/python:c1@{D1}")
    assert lock.read(["BASE_PYTHON"])  # written; the start did not happen
    role = boto3.client("iam", region_name="eu-west-1").get_role(RoleName="pipeline")["Role"]["Arn"]
    create(aws[1], "slipway-payments-api", role)
    retry = lock.publish("BASE_PYTHON", f"payments/bases/python:c1@{D1}")
    assert not retry.changed and retry.started == ("slipway-payments-api",)
    assert executions(aws[1], "slipway-payments-api") == 1
    built(lock, "slipway-payments-api", ["BASE_PYTHON"])
    assert lock.publish("BASE_PYTHON", f"payments/bases/python:c1@{D1}").started == ()  # done: nothing more


def test_a_wave_builds_each_pipeline_once_on_all_its_new_bases(aws: tuple[Any, Any]) -> None:
    """debian moves: python-build (on debian) and lambda-python (on python-build) rebuild; the service built on both
    waits for lambda-python instead of building on the new python-build and the old lambda-python first."""
    lock = store(aws)
    role = boto3.client("iam", region_name="eu-west-1").get_role(RoleName="pipeline")["Role"]["Arn"]
    python_build, lambda_python, service = "slipway-p-python-build", "slipway-p-lambda-python", "slipway-p-api"
    for name in (python_build, lambda_python, service):
        create(aws[1], name, role)
    for key in ("BASE_DEBIAN", "BASE_PYTHON_BUILD", "BASE_LAMBDA_PYTHON"):
        lock.ssm.put_parameter(Name=LOCK + key, Value=f"x/{key.lower()}:c@{D1}", Type="String")
    built(lock, python_build, ["BASE_DEBIAN"], "BASE_PYTHON_BUILD")
    built(lock, lambda_python, ["BASE_PYTHON_BUILD"], "BASE_LAMBDA_PYTHON")
    built(lock, service, ["BASE_PYTHON_BUILD", "BASE_LAMBDA_PYTHON"])
    assert lock.publish("BASE_DEBIAN", f"x/debian:c@{D2}").started == (python_build,)
    lock.register(python_build, {"BASE_DEBIAN": ""}, "BASE_PYTHON_BUILD")  # its Build job: building, not published
    # python-build moved: lambda-python starts; the service waits, since lambda-python is about to change.
    moved = lock.publish("BASE_PYTHON_BUILD", f"x/pb:c@{D2}", pipeline=python_build,
                         built_with=lock.read(["BASE_DEBIAN"]))  # fmt: skip
    assert moved.started == (lambda_python,)
    lock.register(lambda_python, {"BASE_PYTHON_BUILD": ""}, "BASE_LAMBDA_PYTHON")
    # lambda-python came out the same (an unchanged digest): the service, stale on python-build, goes on now.
    same = lock.publish("BASE_LAMBDA_PYTHON", f"x/lp:c@{D1}", pipeline=lambda_python,
                        built_with=lock.read(["BASE_PYTHON_BUILD"]))  # fmt: skip
    assert not same.changed and same.started == (service,)
    assert [executions(aws[1], n) for n in (python_build, lambda_python, service)] == [1, 1, 1]


def test_a_base_still_building_holds_back_what_also_builds_on_it(aws: tuple[Any, Any]) -> None:
    """python and python-build rebuild side by side; python publishes first: lambda-python (on both) waits for
    python-build, which registered and is building, instead of building on the old python-build."""
    lock = store(aws)
    role = boto3.client("iam", region_name="eu-west-1").get_role(RoleName="pipeline")["Role"]["Arn"]
    python, python_build, lambda_python = "slipway-q-python", "slipway-q-python-build", "slipway-q-lambda-python"
    for name in (python, python_build, lambda_python):
        create(aws[1], name, role)
    for key in ("BASE_DEBIAN", "BASE_PYTHON", "BASE_PYTHON_BUILD"):
        lock.ssm.put_parameter(Name=LOCK + key, Value=f"x/{key.lower()}:c@{D1}", Type="String")
    built(lock, lambda_python, ["BASE_PYTHON", "BASE_PYTHON_BUILD"], "BASE_LAMBDA_PYTHON")
    lock.register(python_build, {"BASE_DEBIAN": ""}, "BASE_PYTHON_BUILD")  # building
    lock.register(python, {"BASE_DEBIAN": ""}, "BASE_PYTHON")
    first = lock.publish("BASE_PYTHON", f"x/p:c@{D2}", pipeline=python, built_with=lock.read(["BASE_DEBIAN"]))
    assert first.started == ()
    second = lock.publish("BASE_PYTHON_BUILD", f"x/pb:c@{D2}", pipeline=python_build,
                          built_with=lock.read(["BASE_DEBIAN"]))  # fmt: skip
    assert second.started == (lambda_python,) and executions(aws[1], lambda_python) == 1


def dockerfile(tmp_path: Path) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(
        "ARG BASE_PYTHON\nARG TOOL=busybox\nARG SOURCE_DATE_EPOCH\nFROM ${TOOL} AS tool\nFROM ${BASE_PYTHON}\n"
    )
    return path


def test_a_build_registers_before_it_reads_and_names_a_base_not_published_yet(
    aws: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lock_store.PARAMETERS_ENV, LOCK)
    monkeypatch.setenv(lock_store.DEPENDENTS_ENV, DEPENDENTS)
    monkeypatch.setenv(lock_store.PIPELINE_ENV, "slipway-search-indexer")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    path = dockerfile(tmp_path)
    with pytest.raises(bases.LockError, match=rf"{path}: FROM needs BASE_PYTHON, which the lock store "
                                              r"\(/slipway/acme/lock/\) does not hold yet"):  # fmt: skip
        bases.current(path, register=True)
    # Registered anyway (TOOL has a default: not a base): the publication of BASE_PYTHON starts this pipeline.
    assert [r.uses for r in store(aws).registrations()] == [{"BASE_PYTHON": ""}]
    assert store(aws).publish("BASE_PYTHON", f"payments/bases/python:c1@{D1}").started == ("slipway-search-indexer",)
    assert bases.current(path, register=True) == {"BASE_PYTHON": f"payments/bases/python:c1@{D1}"}
    assert [r.uses for r in store(aws).registrations()] == [{"BASE_PYTHON": f"payments/bases/python:c1@{D1}"}]


def test_the_store_path_must_be_a_parameter_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lock_store.PARAMETERS_ENV, "slipway/acme/lock")
    with pytest.raises(lock_store.LockStoreError, match=r"\$SLIPWAY_LOCK_PARAMETERS: expected a parameter path"):
        lock_store.from_environment()


def build(tmp_path: Path, platform: str, used: dict[str, str]) -> Path:
    path = tmp_path / f"build-{platform.split('/')[1]}.json"
    write(path, BuildRecord("r/x", platform, D1, 1, 1.0, "buildx", bases=used))
    return path


def test_stitch_releases_on_the_bases_every_build_read_or_refuses(tmp_path: Path) -> None:
    python = {"BASE_PYTHON": f"payments/bases/python:c1@{D1}"}
    same = [build(tmp_path, "linux/amd64", python), build(tmp_path, "linux/arm64", python)]
    assert json.loads(builds_bases(same)) == python
    assert builds_bases([build(tmp_path, "linux/amd64", {})]) == ""
    newer = {"BASE_PYTHON": f"payments/bases/python:c2@{D2}"}
    mixed = [build(tmp_path, "linux/amd64", python), build(tmp_path, "linux/arm64", newer)]
    with pytest.raises(StitchError, match=r"build-arm64\.json: built on other bases than .*build-amd64\.json "
                                          r"\(BASE_PYTHON\): a base was published while this execution built"):  # fmt: skip
        builds_bases(mixed)


def test_iam_names_parameters_and_pipelines_as_aws_authorizes_them() -> None:
    from pipeline.local.iam_enforcement import requests_for

    def resources(action: str, params: dict[str, Any]) -> list[str]:
        found = requests_for(action, "*", region="eu-west-1", account="1", path="/", params=params)
        return [r.resource for r in found]

    arn = "arn:aws:ssm:eu-west-1:1:parameter"
    assert resources("ssm:GetParameters", {"Names": [LOCK + "A", LOCK + "B"]}) == [f"{arn}{LOCK}A", f"{arn}{LOCK}B"]
    assert resources("ssm:PutParameter", {"Name": DEPENDENTS + "p"}) == [f"{arn}{DEPENDENTS}p"]
    assert resources("ssm:GetParametersByPath", {"Path": "/slipway/acme/dependents"}) == [
        f"{arn}/slipway/acme/dependents"
    ]
    assert resources("codepipeline:StartPipelineExecution", {"name": "slipway-x"}) == [
        "arn:aws:codepipeline:eu-west-1:1:slipway-x"
    ]


def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    """CodePipeline as the replay's stand-in answers it (a start's token honoured), for this test only."""
    from moto.codepipeline import models
    from moto.codepipeline.responses import CodePipelineResponse

    from pipeline.local import codepipeline_standin

    for owner, name in ((models.PipelineExecution, "__init__"), (models.CodePipelineBackend, "create_pipeline"),
                        (CodePipelineResponse, "start_pipeline_execution")):  # fmt: skip
        monkeypatch.setattr(owner, name, getattr(owner, name))  # restored after the test
    codepipeline_standin.install()


def test_the_codepipeline_stand_in_leaves_executions_to_run_and_honours_the_token(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    standin(monkeypatch)
    pipelines = aws[1]
    first = pipelines.start_pipeline_execution(name="slipway-search-indexer", clientRequestToken="BASE_X-v1")
    again = pipelines.start_pipeline_execution(name="slipway-search-indexer", clientRequestToken="BASE_X-v1")
    other = pipelines.start_pipeline_execution(name="slipway-search-indexer", clientRequestToken="BASE_X-v2")
    assert first["pipelineExecutionId"] == again["pipelineExecutionId"] != other["pipelineExecutionId"]
    summaries = pipelines.list_pipeline_executions(pipelineName="slipway-search-indexer")["pipelineExecutionSummaries"]
    assert [s["status"] for s in summaries] == ["InProgress", "InProgress"]


def test_a_pipeline_waiting_for_two_bases_is_started_by_the_second_publication(aws: tuple[Any, Any]) -> None:
    """First run in a fresh account: payments/api builds on python-build and lambda-python; starting it when only the
    first is published would only fail again."""
    lock = store(aws)
    lock.register("slipway-search-indexer", {"BASE_PYTHON_BUILD": "", "BASE_LAMBDA_PYTHON": ""})
    assert lock.publish("BASE_PYTHON_BUILD", f"payments/bases/python-build:c1@{D1}").started == ()
    assert lock.publish("BASE_LAMBDA_PYTHON", f"payments/bases/lambda-python:c1@{D1}").started == (
        "slipway-search-indexer",
    )
    assert executions(aws[1], "slipway-search-indexer") == 1


def test_a_teams_budget_runs_one_pipeline_per_lane_and_each_that_builds_starts_the_next(
    aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #26, item 4: a team's rebuild_concurrency (2 here) deals its pipelines into lanes; a publication starts
    the first of each idle lane, a pipeline that stitched -- or failed -- starts the next of its own, and nothing
    starts in a lane where one is building: at most two of the team's pipelines build at once, whatever publishes."""
    lock = lock_store.LockStore(aws[0], LOCK, DEPENDENTS, aws[1], team="payments", lanes=2)
    role = boto3.client("iam", region_name="eu-west-1").get_role(RoleName="pipeline")["Role"]["Arn"]
    a, b, c, d, e = (f"slipway-payments-{n}" for n in "abcde")
    for name in (a, b, c, d, e):
        create(aws[1], name, role)
        lock.register(name, {"BASE_X": ""})  # each Build job, before it reads
    store(aws).register("slipway-search-indexer", {"BASE_X": ""})  # a team with no budget
    standin(monkeypatch)  # starts honour their token (created above: no first execution)

    first = lock.publish("BASE_X", f"x/x:c@{D1}")
    assert first.started == (a, b, "slipway-search-indexer")  # lanes [a, c, e] and [b, d]
    assert first.queued == (c, d, e)
    for name in (a, b):  # their Build jobs read the entry and build: each holds its lane
        lock.register(name, lock.read(["BASE_X"]), building=True)
    built(store(aws), "slipway-search-indexer", ["BASE_X"])
    again = lock.publish("BASE_X", f"x/x:c.2@{D1}")  # a retried publication, or a second base of the wave
    assert again.started == () and again.queued == (c, d, e)

    assert lock.continue_lane(a) == (c,)  # a stitched: lane 1 goes on
    assert lock.continue_lane(a) == (c,) and executions(aws[1], c) == 1  # a retried Stitch: the same execution
    lock.register(c, lock.read(["BASE_X"]), building=True)
    assert lock.continue_lane(b) == (d,)  # b failed (its post_build): lane 2 goes on
    assert lock.continue_lane(d) == ()  # d never built; e is in lane 1, where c is building
    assert lock.continue_lane(c) == (e,)
    assert [executions(aws[1], n) for n in (a, b, c, d, e)] == [1, 1, 1, 1, 1]
    assert not any(r.building for r in lock.registrations() if r.pipeline in (a, b, c))


def test_a_lane_held_by_a_build_that_never_said_it_stopped_is_free_after_the_build_timeout() -> None:
    """A job killed by its timeout runs no post_build: its lane frees itself after BUILDING_FOR, so the next
    publication (the weekly refresh at the latest) starts the lane again."""
    now = 1_000_000.0
    held = lock_store.Registration("slipway-t-a", {"K": "e"}, team="t", lanes=1, building=now - 60)
    waiting = lock_store.Registration("slipway-t-b", {"K": ""}, team="t", lanes=1)
    wave = lock_store.Wave((held, waiting), {"K": "e"}, now)
    assert wave.ready("K") == ["slipway-t-b"] and wave.heads(["slipway-t-b"]) == []
    later = lock_store.Wave(
        (replace(held, building=now - lock_store.BUILDING_FOR - 1), waiting), {"K": "e"}, now
    )  # fmt: skip
    assert later.heads(["slipway-t-b"]) == ["slipway-t-b"]


def test_a_team_whose_registrations_disagree_on_the_budget_gets_the_smallest() -> None:
    members = [
        lock_store.Registration(f"slipway-t-{n}", {}, team="t", lanes=lanes)
        for n, lanes in zip("abc", (3, 1, 3), strict=True)
    ]
    wave = lock_store.Wave(tuple(members), {})
    assert {wave.lane(m.pipeline) for m in members} == {("t", 0)}
    assert wave.lane("slipway-other") is None


def test_the_rebuild_budget_in_the_environment_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lock_store.PARAMETERS_ENV, LOCK)
    monkeypatch.setenv(lock_store.LANES_ENV, "two")
    with pytest.raises(lock_store.LockStoreError, match=r"\$SLIPWAY_REBUILD_LANES: expected a whole number"):
        lock_store.from_environment()


def test_a_build_holds_its_lane_from_its_first_registration_a_base_until_it_publishes(
    aws: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A curated base's Build registers only what it uses (its release is not published yet): that registration holds
    the team's lane too, so a publication meanwhile starts nothing there; its publication frees it."""
    for name, value in ((lock_store.PARAMETERS_ENV, LOCK), (lock_store.DEPENDENTS_ENV, DEPENDENTS),
                        (lock_store.PIPELINE_ENV, "slipway-payments-base-python"), (lock_store.PUBLISHES_ENV, "BASE_X"),
                        (lock_store.TEAM_ENV, "payments"), (lock_store.LANES_ENV, "1"),
                        ("AWS_DEFAULT_REGION", "eu-west-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    lock = lock_store.LockStore(aws[0], LOCK, DEPENDENTS, aws[1], team="payments", lanes=1)
    lock.register("slipway-payments-zz", {"BASE_DEBIAN": ""})  # waits on debian, in the team's one lane
    (tmp_path / "Dockerfile").write_text("ARG BASE_DEBIAN\nFROM ${BASE_DEBIAN}\n")
    lock.ssm.put_parameter(Name=LOCK + "BASE_DEBIAN", Value=f"x/debian:c@{D1}", Type="String")
    bases.current(tmp_path / "Dockerfile", register=True)  # the base's Build job
    (base,) = [r for r in lock.registrations() if r.pipeline == "slipway-payments-base-python"]
    assert base.building and base.uses == {"BASE_DEBIAN": ""}
    assert lock.publish("BASE_DEBIAN", f"x/debian:c@{D2}").started == ()  # the lane is taken
    lock.publish("BASE_X", f"x/x:c@{D1}", pipeline=base.pipeline, built_with=lock.read(["BASE_DEBIAN"]))
    (base,) = [r for r in lock.registrations() if r.pipeline == "slipway-payments-base-python"]
    assert not base.building
