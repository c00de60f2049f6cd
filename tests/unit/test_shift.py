"""Progressive delivery on Lambda (#29): the alias's weights moved step by step, every bake's alarms read; an alarm
in ALARM puts all traffic back; a retry in the middle of a shift resumes where the alias is, never leaving a split
the record does not describe. Against the Lambda fake that keeps state as Lambda does (weights included)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load
from pipeline.config.error import ConfigError
from pipeline.config.strategy import Strategy
from pipeline.deployers.base import DeployError, Grant
from pipeline.deployers.lambda_ import IMAGE_TAG, PREVIOUS_TAG, LambdaDeployer
from pipeline.deployers.shift import CloudWatchAlarms, RolledBackError
from tests.unit.test_deploy_base import PREVIOUS, RELEASE
from tests.unit.test_lambda_deployer import HEALTHY, NEW, TARGET, FakeLambda, answering
from tests.unit.test_service_pipeline import PAYMENTS, projects_all

ROOT = Path(__file__).resolve().parents[2]
CANARY = Strategy(kind="canary", percent=10, bake_seconds=300, alarms=("payments-api-errors",))
LINEAR = Strategy(kind="linear", step_percent=25, interval_seconds=60, alarms=("payments-api-errors",))


class Alarms:
    """CloudWatch's alarm states over time: ``script`` lists the state each read returns (the last one repeats)."""

    def __init__(self, *script: str) -> None:
        self.script, self.reads = list(script or ("OK",)), 0

    def states(self, names: Sequence[str]) -> Mapping[str, str]:
        state = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        return dict.fromkeys(names, state)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _serving_previous() -> FakeLambda:
    """The alias on version 1 (the previous release), as every deploy after the first finds it."""
    fake = FakeLambda()
    fake.versions, fake.aliases = {"1": (PREVIOUS, PREVIOUS)}, {"live": "1"}
    return fake


def _deploy(fake: FakeLambda, strategy: Strategy, alarms: Alarms) -> Any:
    clock = Clock()
    deployer = LambdaDeployer(fake, poll_seconds=0, invoke=answering(HEALTHY), alarms=alarms, clock=clock,
                              sleep=clock.sleep)  # fmt: skip
    return deployer.deploy(RELEASE, replace(TARGET, strategy=strategy), timeout=5)


def test_a_canary_takes_its_share_bakes_with_its_alarms_watched_then_takes_all() -> None:
    fake, alarms = _serving_previous(), Alarms("OK")
    record = _deploy(fake, CANARY, alarms)
    assert fake.moves == [("1", {"2": 0.1}), ("2", {})]
    assert alarms.reads >= 300 / 10  # read every 10 s of the 300 s bake (and once before anything moved)
    assert record.strategy == {"kind": "canary", "outcome": "promoted", "steps": [
        {"percent": 10, "seconds": 300, "alarm_state": "OK"}, {"percent": 100, "seconds": 0, "alarm_state": ""}]}  # fmt: skip
    assert (record.image, record.previous_image, record.revision) == (NEW, PREVIOUS, "2")


def test_an_alarm_during_the_canary_puts_all_traffic_back_and_records_why() -> None:
    fake, alarms = _serving_previous(), Alarms("OK", "OK", "ALARM")
    with pytest.raises(RolledBackError) as raised:
        _deploy(fake, CANARY, alarms)
    assert str(raised.value) == (
        "Lambda function payments-api (arm64): rolled back at 10 %: alarm payments-api-errors in ALARM; all traffic "
        "is back on the previous version"
    )
    assert fake.moves == [("1", {"2": 0.1}), ("1", {})]
    assert (fake.aliases["live"], fake.weights["live"]) == ("1", {})
    record = raised.value.record
    assert record is not None and (record.image, record.changed) == (PREVIOUS, False)
    assert record.strategy == {"kind": "canary", "outcome": "rolled back",
                               "reason": "rolled back at 10 %: alarm payments-api-errors in ALARM",
                               "steps": [{"percent": 10, "seconds": 300, "alarm_state": "ALARM"}]}  # fmt: skip


def test_linear_moves_a_step_at_a_time_and_an_alarm_at_any_step_rolls_back() -> None:
    fake = _serving_previous()
    record = _deploy(fake, LINEAR, Alarms("OK", "INSUFFICIENT_DATA", "OK"))  # the first read: do they exist
    assert fake.moves == [("1", {"2": 0.25}), ("1", {"2": 0.5}), ("1", {"2": 0.75}), ("2", {})]
    assert [s["alarm_state"] for s in record.strategy["steps"]] == ["INSUFFICIENT_DATA", "OK", "OK", ""]
    fake = _serving_previous()
    # 1 read before anything moves, then 7 a 60-s step (at 0, 10, ..., 60 s): the third step's second read fires
    with pytest.raises(RolledBackError, match="rolled back at 75 %: alarm payments-api-errors in ALARM"):
        _deploy(fake, LINEAR, Alarms(*["OK"] * 16, "ALARM"))
    assert fake.moves[-1] == ("1", {})


@pytest.mark.parametrize(
    ("strategy", "weight", "moves"),
    [
        (LINEAR, 0.5, [("1", {"2": 0.5}), ("1", {"2": 0.75}), ("2", {})]),
        (CANARY, 0.1, [("1", {"2": 0.1}), ("2", {})]),
    ],
    ids=["linear at 50 %", "canary at 10 %"],
)
def test_a_retry_in_the_middle_of_a_shift_resumes_at_the_step_the_alias_is_on(
    strategy: Strategy, weight: float, moves: list[Any]
) -> None:
    """The job died mid-shift: the alias still on version 1 with version 2 weighted, the function tagged with the
    image and its rollback target. The retry re-bakes the step it finds (its alarms watched again), never steps back,
    and finishes."""
    fake = _serving_previous()
    fake.latest, fake.versions["2"] = NEW, (NEW, NEW)
    fake.weights["live"] = {"2": weight}
    fake.tags = {IMAGE_TAG: NEW, PREVIOUS_TAG: PREVIOUS}
    record = _deploy(fake, strategy, Alarms("OK"))
    assert fake.moves == moves
    assert record.strategy["steps"][0]["percent"] == round(weight * 100)
    assert (record.previous_image, fake.aliases["live"], fake.weights["live"]) == (PREVIOUS, "2", {})


def test_a_retry_of_a_shift_that_an_alarm_stopped_rolls_back_again_before_moving_further() -> None:
    fake = _serving_previous()
    fake.latest, fake.versions["2"] = NEW, (NEW, NEW)
    fake.weights["live"] = {"2": 0.5}
    with pytest.raises(RolledBackError, match="rolled back at 50 %"):
        _deploy(fake, LINEAR, Alarms("OK", "ALARM"))
    assert fake.moves == [("1", {"2": 0.5}), ("1", {})]


def test_the_first_deploy_has_nothing_to_shift_from_and_an_alarm_that_does_not_exist_moves_nothing() -> None:
    fake = FakeLambda()
    record = _deploy(fake, CANARY, Alarms("ALARM"))  # no alias yet: it is created on the new version, nothing baked
    assert (fake.aliases, fake.versions["1"][0]) == ({"live": "1"}, NEW)
    assert record.strategy["steps"] == [{"percent": 100, "seconds": 0, "alarm_state": ""}]

    class NoSuchAlarm:
        def describe_alarms(self, AlarmNames: list[str]) -> dict[str, Any]:
            return {"MetricAlarms": [], "CompositeAlarms": []}

    fake = _serving_previous()
    with pytest.raises(DeployError, match=r"^x: alarm 'payments-api-errors' does not exist \(strategy.alarms\)$"):
        _deploy(fake, CANARY, CloudWatchAlarms(NoSuchAlarm(), "x"))  # type: ignore[arg-type]
    assert fake.moves == [] and fake.aliases["live"] == "1"


def test_all_at_once_clears_any_split_it_finds() -> None:
    fake = _serving_previous()
    fake.latest, fake.versions["2"] = NEW, (NEW, NEW)
    fake.weights["live"] = {"2": 0.3}  # left by a shift the config has since turned off
    assert _deploy(fake, Strategy(), Alarms()).strategy is None
    assert (fake.aliases["live"], fake.weights["live"]) == ("2", {})


def test_the_deploy_role_may_read_exactly_the_alarms_its_strategy_names() -> None:
    def alarm_grants(strategy: Strategy) -> list[Grant]:
        target = replace(TARGET, strategy=strategy)
        return [g for g in LambdaDeployer.permissions(target) if isinstance(g, Grant) and "cloudwatch" in g.actions[0]]

    assert alarm_grants(Strategy()) == []
    [grant] = alarm_grants(CANARY)
    assert grant.actions == ("cloudwatch:DescribeAlarms",)
    assert grant.resources == ("arn:{partition}:cloudwatch:{region}:{account}:alarm:payments-api-errors",)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('kind = "canary"\npercent = 100', "strategy.percent: expected 1..99, got 100"),
        ('kind = "blue-green"', "strategy.kind: expected one of 'all-at-once', 'canary', 'linear'"),
        ('kind = "linear"\nstep_percent = 1\ninterval_seconds = 3600',
         "strategy: its steps bake 356400 s in all, more than the 25200 s a deploy job waits"),
        ('alarms = ["bad name"]', "strategy.alarms[0]: expected a CloudWatch alarm name"),
    ],
)  # fmt: skip
def test_a_strategy_is_validated_like_every_other_key(table: str, message: str, tmp_path: Path) -> None:
    text = (ROOT / "platform.toml").read_text()
    prod = text.index('name = "prod"')
    start = text.index("[teams.services.environments.lambda.strategy]", prod)
    end = text.index("[teams.services.environments.ecs]", start)
    broken = tmp_path / "platform.toml"
    broken.write_text(text[:start] + "[teams.services.environments.lambda.strategy]\n" + table + "\n\n" + text[end:])
    with pytest.raises(ConfigError) as raised:
        load(broken)
    assert f"teams[0].services[0].environments[1].lambda.{message}" in str(raised.value)


def test_the_deploy_command_line_carries_the_strategy_as_platform_toml_says_it() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    LambdaDeployer.add_arguments(parser)
    for strategy in (Strategy(), CANARY, LINEAR):
        target = replace(TARGET, strategy=strategy)
        assert LambdaDeployer.target_from_args(parser.parse_args(list(target.cli_args()))) == target


def test_prods_workload_role_reads_its_canarys_alarm_and_no_other(synthesized: dict[str, Any]) -> None:
    """The example's prod Lambda canary watches one alarm: the prod workload role (what the deploy assumes) may read
    that alarm's state in its own account and region; dev's reads dev's alarm, and only the gate role besides."""
    import json

    def alarm_statements(stack: str) -> list[Any]:
        template = synthesized["templates"][stack].to_json()
        return [
            statement
            for resource in template["Resources"].values()
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::Role")
            for policy in [resource["Properties"].get("PolicyDocument")]
            + [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            if policy
            for statement in policy["Statement"]
            if "cloudwatch" in json.dumps(statement.get("Action"))
        ]

    [statement] = alarm_statements("Slipway-Acme-Workload-555555555555-eu-central-1")
    assert statement["Action"] == "cloudwatch:DescribeAlarms"
    assert "alarm:payments-api-prod-errors" in json.dumps(statement["Resource"])
    assert ":555555555555:" in json.dumps(statement["Resource"]) and "eu-central-1" in json.dumps(statement["Resource"])
    dev = alarm_statements("Slipway-Acme-Workload-222222222222-eu-west-1")
    assert len(dev) == 2  # the deploy role's and the gate role's (tests/unit/test_stage_gates.py)
    assert {json.dumps(s["Resource"]).count("alarm:payments-api-dev-errors") for s in dev} == {1}
    assert "prod" not in json.dumps(dev)


def test_the_deployments_table_says_how_traffic_moved() -> None:
    from pipeline.commands.local import _traffic

    assert _traffic(None) == "all at once"
    promoted = {"kind": "canary", "outcome": "promoted", "steps": [{"percent": 10, "seconds": 10, "alarm_state": "OK"},
                                                                  {"percent": 100, "seconds": 0, "alarm_state": ""}]}  # fmt: skip
    assert _traffic(promoted) == "canary 10% OK, 100%: promoted"
    stopped = {**promoted, "outcome": "rolled back", "steps": [{"percent": 10, "seconds": 10, "alarm_state": "ALARM"}]}
    assert _traffic(stopped) == "canary 10% ALARM: rolled back"


# EKS (#29): a linear strategy is the Deployment's own rolling update, its alarms read while it rolls.
EKS_LINEAR = Strategy(kind="linear", step_percent=25, interval_seconds=60, alarms=("indexer-errors",))


def _eks(cluster: Any, alarms: Alarms) -> Any:
    from pipeline.deployers.eks import EksDeployer
    from tests.unit.test_eks_deploy import RECORD
    from tests.unit.test_eks_deploy import TARGET as EKS_TARGET

    return EksDeployer(cluster, alarms=alarms).deploy(RECORD, replace(EKS_TARGET, strategy=EKS_LINEAR), timeout=120)


def test_a_linear_rollout_on_eks_surges_a_step_at_a_time_and_reads_its_alarms_while_it_rolls() -> None:
    from tests.unit.test_eks_deployer import NEW as EKS_NEW
    from tests.unit.test_eks_deployer import FakeCluster

    cluster, alarms = FakeCluster(), Alarms("OK")
    cluster.rolling = 3
    record = _eks(cluster, alarms)
    spec = cluster.deployments["search", "indexer"]["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    assert (spec["minReadySeconds"], spec["progressDeadlineSeconds"]) == (60, 660)
    # the alarms exist before the patch; then short waits, the alarms read before each
    assert cluster.timeouts == ["10s"] * 4 and alarms.reads == 1 + 4
    assert record.image == EKS_NEW and record.strategy == {
        "kind": "linear", "outcome": "promoted", "steps": [{"percent": 100, "seconds": 180, "alarm_state": "OK"}]}  # fmt: skip


def test_an_alarm_during_a_linear_rollout_on_eks_undoes_it() -> None:
    from tests.unit.test_eks_deploy import OLD as EKS_OLD
    from tests.unit.test_eks_deployer import PROXY, FakeCluster

    cluster = FakeCluster()
    cluster.rolling = 5
    with pytest.raises(RolledBackError, match="rolled back during the linear rollout: alarm indexer-errors in ALARM"):
        _eks(cluster, Alarms("OK", "OK", "OK", "ALARM"))
    assert cluster.images() == [EKS_OLD, PROXY]  # `kubectl rollout undo`: the previous pod template
    assert ["rollout", "undo", "deployment/indexer", "--namespace", "search"] in cluster.calls


def test_an_eks_target_takes_linear_or_all_at_once_and_refuses_a_canary(tmp_path: Path) -> None:
    import argparse

    from pipeline.deployers.eks import EksDeployer, deployment_manifest, rolling
    from tests.unit.test_eks_deploy import TARGET as EKS_TARGET

    text = (ROOT / "platform.toml").read_text()
    anchor = '    container = "indexer"\n    health_path = ""'
    broken = tmp_path / "platform.toml"
    broken.write_text(text.replace(anchor, anchor + '\n    strategy = { kind = "canary" }', 1))
    with pytest.raises(ConfigError, match=r"deploy\.eks\.strategy\.kind: an EKS Deployment rolls out all at once or "
                                          r"linearly; a canary needs a traffic split"):  # fmt: skip
        load(broken)
    parser = argparse.ArgumentParser()
    EksDeployer.add_arguments(parser)
    target = replace(EKS_TARGET, strategy=EKS_LINEAR)
    assert EksDeployer.target_from_args(parser.parse_args(list(target.cli_args()))) == target
    # what the patch makes of the Deployment is valid Kubernetes, as the Deployment itself is checked
    import kubernetes_validate

    manifest = deployment_manifest("search", "indexer", "indexer", "r@sha256:" + "1" * 64)
    manifest["spec"].update(rolling(EKS_LINEAR))
    kubernetes_validate.validate(manifest, "1.32", strict=True)


# ECS (#29): ECS's own CANARY and LINEAR deployments; Slipway sets them, waits, and reads the outcome.
ECS_CANARY = Strategy(kind="canary", percent=10, bake_seconds=300, alarms=("api-5xx",))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy(), {"strategy": "ROLLING"}),
        (ECS_CANARY, {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
                      "bakeTimeInMinutes": 5, "alarms": {"alarmNames": ["api-5xx"], "enable": True, "rollback": True}}),
        (Strategy(kind="linear", step_percent=20, interval_seconds=90),
         {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 20.0, "stepBakeTimeInMinutes": 2},
          "bakeTimeInMinutes": 2}),
    ],
    ids=["all at once", "canary", "linear"],
)  # fmt: skip
def test_ecs_is_asked_for_its_own_strategy_in_the_shape_its_api_takes(strategy: Strategy, expected: Any) -> None:
    """botocore's Stubber checks the UpdateService request against ECS's API model (moto ignores the strategy: this
    is what covers its shape), the circuit breaker kept in every case."""
    import boto3
    from botocore.stub import Stubber

    from pipeline.deployers.ecs import deployment_configuration

    configuration = deployment_configuration(strategy)
    assert configuration == {"deploymentCircuitBreaker": {"enable": True, "rollback": True}, **expected}
    ecs = boto3.client("ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    request = {"cluster": "payments", "service": "api", "taskDefinition": "api:2",
               "deploymentConfiguration": configuration}  # fmt: skip
    with Stubber(ecs) as stubbed:
        stubbed.add_response("update_service", {}, request)
        ecs.update_service(**request)


def test_an_ecs_canary_that_ecs_rolled_back_fails_the_deploy_with_the_previous_revision_in_the_record() -> None:
    from tests.unit.test_ecs_deployer import PREVIOUS as ECS_PREVIOUS
    from tests.unit.test_ecs_deployer import RELEASE as ECS_RELEASE
    from tests.unit.test_ecs_deployer import TARGET as ECS_TARGET
    from tests.unit.test_ecs_deployer import TASK, FakeEcs, _deployer

    fake = FakeEcs(rollout=("IN_PROGRESS", "FAILED", "ROLLED_BACK"))  # ECS's alarm rollback, as ECS lists it
    with pytest.raises(RolledBackError, match="ECS's canary deployment rolled back") as raised:
        _deployer(fake).deploy(ECS_RELEASE, replace(ECS_TARGET, strategy=ECS_CANARY), timeout=5)
    record = raised.value.record
    assert record is not None
    assert (record.image, record.changed, record.revision) == (ECS_PREVIOUS, False, TASK.format(1))
    assert record.strategy == {"kind": "canary", "outcome": "rolled back", "steps": [],
                               "reason": f"ECS rolled {TASK.format(2)} back"}  # fmt: skip
    promoted = _deployer(FakeEcs()).deploy(ECS_RELEASE, replace(ECS_TARGET, strategy=ECS_CANARY), timeout=5)
    assert promoted.strategy == {"kind": "canary", "outcome": "promoted", "steps": [
        {"percent": 10, "seconds": 300, "alarm_state": ""}, {"percent": 100, "seconds": 0, "alarm_state": ""}]}  # fmt: skip


def test_a_deploy_job_that_shifts_traffic_has_time_for_its_bakes(synthesized: dict[str, Any]) -> None:
    """The canaries bake 20 s (dev's Lambda), 10 s (prod's) and 60 s (prod's ECS) (#29): their jobs' timeouts grow by
    a minute; dev's ECS job keeps 60."""
    timeouts = {
        p["Name"].rsplit("_", 1)[-1]: p["TimeoutInMinutes"]
        for p in projects_all(synthesized["templates"][PAYMENTS])
        if "slipway deploy" in p["Source"]["BuildSpec"]
    }
    assert timeouts == {"DeployDevLambda": 61, "DeployDevEcs": 60, "DeployProdLambda": 61, "DeployProdEcs": 61}


def test_slipway_status_still_makes_every_deployer_without_target_options() -> None:
    """`slipway status` makes each deployer from a bare namespace (it reads targets, it deploys none): the alarms a
    shift watches must not need the deploy's options to be built."""
    import argparse

    import boto3

    from pipeline.deployers import DEPLOYERS

    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    for kind, deployer in DEPLOYERS.items():
        assert deployer.from_args(argparse.Namespace(render_only=None), session) is not None, kind
