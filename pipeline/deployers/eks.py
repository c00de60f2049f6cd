"""Deploy to Amazon EKS: patch one container's image to the index digest, watch the rollout, undo on failure.

A strategic-merge patch of the one image (``kubectl patch``), not a re-apply of a templated manifest: whatever else the
team manages on the Deployment (replicas, resources, HPA) is left alone. The deploy role reaches the cluster through an
EKS access entry scoped to the namespace; the kubeconfig is built from ``eks:DescribeCluster`` with
``aws eks get-token`` as its credential plugin.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.arguments import dns_label
from pipeline.config.model import EksTarget
from pipeline.config.strategy import Strategy
from pipeline.deployers import shift
from pipeline.deployers.base import (
    DeployError,
    DeployRecord,
    Grant,
    NamespaceAccess,
    Permission,
    Serving,
    Verification,
)  # fmt: skip
from pipeline.records import ImageRecord

_T = TypeVar("_T")


class Kubectl(Protocol):
    def __call__(self, args: Sequence[str]) -> str: ...


class KubectlCli:
    """Runs the real kubectl; a non-zero exit raises DeployError with its message. ``environment``: variables over the
    process's own for kubectl and its credential plugin (``aws eks get-token`` acting as the deploy's session)."""

    def __init__(
        self, binary: str = "kubectl", kubeconfig: Path | None = None, environment: Mapping[str, str] | None = None
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.environment = dict(environment or {})

    def __call__(self, args: Sequence[str]) -> str:
        argv = [self.binary, *(["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []), *args]
        env = {**os.environ, **self.environment} if self.environment else None
        try:
            completed = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        except FileNotFoundError as exc:
            raise DeployError(f"{self.binary} not found on PATH") from exc
        if completed.returncode != 0:
            raise DeployError(f"kubectl {' '.join(args[:2])}: {completed.stderr.strip() or completed.stdout.strip()}")
        return completed.stdout


# The deploy's intent and rollback target, kept on the Deployment itself (as Lambda and ECS keep them in tags): a
# CodeBuild retry starts from a clean workspace, and the live image alone cannot say what it replaced.
IMAGE_ANNOTATION = "slipway.dev/image"
PREVIOUS_ANNOTATION = "slipway.dev/previous-image"
VERIFIED_ANNOTATION = "slipway.dev/verified"  # what proved the last deployed image answers (``slipway status``)


def rolling(strategy: Strategy) -> dict[str, Any]:
    """A linear strategy as a Deployment's own rollout: ``step_percent`` more pods at a time, none taken away first,
    each step's pods ready for ``interval_seconds`` before the next (``minReadySeconds``); no progress for that long
    plus 10 minutes fails the rollout."""
    return {
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": f"{strategy.step_percent}%", "maxUnavailable": 0},
        },
        "minReadySeconds": strategy.interval_seconds,
        "progressDeadlineSeconds": strategy.interval_seconds + 600,
    }


def image_patch(container: str, image: str, previous: str = "") -> dict[str, Any]:
    """Strategic-merge patch: containers merge by name, so only this container's image changes; the annotations
    saying what it replaces travel in the same patch (one change, never one without the other)."""
    patch: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
    if previous:
        patch["metadata"] = {"annotations": {IMAGE_ANNOTATION: image, PREVIOUS_ANNOTATION: previous}}
    return patch


def render(manifest: dict[str, Any], container: str, image: str) -> dict[str, Any]:
    """The Deployment as it will be after the patch (for local mode and schema checks)."""
    if manifest.get("kind") != "Deployment":
        raise DeployError(f"manifest: expected kind Deployment, got {manifest.get('kind')!r}")
    rendered = copy.deepcopy(manifest)
    _find_container(rendered, container)["image"] = image
    return rendered


def _find_container(manifest: dict[str, Any], container: str) -> dict[str, Any]:
    containers = manifest.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    for spec in containers:
        if spec.get("name") == container:
            return spec  # type: ignore[no-any-return]
    names = [c.get("name") for c in containers]
    raise DeployError(
        f"Deployment {manifest.get('metadata', {}).get('name')!r}: no container {container!r} (has {names})"
    )


def deployment_manifest(namespace: str, deployment: str, container: str, image: str) -> dict[str, Any]:
    """A minimal Deployment for local mode, where no cluster holds the team's own manifest."""
    labels = {"app.kubernetes.io/name": deployment}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [{"name": container, "image": image}],
                },
            },
        },
    }


def kubeconfig_for(cluster: str, *, eks: Any = None) -> dict[str, Any]:
    """A kubeconfig reaching ``cluster`` as whoever runs it (``aws eks get-token`` with the process's credentials)."""
    try:
        described = (eks or boto3.Session().client("eks")).describe_cluster(name=cluster)["cluster"]
    except ClientError as exc:
        raise DeployError(
            f"EKS cluster {cluster}: {exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
        ) from exc
    except BotoCoreError as exc:
        raise DeployError(f"EKS cluster {cluster}: {exc}") from exc
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": described["endpoint"],
                    "certificate-authority-data": described["certificateAuthority"]["data"],
                },
            }
        ],
        "users": [
            {
                "name": cluster,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster],
                    }
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
    }


class EksDeployer:
    kind: ClassVar[str] = EksTarget.kind
    help: ClassVar[str] = "patch the Deployment's container image to the index digest"

    def __init__(
        self,
        kubectl: Kubectl | None = None,
        *,
        eks: Any = None,
        environment: Mapping[str, str] | None = None,
        render_only: Path | None = None,
        alarms: shift.Alarms | None = None,
    ) -> None:
        """``environment``: what kubectl's credential plugin acts as (the deploy's session); ``render_only``: write
        the Deployment as it would be to this file and touch no cluster; ``alarms``: what a linear rollout watches."""
        self._kubectl = kubectl
        self._eks = eks
        self._environment = environment
        self._render_only = render_only
        self._alarms = alarms

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> EksDeployer:
        from pipeline.deployers.workload import environment_of

        alarms = shift.CloudWatchAlarms(
            session,
            f"EKS deployment {getattr(args, 'cluster', '')}/{getattr(args, 'deployment', '')}",
        )
        return cls(eks=session.client("eks"), environment=environment_of(session), render_only=args.render_only,
                   alarms=alarms)  # fmt: skip

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--cluster", required=True)
        parser.add_argument("--namespace", required=True, type=dns_label)
        parser.add_argument("--deployment", required=True, type=dns_label)
        parser.add_argument("--container", required=True, type=dns_label)
        parser.add_argument(
            "--render-only", type=Path, metavar="FILE", help="write the rendered Deployment; touch no cluster"
        )
        parser.add_argument("--health-path", default="", help="the image's own health path (the local replay GETs it)")
        shift.add_arguments(parser, kinds=("all-at-once", "linear"))

    @staticmethod
    def target_from_args(args: argparse.Namespace) -> EksTarget:
        return EksTarget(
            cluster=args.cluster,
            namespace=args.namespace,
            deployment=args.deployment,
            container=args.container,
            health_path=args.health_path,
            strategy=shift.from_args(args),
        )

    @staticmethod
    def permissions(target: EksTarget) -> Sequence[Permission]:
        # Kubernetes permissions come from an access entry limited to the one namespace.
        cluster_arn = f"arn:{{partition}}:eks:{{region}}:{{account}}:cluster/{target.cluster}"
        return (
            Grant(("eks:DescribeCluster",), (cluster_arn,)),
            NamespaceAccess(target.cluster, target.namespace),
            *shift.alarm_grants(target.strategy),
        )

    def deploy(self, record: ImageRecord, target: EksTarget, *, timeout: float = 300) -> DeployRecord:
        return self.deploy_ref(record.index_uri, target, timeout=timeout)

    def deploy_ref(self, image: str, target: EksTarget, *, timeout: float = 300) -> DeployRecord:
        if self._render_only is not None:
            manifest = deployment_manifest(target.namespace, target.deployment, target.container, image)
            self._render_only.write_text(json.dumps(manifest, indent=2) + "\n")
            return DeployRecord(target.label, image, "", changed=True, revision=f"rendered to {self._render_only}")
        return self._with_kubectl(target, lambda kubectl: self._deploy(kubectl, image, target, timeout))

    def serving(self, target: EksTarget) -> Serving:
        """The container's image in the Deployment's pod template, and the image Slipway's last deploy annotated."""
        return self._with_kubectl(target, lambda kubectl: _serving(kubectl, target))

    def record_verified(self, target: EksTarget, image: str, verified: str) -> None:
        """An annotation on the Deployment's own metadata (not its pod template: no new rollout)."""
        ref = ["deployment", target.deployment, "--namespace", target.namespace]
        patch = json.dumps({"metadata": {"annotations": {VERIFIED_ANNOTATION: verified}}})
        self._with_kubectl(target, lambda kubectl: kubectl(["patch", *ref, "--type", "strategic", "--patch", patch]))

    def _with_kubectl(self, target: EksTarget, use: Callable[[Kubectl], _T]) -> _T:
        if self._kubectl is not None:
            return use(self._kubectl)
        with tempfile.TemporaryDirectory(prefix="slipway-kube-") as directory:
            config = Path(directory) / "kubeconfig.json"
            config.write_text(json.dumps(kubeconfig_for(target.cluster, eks=self._eks)))
            return use(KubectlCli(kubeconfig=config, environment=self._environment))

    def _deploy(self, kubectl: Kubectl, image: str, target: EksTarget, timeout: float) -> DeployRecord:
        namespace, deployment, container = target.namespace, target.deployment, target.container
        what = f"EKS deployment {target.cluster}/{namespace}/{deployment}"
        ref = ["deployment", deployment, "--namespace", namespace]
        current = _read(kubectl, ref, what)
        previous = str(_find_container(current, container).get("image", ""))
        annotations = current.get("metadata", {}).get("annotations", {}) or {}
        revision = str(annotations.get("deployment.kubernetes.io/revision", ""))
        if previous == image:
            # A retry: the rollback target is what an earlier attempt at this image recorded on the Deployment, and
            # its rollout is judged (and waited for) instead of reported as "nothing changed" unwatched.
            recorded = (
                str(annotations.get(PREVIOUS_ANNOTATION, "")) if annotations.get(IMAGE_ANNOTATION) == image else ""
            )
            waited, _ = self._rollout(kubectl, target, timeout, what)
            return DeployRecord(target.label, image, recorded, changed=False, revision=revision, waited=waited)
        patch = image_patch(container, image, previous)
        if target.strategy.kind == "linear":
            patch["spec"].update(rolling(target.strategy))
            if target.strategy.alarms:
                shift.watched(self._alarms, what).states(
                    target.strategy.alarms
                )  # every alarm exists before anything changes
        kubectl(["patch", *ref, "--type", "strategic", "--patch", json.dumps(patch)])
        try:
            waited, moved = self._rollout(kubectl, target, timeout, what)
        except DeployError as exc:
            try:
                kubectl(["rollout", "undo", f"deployment/{deployment}", "--namespace", namespace])
            except DeployError as undo:
                raise DeployError(
                    f"{what}: rollout of {image} did not finish ({exc}) and the undo failed too ({undo}); "
                    f"{_live(kubectl, ref, container)}; the Deployment keeps {previous} as its rollback target "
                    f"(annotation {PREVIOUS_ANNOTATION}): run the deploy again to finish it, or roll back"
                ) from undo
            if isinstance(exc, shift.RolledBackError):  # an alarm fired: what serves now is the previous image
                exc.record = DeployRecord(target.label, previous, previous, changed=False, strategy=exc.shift.json())
                raise
            raise DeployError(
                f"{what}: rollout of {image} did not finish ({exc}); rolled back: {_live(kubectl, ref, container)}"
            ) from exc
        verified = Verification(True, "kubectl rollout status", 0) if waited else None
        return DeployRecord(target.label, image, previous, changed=True, waited=waited, verified=verified,
                            strategy=moved)  # fmt: skip

    def _rollout(
        self, kubectl: Kubectl, target: EksTarget, timeout: float, what: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """All at once: ``kubectl rollout status`` within ``timeout``. Linear: the same in short waits, its alarms
        read between them (one in ALARM: RolledBackError, the caller undoes), the steps' time added to ``timeout``."""
        strategy = target.strategy
        if strategy.kind != "linear" or timeout <= 0:
            return _rollout(kubectl, target.deployment, target.namespace, timeout), None
        alarms = shift.watched(self._alarms, what)
        deadline = time.monotonic() + timeout + strategy.seconds
        seen = ""
        while True:
            state, firing = shift.read(alarms, strategy.alarms)
            if firing:
                reason = f"rolled back during the linear rollout: alarm {firing} in ALARM"
                stopped = shift.Shift(
                    "linear", (shift.Step(100, strategy.seconds, "ALARM"),), shift.ROLLED_BACK, reason
                )
                raise shift.RolledBackError(f"{what}: {reason}; the previous pod template is rolled back", stopped)
            seen = shift.worse(seen, state)
            try:
                _rollout(kubectl, target.deployment, target.namespace, min(shift.POLL_SECONDS, timeout))
            except DeployError as exc:
                if "timed out waiting" not in str(exc) or time.monotonic() >= deadline:
                    raise
                continue
            return True, shift.Shift("linear", (shift.Step(100, strategy.seconds, seen),)).json()


def _serving(kubectl: Kubectl, target: EksTarget) -> Serving:
    ref = ["deployment", target.deployment, "--namespace", target.namespace]
    current = _read(kubectl, ref, f"EKS deployment {target.cluster}/{target.namespace}/{target.deployment}")
    annotations = current.get("metadata", {}).get("annotations", {}) or {}
    return Serving(
        str(_find_container(current, target.container).get("image", "")), str(annotations.get(IMAGE_ANNOTATION, "")),
        str(annotations.get("deployment.kubernetes.io/revision", "")),
        str(current.get("metadata", {}).get("creationTimestamp", "")), str(annotations.get(PREVIOUS_ANNOTATION, "")),
        str(annotations.get(VERIFIED_ANNOTATION, "")),
    )  # fmt: skip


def _read(kubectl: Kubectl, ref: list[str], target: str) -> dict[str, Any]:
    output = kubectl(["get", *ref, "--output", "json"])
    try:
        found = json.loads(output)
    except ValueError as exc:
        raise DeployError(f"{target}: kubectl get answered no JSON ({output[:200]!r})") from exc
    if not isinstance(found, dict):
        raise DeployError(f"{target}: kubectl get answered {output[:200]!r}, not a Deployment")
    return found


def _live(kubectl: Kubectl, ref: list[str], container: str) -> str:
    """What the Deployment runs now, read back (never assumed)."""
    try:
        image = _find_container(_read(kubectl, ref, ref[1]), container).get("image", "")
    except DeployError as exc:
        return f"what is live could not be read back ({exc})"
    return f"the Deployment now runs {image}"


def _rollout(kubectl: Kubectl, deployment: str, namespace: str, timeout: float) -> bool:
    """Wait for the rollout within ``timeout`` seconds (rounded up to whole seconds: kubectl reads ``--timeout=0s`` as
    "wait forever"); 0 does not wait. True when it waited."""
    if timeout <= 0:
        return False
    seconds = max(1, math.ceil(timeout))
    kubectl(["rollout", "status", f"deployment/{deployment}", "--namespace", namespace, f"--timeout={seconds}s"])
    return True
