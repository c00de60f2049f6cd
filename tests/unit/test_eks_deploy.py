"""EKS: the rendered Deployment is valid Kubernetes, matches what kubectl's own patch produces, and the deploy
patches, watches and undoes through kubectl. No cluster runs here, so the deploy path uses a recording kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import kubernetes_validate
import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import EksTarget
from pipeline.deployers.base import DeployError
from pipeline.deployers.eks import EksDeployer, deployment_manifest, image_patch, render
from pipeline.records import ImageRecord, PlatformImage, write
from tests.fakes import released

REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/search/indexer"
TARGET = EksTarget(cluster="search", namespace="search", deployment="indexer", container="indexer")
INDEX = "sha256:" + "a" * 64
RECORD = ImageRecord(
    REPO, "c0ffee1", INDEX,
    {"linux/amd64": PlatformImage("sha256:" + "b" * 64, 1, "m"), "linux/arm64": PlatformImage("sha256:" + "c" * 64, 1, "m")},
)  # fmt: skip
OLD = f"{REPO}@sha256:" + "0" * 64


def live_deployment() -> dict:
    manifest = deployment_manifest("search", "indexer", "indexer", OLD)
    manifest["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "proxy@sha256:" + "9" * 64})
    manifest["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "7"}
    return manifest


def test_rendered_manifest_names_the_index_digest_and_is_valid_kubernetes() -> None:
    rendered = render(live_deployment(), "indexer", RECORD.index_uri)
    containers = rendered["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [f"{REPO}@{INDEX}", "proxy@sha256:" + "9" * 64]
    kubernetes_validate.validate(rendered, "1.32", strict=True)


def test_render_refuses_unknown_container() -> None:
    with pytest.raises(DeployError, match=r"Deployment 'indexer': no container 'web' \(has \['indexer', 'proxy'\]\)"):
        render(live_deployment(), "web", RECORD.index_uri)


def test_patch_matches_kubectls_own_strategic_merge(tmp_path: Path) -> None:
    """kubectl applies our patch offline (--local): the result must equal our render."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    live = tmp_path / "live.json"
    live.write_text(json.dumps(live_deployment()))
    completed = subprocess.run(
        ["kubectl", "patch", "--local", "-f", str(live), "--type", "strategic",
         "-p", json.dumps(image_patch("indexer", RECORD.index_uri)), "-o", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    patched = json.loads(completed.stdout)
    expected = render(live_deployment(), "indexer", RECORD.index_uri)
    assert patched["spec"]["template"]["spec"]["containers"] == expected["spec"]["template"]["spec"]["containers"]


class RecordingKubectl:
    def __init__(self, *, rollout_fails: bool = False, undo_fails: bool = False, current: dict | None = None) -> None:
        self.calls: list[list[str]] = []
        self.rollout_fails = rollout_fails
        self.undo_fails = undo_fails
        self.current = current or live_deployment()

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        if args[0] == "get":
            return json.dumps(self.current)
        if args[:2] == ["rollout", "status"] and self.rollout_fails:
            raise DeployError("kubectl rollout status: error: timed out waiting for the condition")
        if args[:2] == ["rollout", "undo"] and self.undo_fails:
            raise DeployError("kubectl rollout undo: error: no rollout history found")
        return ""


def test_deploy_patches_one_image_and_waits_for_rollout() -> None:
    kubectl = RecordingKubectl()
    record = EksDeployer(kubectl).deploy(RECORD, TARGET, timeout=120)
    verbs = [c[:2] for c in kubectl.calls]
    assert verbs == [["get", "deployment"], ["patch", "deployment"], ["rollout", "status"]]
    patch = json.loads(kubectl.calls[1][kubectl.calls[1].index("--patch") + 1])
    assert patch == image_patch("indexer", f"{REPO}@{INDEX}")
    assert "--timeout=120s" in kubectl.calls[2]
    assert record.changed and record.previous_image == OLD


def test_failed_rollout_is_undone_and_reported() -> None:
    kubectl = RecordingKubectl(rollout_fails=True)
    with pytest.raises(
        DeployError,
        match=rf"EKS deployment search/search/indexer: rollout of {REPO}@{INDEX} did not finish .* rolled back to {OLD}",
    ):
        EksDeployer(kubectl).deploy(RECORD, TARGET)
    assert kubectl.calls[-1][:2] == ["rollout", "undo"]


def test_second_run_changes_nothing() -> None:
    kubectl = RecordingKubectl(current=render(live_deployment(), "indexer", RECORD.index_uri))
    record = EksDeployer(kubectl).deploy(RECORD, TARGET)
    assert not record.changed and [c[0] for c in kubectl.calls] == ["get"]


def test_render_only_writes_a_valid_deployment(tmp_path: Path) -> None:
    registry, record = released(REPO)
    image_json = tmp_path / "image.json"
    write(image_json, record)
    out = tmp_path / "deployment.json"
    deploy(EksDeployer(render_only=out), TARGET, image_json=image_json, out=tmp_path / "r.json", registry=registry)
    manifest = json.loads(out.read_text())
    kubernetes_validate.validate(manifest, "1.32", strict=True)
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"] == record.index_uri


def test_a_failed_undo_says_the_new_image_may_still_be_live() -> None:
    kubectl = RecordingKubectl(rollout_fails=True, undo_fails=True)
    with pytest.raises(
        DeployError,
        match=rf"did not finish .* and the undo failed too \(kubectl rollout undo: error: no rollout history found\): "
        rf"the new image {REPO}@{INDEX} may still be live; roll back to {OLD} by hand",
    ):
        EksDeployer(kubectl).deploy(RECORD, TARGET)
