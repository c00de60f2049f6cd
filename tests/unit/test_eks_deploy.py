"""EKS: the rendered Deployment is valid Kubernetes, matches what kubectl's own patch produces, and the deploy
patches, watches and undoes through kubectl (that path: test_eks_deployer.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from pipeline.commands.deploy import deploy
from pipeline.config import EksTarget
from pipeline.deployers.base import DeployError, DeployRecord
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


def test_render_leaves_the_live_manifest_as_it_was() -> None:
    live = live_deployment()
    render(live, "indexer", RECORD.index_uri)
    assert live == live_deployment()


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"kind": "StatefulSet"}, r"^manifest: expected kind Deployment, got 'StatefulSet'$"),
        ({"kind": "Deployment"}, r"^Deployment None: no container 'indexer' \(has \[\]\)$"),
        ({"kind": "Deployment", "metadata": {"name": "indexer"}, "spec": {"template": {}}},
         r"^Deployment 'indexer': no container 'indexer' \(has \[\]\)$"),
        ({"kind": "Deployment", "spec": {"template": {"spec": {}}}}, r"^Deployment None: no container"),
    ],
)  # fmt: skip
def test_a_manifest_without_the_parts_a_deploy_patches_is_named_not_a_traceback(manifest: dict, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        render(manifest, "indexer", RECORD.index_uri)


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


def test_render_only_writes_a_valid_deployment(tmp_path: Path) -> None:
    registry, record = released(REPO)
    image_json = tmp_path / "image.json"
    write(image_json, record)
    out = tmp_path / "deployment.json"
    deploy(EksDeployer(render_only=out), TARGET, image_json=image_json, out=tmp_path / "r.json", registry=registry)
    manifest = json.loads(out.read_text())
    kubernetes_validate.validate(manifest, "1.32", strict=True)
    assert manifest == deployment_manifest("search", "indexer", "indexer", record.index_uri)
    assert out.read_text() == json.dumps(manifest, indent=2) + "\n"  # readable in the job's artifacts
    # What the API server checks beyond the schema: the selector matches the pods' labels; and Slipway's images run
    # as a non-root user.
    selector, labels = manifest["spec"]["selector"]["matchLabels"], manifest["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()
    assert manifest["spec"]["template"]["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert DeployRecord.load(tmp_path / "r.json") == DeployRecord(
        "eks:search/search/indexer", record.index_uri, "", changed=True, revision=f"rendered to {out}"
    )
