"""The ECS deployer's whole path against a fake of the ECS API that keeps revisions and deployments as ECS does
(moto-free, so mutation testing runs it): one image changed, roles checked, circuit breaker, steady state, health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.config import EcsTarget
from pipeline.deployers import ecs as ecs_module
from pipeline.deployers.base import DeployError, DeployRecord, Verification, verified_mark
from pipeline.deployers.ecs import IMAGE_TAG, PREVIOUS_TAG, EcsDeployer
from tests.unit.test_deploy_base import INDEX, PREVIOUS, RELEASE, REPO

NEW = f"{REPO}@{INDEX}"
TASK = "arn:aws:ecs:eu-west-1:111111111111:task-definition/api:{}"
SERVICE = "arn:aws:ecs:eu-west-1:111111111111:service/payments/api"
TARGET = EcsTarget(cluster="payments", service="api", container="api", cpu_architecture="x86_64",
                   task_roles=("payments-api-task",))  # fmt: skip


class FakeEcs:
    """ECS for one service, payments/api: task-definition revisions (with tags) and the service's deployments, which
    move one step per DescribeServices while a rollout runs, through the states in ``rollout``:

    - ``IN_PROGRESS``: the new PRIMARY deployment starts tasks, the previous one still listed (ACTIVE);
    - ``DRAINED``: the previous deployment is gone, the new one not yet steady;
    - ``COMPLETED``: the new deployment alone, steady;
    - ``FAILED``: the circuit breaker's rollback as ECS shows it: the failed deployment stays listed (ACTIVE,
      FAILED) and a new PRIMARY deployment of the last completed revision takes over (completed on the next look);
    - ``ROLLED_BACK``: that rollback already complete, the failed deployment no longer listed;
    - ``STOPPED``: the circuit breaker with no completed deployment to go back to: the PRIMARY stays FAILED.

    Names are checked as ECS checks them: another cluster is ClusterNotFoundException, another service is missing."""

    def __init__(self, *, architecture: str | None = "X86_64", roles: tuple[str, ...] = ("payments-api-task",),
                 rollout: tuple[str, ...] = ("COMPLETED",)) -> None:  # fmt: skip
        definition = {
            "family": "api", "taskDefinitionArn": TASK.format(1), "cpu": "256", "memory": "512",
            "runtimePlatform": {"cpuArchitecture": architecture, "operatingSystemFamily": "LINUX"},
            "containerDefinitions": [{"name": "api", "image": PREVIOUS}, {"name": "sidecar", "image": "envoy@x"}],
            "status": "ACTIVE", "revision": 1,
        }  # fmt: skip
        if architecture is None:  # a definition registered without runtimePlatform runs on X86_64
            del definition["runtimePlatform"]
        if roles:
            definition["taskRoleArn"] = f"arn:aws:iam::111111111111:role/{roles[0]}"
        for extra in roles[1:]:
            definition["executionRoleArn"] = f"arn:aws:iam::111111111111:role/service-role/{extra}"
        self.revisions: dict[str, tuple[dict[str, Any], list[dict[str, str]]]] = {TASK.format(1): (definition, [])}
        self.deployments = [{"status": "PRIMARY", "taskDefinition": TASK.format(1), "rolloutState": "COMPLETED"}]
        self.rollout = list(rollout)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, str] = {}
        self.status = "ACTIVE"
        self.service_tags: list[dict[str, str]] = []

    def _call(self, operation: str, **kwargs: Any) -> None:
        self.calls.append((operation, kwargs))
        if operation in self.fail:
            raise ClientError({"Error": {"Code": self.fail[operation], "Message": "no"}}, operation)
        if "cluster" in kwargs and kwargs["cluster"] != "payments":
            raise ClientError(
                {"Error": {"Code": "ClusterNotFoundException", "Message": "Cluster not found."}}, operation
            )

    def describe_services(self, cluster: str, services: list[str], include: list[str] | None = None) -> dict[str, Any]:
        self._call("describe_services", cluster=cluster, services=services)
        if services != ["api"]:
            return {
                "services": [],
                "failures": [{"arn": f"service/{cluster}/{s}", "reason": "MISSING"} for s in services],
            }
        if self.deployments[0]["rolloutState"] == "IN_PROGRESS":
            self._advance(self.rollout.pop(0) if len(self.rollout) > 1 else self.rollout[0])
        primary = self.deployments[0]
        tags = {"tags": list(self.service_tags)} if include == ["TAGS"] else {}
        return {"services": [{"status": self.status, "taskDefinition": primary["taskDefinition"], "serviceArn": SERVICE,
                              "deployments": [dict(d) for d in self.deployments], **tags}]}  # fmt: skip

    def tag_resource(self, resourceArn: str, tags: list[dict[str, str]]) -> None:
        self._call("tag_resource", resourceArn=resourceArn)
        assert resourceArn == SERVICE, resourceArn
        keys = {t["key"] for t in tags}
        self.service_tags = [t for t in self.service_tags if t["key"] not in keys] + tags

    def _advance(self, state: str) -> None:
        primary, *others = self.deployments
        if state == "DRAINED":
            self.deployments = [primary]
        elif state == "COMPLETED":
            self.deployments = [{**primary, "rolloutState": "COMPLETED"}]
        elif state == "ROLLED_BACK":
            self.deployments = [{**others[0], "status": "PRIMARY", "rolloutState": "COMPLETED"}]
        elif state == "STOPPED":
            self.deployments = [{**primary, "rolloutState": "FAILED"}]
        elif state == "FAILED":
            [last] = [d for d in others if d["rolloutState"] == "COMPLETED"][:1]
            back = {"status": "PRIMARY", "taskDefinition": last["taskDefinition"], "rolloutState": "IN_PROGRESS"}
            self.deployments = [back, {**primary, "status": "ACTIVE", "rolloutState": "FAILED"}]
            self.rollout = ["COMPLETED"]

    def describe_task_definition(self, taskDefinition: str, include: list[str] | None = None) -> dict[str, Any]:
        self._call("describe_task_definition", taskDefinition=taskDefinition)
        if include not in (None, ["TAGS"]):
            raise ClientError({"Error": {"Code": "InvalidParameterException", "Message": f"include {include}"}}, "x")
        definition, tags = self.revisions[taskDefinition]
        return {"taskDefinition": dict(definition), **({"tags": tags} if include else {})}

    def register_task_definition(self, **revision: Any) -> dict[str, Any]:
        self._call("register_task_definition", **revision)
        arn = TASK.format(len(self.revisions) + 1)
        tags = revision.pop("tags", [])
        self.revisions[arn] = ({**revision, "taskDefinitionArn": arn}, tags)
        return {"taskDefinition": {"taskDefinitionArn": arn}}

    def update_service(self, cluster: str, service: str, **kwargs: Any) -> None:
        self._call("update_service", cluster=cluster, service=service, **kwargs)
        if service != "api":
            raise ClientError({"Error": {"Code": "ServiceNotFoundException", "Message": "Service not found."}}, "x")
        old = [{**d, "status": "ACTIVE"} for d in self.deployments]
        self.deployments = [{"status": "PRIMARY", "taskDefinition": kwargs["taskDefinition"],
                             "rolloutState": "IN_PROGRESS"}, *old]  # fmt: skip


def _deployer(fake: FakeEcs) -> EcsDeployer:
    return EcsDeployer(fake, poll_seconds=0)


def test_a_deploy_registers_a_revision_differing_only_in_the_image_and_waits_for_steady_state() -> None:
    fake = FakeEcs()
    record = _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert record == DeployRecord("ecs:payments/api", NEW, PREVIOUS, changed=True, revision=TASK.format(2),
                                  waited=True, verified=Verification(True, "steady", 0))  # fmt: skip
    new, tags = fake.revisions[TASK.format(2)]
    old, _ = fake.revisions[TASK.format(1)]
    assert new["containerDefinitions"] == [{"name": "api", "image": NEW}, {"name": "sidecar", "image": "envoy@x"}]
    assert {k: v for k, v in new.items() if k not in ("containerDefinitions", "taskDefinitionArn")} == {
        k: v for k, v in old.items() if k not in ("containerDefinitions", "taskDefinitionArn", "status", "revision")
    }  # nothing but the image moved; the read-only fields are not sent back
    assert tags == [{"key": PREVIOUS_TAG, "value": PREVIOUS}, {"key": IMAGE_TAG, "value": NEW}]
    assert _deployer(fake).serving(TARGET).deployed == NEW  # what `slipway status` reads back from the revision
    [update] = [kwargs for op, kwargs in fake.calls if op == "update_service"]
    assert update == {"cluster": "payments", "service": "api", "taskDefinition": TASK.format(2),
                      "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                  "strategy": "ROLLING"}}  # fmt: skip


def test_the_verification_mark_is_a_tag_on_the_service_read_back_for_the_serving_image_only() -> None:
    fake = FakeEcs()
    _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert _deployer(fake).serving(TARGET).verification == ""  # nothing recorded yet
    when = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    _deployer(fake).record_verified(TARGET, NEW, verified_mark(NEW, Verification(True, "steady", 0), when))
    assert _deployer(fake).serving(TARGET).verification == "steady 0 at 2026-12-04T09:30:00Z"
    _deployer(fake).deploy_ref(PREVIOUS, TARGET, timeout=5)  # another image serves: the mark is not its own
    assert _deployer(fake).serving(TARGET).verification == ""


def test_without_a_wait_the_deploy_records_that_it_did_not_wait() -> None:
    record = _deployer(FakeEcs(rollout=("IN_PROGRESS",))).deploy(RELEASE, TARGET, timeout=0)
    assert (record.changed, record.waited, record.verified) == (True, False, None)
    assert _deployer(FakeEcs()).deploy(RELEASE, TARGET, timeout=1).waited  # any wait at all is a wait


def test_a_rollback_finished_before_the_first_look_is_never_taken_for_steady_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ECS may drop the failed deployment from the list once the rollback completes: the service is steady, but on the
    previous revision, so the deploy must not end as a success; it ends at its timeout."""
    from tests.unit.test_deploy_base import _Clock

    monkeypatch.setattr("pipeline.deployers.base.time", _Clock())
    fake = FakeEcs(rollout=("ROLLED_BACK",))
    with pytest.raises(DeployError, match=r"waiting for steady state on .*:2 .*: timed out after 30s$"):
        EcsDeployer(fake, poll_seconds=5).deploy(RELEASE, TARGET, timeout=30)
    assert [d["taskDefinition"] for d in fake.deployments] == [TASK.format(1)]


def test_a_retry_on_a_revision_slipway_did_not_register_claims_no_rollback_target() -> None:
    fake = FakeEcs()
    definition, _ = fake.revisions[TASK.format(1)]
    definition["containerDefinitions"] = [{"name": "api", "image": NEW}]  # someone deployed this digest by hand
    record = _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert (record.changed, record.previous_image, record.revision) == (False, "", TASK.format(1))


def test_a_retry_on_the_serving_image_judges_the_rollout_in_flight_instead_of_claiming_nothing_changed() -> None:
    fake = FakeEcs(rollout=("IN_PROGRESS", "IN_PROGRESS", "COMPLETED"))
    _deployer(fake).deploy(RELEASE, TARGET, timeout=0)  # the first attempt's job ended before the rollout did
    retry = _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert retry == DeployRecord("ecs:payments/api", NEW, PREVIOUS, changed=True, revision=TASK.format(2), waited=True)
    assert len(fake.revisions) == 2  # nothing registered again
    settled = _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert (settled.changed, settled.waited, settled.previous_image) == (False, False, PREVIOUS)


def test_a_failed_rollout_is_reported_whether_watched_or_found_by_a_retry() -> None:
    watched = FakeEcs(rollout=("IN_PROGRESS", "FAILED"))
    with pytest.raises(DeployError, match=rf"^ECS service payments/api: rollout of {TASK.format(2)} failed; the "
                                          "circuit breaker rolled back$"):  # fmt: skip
        _deployer(watched).deploy(RELEASE, TARGET, timeout=5)
    assert watched.deployments[0]["taskDefinition"] == TASK.format(1)  # the rollback serves
    found = FakeEcs(rollout=("STOPPED",))
    _deployer(found).deploy(RELEASE, TARGET, timeout=0)
    with pytest.raises(DeployError, match="failed; the circuit breaker rolled back"):
        _deployer(found).deploy(RELEASE, TARGET, timeout=5)


def test_a_retry_after_the_rollback_deploys_again_and_a_retry_while_draining_waits_for_it() -> None:
    fake = FakeEcs(rollout=("FAILED",))
    _deployer(fake).deploy(RELEASE, TARGET, timeout=0)  # the job ended; then the circuit breaker rolled back
    fake.describe_services("payments", ["api"])
    fake.rollout = ["IN_PROGRESS", "DRAINED", "DRAINED", "COMPLETED"]  # the next attempt starts
    retry = _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    assert (retry.changed, retry.revision, retry.waited, retry.previous_image) == (True, TASK.format(3), True, PREVIOUS)
    assert len(fake.deployments) == 1 and fake.deployments[0]["rolloutState"] == "COMPLETED"


@pytest.mark.parametrize(
    ("deployments", "in_flight"),
    [
        ([("PRIMARY", 2, "IN_PROGRESS")], True),  # the previous tasks are gone, the new ones not steady yet
        ([("PRIMARY", 2, "COMPLETED"), ("ACTIVE", 1, "COMPLETED")], True),  # the previous tasks still draining
        ([("PRIMARY", 2, "COMPLETED")], False),
    ],
)
def test_a_retry_on_the_serving_image_waits_for_what_is_still_in_flight(deployments: list[Any], in_flight: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    fake = FakeEcs()
    _deployer(fake).deploy(RELEASE, TARGET, timeout=5)
    fake.deployments = [{"status": s, "taskDefinition": TASK.format(n), "rolloutState": r} for s, n, r in deployments]
    fake.rollout = ["DRAINED"]  # the rollout stays where it is: only the deployer's judgement is under test
    steady: list[Any] = []
    monkeypatch.setattr(EcsDeployer, "_steady", lambda self, *args: steady.append(args) or len(steady) > 1)
    quick = _deployer(fake).deploy(RELEASE, TARGET, timeout=0)  # judged, not waited for
    assert (quick.changed, quick.waited, steady) == (in_flight, False, [])
    retry = _deployer(fake).deploy(RELEASE, TARGET, timeout=1)
    assert (retry.changed, retry.waited, retry.revision) == (in_flight, in_flight, TASK.format(2))
    assert steady == (2 * [("payments", "api", TASK.format(2), "ECS service payments/api")] if in_flight else [])


def test_a_rollout_that_never_settles_ends_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_deploy_base import _Clock

    clock = _Clock()
    monkeypatch.setattr("pipeline.deployers.base.time", clock)
    with pytest.raises(DeployError, match=r"^ECS service payments/api: waiting for steady state on .*:2 \(the circuit "
                                          r"breaker rolls back a failed rollout\): timed out after 30s$"):  # fmt: skip
        EcsDeployer(FakeEcs(rollout=("IN_PROGRESS",)), poll_seconds=5).deploy(RELEASE, TARGET, timeout=30)


@pytest.mark.parametrize(
    ("shape", "target", "message"),
    [
        ({"architecture": "ARM64"}, TARGET,
         f"runtimePlatform.cpuArchitecture ARM64 needs linux/arm64, which image {NEW} lacks (has linux/amd64)"),
        ({"roles": ("payments-api-task", "admin")}, TARGET,
         "the task definition passes role(s) admin, which ecs.task_roles does not list (the deploy role may pass "
         "only those); add them to platform.toml"),
        ({"roles": ("intruder",)}, TARGET,
         "the task definition passes role(s) intruder, which ecs.task_roles does not list (the deploy role may pass "
         "only those); add them to platform.toml"),
        ({}, EcsTarget(cluster="payments", service="api", container="web", task_roles=("payments-api-task",)),
         "task definition has no container 'web' (has ['api', 'sidecar'])"),
    ],
)  # fmt: skip
def test_what_the_service_cannot_take_is_refused_before_anything_changes(shape: Any, target: EcsTarget,
                                                                         message: str) -> None:  # fmt: skip
    fake = FakeEcs(**shape)
    one_platform = type(RELEASE)(REPO, "t", INDEX, {"linux/amd64": RELEASE.platforms["linux/amd64"]})
    with pytest.raises(DeployError) as raised:
        _deployer(fake).deploy(one_platform, target, timeout=5)
    assert str(raised.value) == f"ECS service payments/api: {message}"
    assert not [op for op, _ in fake.calls if op in ("register_task_definition", "update_service")]


def test_a_task_definition_without_runtime_platform_is_x86_64() -> None:
    amd64_only = type(RELEASE)(REPO, "t", INDEX, {"linux/amd64": RELEASE.platforms["linux/amd64"]})
    assert _deployer(FakeEcs(architecture=None)).deploy(amd64_only, TARGET, timeout=5).changed
    arm64_only = type(RELEASE)(REPO, "t", INDEX, {"linux/arm64": RELEASE.platforms["linux/arm64"]})
    with pytest.raises(DeployError, match=r"cpuArchitecture X86_64 needs linux/amd64, which image .* lacks"):
        _deployer(FakeEcs(architecture=None)).deploy(arm64_only, TARGET, timeout=5)


def test_a_missing_or_inactive_service_and_api_errors_are_named() -> None:
    with pytest.raises(DeployError, match=r"^ECS service payments/web: service not found$"):
        _deployer(FakeEcs()).deploy(RELEASE, EcsTarget(cluster="payments", service="web", container="api"), timeout=5)
    with pytest.raises(DeployError, match=r"^ECS service billing/api: ClusterNotFoundException: Cluster not found\.$"):
        _deployer(FakeEcs()).deploy(RELEASE, EcsTarget(cluster="billing", service="api", container="api"), timeout=5)
    gone = FakeEcs()
    gone.status = "INACTIVE"
    with pytest.raises(DeployError, match=r"^ECS service payments/api: service not found$"):
        _deployer(gone).deploy(RELEASE, TARGET, timeout=5)
    denied = FakeEcs()
    denied.fail["describe_services"] = "AccessDeniedException"
    with pytest.raises(DeployError, match=r"^ECS service payments/api: AccessDeniedException: no$"):
        _deployer(denied).deploy(RELEASE, TARGET, timeout=5)
    refused = FakeEcs()
    refused.fail["update_service"] = "InvalidParameterException"
    with pytest.raises(DeployError, match=r"^ECS service payments/api: UpdateService failed \(InvalidParameterException: "
                                          r"no\); the service names .*task-definition/api:1 now$"):  # fmt: skip
        _deployer(refused).deploy(RELEASE, TARGET, timeout=5)


def test_a_health_url_that_answers_keeps_the_revision_and_one_that_does_not_goes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy = EcsTarget(cluster="payments", service="api", container="api", task_roles=("payments-api-task",),
                        health_url="https://api.example/health")  # fmt: skip
    monkeypatch.setattr(ecs_module, "http_status", lambda url: 200)
    record = _deployer(FakeEcs()).deploy(RELEASE, healthy, timeout=5)
    assert record.verified == Verification(True, "GET https://api.example/health", 200)
    asked: list[str] = []
    monkeypatch.setattr(ecs_module, "http_status", lambda url: asked.append(url) or 503)
    fake = FakeEcs()
    with pytest.raises(DeployError) as raised:
        _deployer(fake).deploy(RELEASE, healthy, timeout=0.05)
    assert str(raised.value) == (
        f"ECS service payments/api: {TASK.format(2)} is steady but GET https://api.example/health answered 503; the "
        f"service is back on {TASK.format(1)}"
    )
    assert fake.calls[-1] == ("update_service", {"cluster": "payments", "service": "api",
                                                 "taskDefinition": TASK.format(1)})  # fmt: skip
    assert asked and set(asked) == {"https://api.example/health"}


def test_http_status_reads_what_a_url_answers() -> None:
    from tests.fakes import health_endpoint

    with health_endpoint() as (url, statuses):
        assert ecs_module.http_status(url) == 200
        statuses[0] = 503
        assert ecs_module.http_status(url) == 503
    assert ecs_module.http_status("http://127.0.0.1:9/never") == 0
    assert ecs_module.http_status("not a url") == 0


def test_a_rollback_deploys_the_recorded_index_without_a_platform_check() -> None:
    fake = FakeEcs(architecture="ARM64")
    record = _deployer(fake).deploy_ref(NEW, TARGET, timeout=5)
    assert record.image == NEW and record.changed
