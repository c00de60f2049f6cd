"""The EKS deployer's whole path against a fake cluster that answers kubectl as a cluster does (moto- and
cluster-free, so mutation testing runs it): Deployments by namespace, a rollout history to undo to, the revision
annotation, kubectl's own refusals of a flag or value it does not know. Plus the real-process parts: the kubectl
runner (against a stand-in executable) and the kubeconfig built from ``eks:DescribeCluster``."""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.config import EksTarget
from pipeline.deployers.base import DeployError, DeployRecord, Grant, NamespaceAccess, Verification, verified_mark
from pipeline.deployers.eks import VERIFIED_ANNOTATION, EksDeployer, KubectlCli, deployment_manifest, kubeconfig_for
from tests.fakes import aws_out_of_reach
from tests.unit.test_eks_deploy import INDEX, OLD, RECORD, REPO, TARGET, live_deployment

NEW = f"{REPO}@{INDEX}"
PROXY = "proxy@sha256:" + "9" * 64
VALUED = {"--namespace", "--output", "--type", "--patch"}
REVISION = "deployment.kubernetes.io/revision"


class FakeCluster:
    """kubectl against one cluster. A patch or undo is a new rollout: the revision annotation goes up and the pod
    template joins the history; a rollout of an image in ``broken`` never becomes ready."""

    def __init__(self, *, broken: tuple[str, ...] = (), undo_fails: bool = False, live: dict | None = None) -> None:
        live = live or live_deployment()
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {("search", "indexer"): live}
        self.history = {("search", "indexer"): [copy.deepcopy(live["spec"]["template"])]}
        self.broken, self.undo_fails = broken, undo_fails
        self.calls: list[list[str]] = []
        self.timeouts: list[str] = []
        self.rolling = 0  # how many more `rollout status` waits time out before the rollout completes

    def images(self, namespace: str = "search", name: str = "indexer") -> list[str]:
        containers = self.deployments[namespace, name]["spec"]["template"]["spec"]["containers"]
        return [c["image"] for c in containers]

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        words, flags = self._parse(list(args))
        verb = " ".join(words[:2])
        name = words[-1].removeprefix("deployment/") if verb.startswith("rollout") else words[-1]
        key = (flags.get("--namespace", "default"), name)
        if key not in self.deployments:
            raise DeployError(f'kubectl {verb}: Error from server (NotFound): deployments.apps "{name}" not found')
        if verb == "get deployment" and len(words) == 3:
            if flags.get("--output") != "json":
                return f"NAME   READY\n{name}   2/2\n"
            return json.dumps(self.deployments[key])
        if verb == "patch deployment" and len(words) == 3:
            return self._patch(key, flags.get("--type", "strategic"), json.loads(flags["--patch"]))
        if verb == "rollout status" and len(words) == 3 and words[2].startswith("deployment/"):
            self.timeouts.append(flags.get("--timeout", "0s"))
            if set(self.images(*key)) & set(self.broken):
                raise DeployError(f'kubectl rollout status: error: deployment "{name}" exceeded its progress deadline')
            if self.rolling > 0:
                self.rolling -= 1
                raise DeployError("kubectl rollout status: error: timed out waiting for the condition")
            return f'deployment "{name}" successfully rolled out\n'
        if verb == "rollout undo" and len(words) == 3 and words[2].startswith("deployment/") and not self.undo_fails:
            self._roll(key, copy.deepcopy(self.history[key][-2]))
            return f"deployment.apps/{name} rolled back\n"
        raise DeployError(f"kubectl {verb}: error: cannot {' '.join(words)}")

    @staticmethod
    def _parse(args: list[str]) -> tuple[list[str], dict[str, str]]:
        words, flags = [], {}
        while args:
            word = args.pop(0)
            if word.startswith("--timeout="):
                flags["--timeout"] = word.split("=", 1)[1]
            elif word in VALUED:
                flags[word] = args.pop(0)
            elif word.startswith("-"):
                raise DeployError(f"kubectl: error: unknown flag: {word}")
            else:
                words.append(word)
        return words, flags

    def _patch(self, key: tuple[str, str], kind: str, patch: dict[str, Any]) -> str:
        annotations = patch.get("metadata", {}).get("annotations", {})
        self.deployments[key]["metadata"].setdefault("annotations", {}).update(annotations)
        if "spec" not in patch:  # metadata only: the pod template is the same, no rollout
            return f"deployment.apps/{key[1]} patched\n"
        template = copy.deepcopy(self.deployments[key]["spec"]["template"])
        # the rollout's own settings (a linear strategy's): merged into the spec as they are
        self.deployments[key]["spec"].update({k: v for k, v in patch["spec"].items() if k != "template"})
        patched = patch["spec"]["template"]["spec"]["containers"]
        if kind == "merge":  # a JSON merge patch replaces a list whole: the other containers would be gone
            template["spec"]["containers"] = patched
        elif kind == "strategic":  # containers merge by name
            for change in patched:
                [spec] = [c for c in template["spec"]["containers"] if c["name"] == change["name"]]
                spec.update(change)
        else:
            raise DeployError(f"kubectl patch: error: --type must be one of [json merge strategic], got {kind!r}")
        self._roll(key, template)
        return f"deployment.apps/{key[1]} patched\n"

    def _roll(self, key: tuple[str, str], template: dict[str, Any]) -> None:
        live = self.deployments[key]
        live["spec"]["template"] = template
        annotations = live["metadata"].setdefault("annotations", {})
        annotations[REVISION] = str(int(annotations.get(REVISION, "0")) + 1)
        self.history[key].append(copy.deepcopy(template))


def test_a_deploy_moves_only_its_container_to_the_index_digest_and_waits_for_the_rollout() -> None:
    cluster = FakeCluster()
    record = EksDeployer(cluster).deploy(RECORD, TARGET, timeout=120)
    verified = Verification(True, "kubectl rollout status", 0)
    assert record == DeployRecord("eks:search/search/indexer", NEW, OLD, changed=True, waited=True, verified=verified)
    assert cluster.images() == [NEW, PROXY]  # the sidecar the team runs beside it is untouched
    assert cluster.timeouts == ["120s"]
    assert cluster.deployments["search", "indexer"]["metadata"]["annotations"][REVISION] == "8"


def test_the_verification_mark_is_an_annotation_on_the_deployment_that_starts_no_rollout() -> None:
    cluster = FakeCluster()
    deployer = EksDeployer(cluster)
    deployer.deploy(RECORD, TARGET, timeout=120)
    mark = verified_mark(NEW, Verification(True, "kubectl rollout status", 0), datetime(2026, 12, 4, tzinfo=UTC))
    deployer.record_verified(TARGET, NEW, mark)
    annotations = cluster.deployments["search", "indexer"]["metadata"]["annotations"]
    assert (annotations[VERIFIED_ANNOTATION], annotations[REVISION]) == (mark, "8")  # no new rollout
    assert deployer.serving(TARGET).verification == "kubectl rollout status 0 at 2026-12-04T00:00:00Z"


def test_a_rollout_that_never_becomes_ready_is_undone_and_the_previous_image_serves() -> None:
    cluster = FakeCluster(broken=(NEW,))
    with pytest.raises(DeployError, match=rf"^EKS deployment search/search/indexer: rollout of {NEW} did not finish "
                                          rf'\(kubectl rollout status: error: deployment "indexer" exceeded its '
                                          rf"progress deadline\); rolled back: the Deployment now runs {OLD}$"):  # fmt: skip
        EksDeployer(cluster).deploy(RECORD, TARGET)
    assert cluster.images() == [OLD, PROXY]


def test_when_the_undo_fails_too_the_error_says_what_is_live_and_a_retry_keeps_the_rollback_target() -> None:
    """Credentials expiring after the patch: rollout and undo both fail. The error reads back what runs; the Deployment
    itself keeps what the new image replaced, so the retry records the true previous image (not the new one), and a
    rollback from that record goes back to it."""
    cluster = FakeCluster(broken=(NEW,), undo_fails=True)
    with pytest.raises(DeployError, match=rf"and the undo failed too \(kubectl rollout undo: error: cannot rollout undo "
                                          rf"deployment/indexer\); the Deployment now runs {NEW}; the Deployment keeps "
                                          rf"{OLD} as its rollback target \(annotation slipway.dev/previous-image\): "
                                          rf"run the deploy again to finish it, or roll back$"):  # fmt: skip
        EksDeployer(cluster).deploy(RECORD, TARGET)
    assert cluster.images() == [NEW, PROXY]  # what the message says
    cluster.broken = ()
    again = EksDeployer(cluster).deploy(RECORD, TARGET)
    assert (again.image, again.previous_image, again.changed, again.waited) == (NEW, OLD, False, True)
    EksDeployer(cluster).deploy_ref(again.previous_image, TARGET, timeout=5)
    assert cluster.images() == [OLD, PROXY]


def test_a_retry_on_the_serving_digest_changes_nothing_and_reports_the_live_revision() -> None:
    cluster = FakeCluster()
    EksDeployer(cluster).deploy(RECORD, TARGET)
    assert cluster.timeouts == ["300s"]  # the default wait
    cluster.calls.clear()
    again = EksDeployer(cluster).deploy(RECORD, TARGET)
    assert again == DeployRecord("eks:search/search/indexer", NEW, OLD, changed=False, revision="8", waited=True)
    assert [call[:2] for call in cluster.calls] == [["get", "deployment"], ["rollout", "status"]]


def test_a_deployment_not_rolled_out_yet_has_no_revision_to_report() -> None:
    live = deployment_manifest("search", "indexer", "indexer", NEW)
    again = EksDeployer(FakeCluster(live=live)).deploy(RECORD, TARGET)
    # Not deployed by Slipway: no annotation says what it replaced, so no rollback target is claimed.
    assert (again.changed, again.revision, again.previous_image) == (False, "", "")


def test_a_deployment_missing_from_the_namespace_stops_the_deploy_before_any_patch() -> None:
    cluster = FakeCluster()
    other = EksTarget(cluster="search", namespace="search", deployment="crawler", container="indexer")
    with pytest.raises(DeployError, match=r'^kubectl get deployment: .*deployments.apps "crawler" not found$'):
        EksDeployer(cluster).deploy(RECORD, other)
    assert [call[0] for call in cluster.calls] == ["get"]


def test_a_container_the_deployment_lacks_stops_the_deploy_before_any_patch() -> None:
    cluster = FakeCluster()
    web = EksTarget(cluster="search", namespace="search", deployment="indexer", container="web")
    with pytest.raises(DeployError, match=r"^Deployment 'indexer': no container 'web' \(has \['indexer', 'proxy'\]\)$"):
        EksDeployer(cluster).deploy(RECORD, web)
    assert cluster.images() == [OLD, PROXY]


def test_the_command_line_names_the_target_and_the_role_gets_the_cluster_and_namespace_only(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    EksDeployer.add_arguments(parser)
    args = parser.parse_args([*TARGET.cli_args(), "--render-only", str(tmp_path / "d.json")])
    assert EksDeployer.target_from_args(args) == TARGET
    import boto3

    session = boto3.Session(aws_access_key_id="AKIA-DEV", aws_secret_access_key="s", region_name="eu-central-1")
    made = EksDeployer.from_args(args, session)
    assert made._render_only == tmp_path / "d.json"
    assert made._eks.meta.region_name == "eu-central-1"  # type: ignore[attr-defined]
    assert made._environment == {"AWS_ACCESS_KEY_ID": "AKIA-DEV", "AWS_SECRET_ACCESS_KEY": "s",  # kubectl's get-token
                                 "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1"}  # fmt: skip
    assert EksDeployer.permissions(TARGET) == (
        Grant(("eks:DescribeCluster",), ("arn:{partition}:eks:{region}:{account}:cluster/search",)),
        NamespaceAccess("search", "search"),
    )


# The parts that leave the process: a kubectl executable and eks:DescribeCluster.


class FakeEks:
    def __init__(self, *, missing: bool = False) -> None:
        self.missing = missing

    def describe_cluster(self, name: str) -> dict[str, Any]:
        if self.missing:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": f"No cluster found for "
                                                                                        f"name: {name}."}}, "DescribeCluster")  # fmt: skip
        return {"cluster": {"endpoint": f"https://{name}.eks.example", "certificateAuthority": {"data": "Q0E="}}}


def _stand_in_kubectl(directory: Path, *, answer: dict | None = None, exit_code: int = 0, stderr: str = "") -> Path:
    """An executable named kubectl that logs its argv (and the kubeconfig it was given) and answers as told."""
    log = directory / "calls.jsonl"
    script = directory / "kubectl"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\nargv = sys.argv[1:]\n"
        "config = argv[argv.index('--kubeconfig') + 1] if '--kubeconfig' in argv else None\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(json.dumps({'argv': argv, 'config': config and json.load(open(config))}) + '\\n')\n"
        f"sys.stdout.write({json.dumps(answer) if answer else ''!r})\nsys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def _logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_runner_gives_kubectl_the_kubeconfig_first_and_returns_what_it_printed(tmp_path: Path) -> None:
    log = _stand_in_kubectl(tmp_path, answer={"kind": "Deployment"})
    config = tmp_path / "config.json"
    config.write_text("{}")
    out = KubectlCli(str(tmp_path / "kubectl"), kubeconfig=config)(["get", "deployment", "indexer"])
    assert json.loads(out) == {"kind": "Deployment"}
    assert _logged(log)[0]["argv"] == ["--kubeconfig", str(config), "get", "deployment", "indexer"]
    KubectlCli(str(tmp_path / "kubectl"))(["version"])
    assert _logged(log)[1]["argv"] == ["version"]


def test_the_runner_turns_a_failure_into_a_deploy_error_naming_the_verb(tmp_path: Path) -> None:
    _stand_in_kubectl(tmp_path, exit_code=1, stderr="  error: You must be logged in to the server (Unauthorized)\n")
    with pytest.raises(DeployError, match=r"^kubectl rollout status: error: You must be logged in to the server "
                                          r"\(Unauthorized\)$"):  # fmt: skip
        KubectlCli(str(tmp_path / "kubectl"))(["rollout", "status", "deployment/indexer"])
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    _stand_in_kubectl(quiet, answer={"error": "on stdout"}, exit_code=1)
    with pytest.raises(DeployError, match=r'^kubectl get deployment: \{"error": "on stdout"\}$'):
        KubectlCli(str(quiet / "kubectl"))(["get", "deployment"])
    with pytest.raises(DeployError, match=r"^kubectl-missing not found on PATH$"):
        KubectlCli("kubectl-missing")(["get"])


def test_the_kubeconfig_reaches_the_cluster_as_the_deploy_role_through_aws_eks_get_token() -> None:
    config = kubeconfig_for("search", eks=FakeEks())
    assert config["current-context"] == "search"
    [context] = config["contexts"]
    [cluster] = [c["cluster"] for c in config["clusters"] if c["name"] == context["context"]["cluster"]]
    [user] = [u["user"] for u in config["users"] if u["name"] == context["context"]["user"]]
    assert cluster == {"server": "https://search.eks.example", "certificate-authority-data": "Q0E="}
    assert user["exec"] == {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", "search"]}  # fmt: skip
    assert (config["apiVersion"], config["kind"]) == ("v1", "Config")


def test_kubectl_reads_the_kubeconfig_as_written(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    path = tmp_path / "kubeconfig.json"
    path.write_text(json.dumps(kubeconfig_for("search", eks=FakeEks())))
    viewed = subprocess.run(["kubectl", "config", "view", "--kubeconfig", str(path), "--minify", "--raw", "-o", "json"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    minified = json.loads(viewed.stdout)
    assert minified["clusters"][0]["cluster"]["server"] == "https://search.eks.example"
    assert minified["users"][0]["user"]["exec"]["args"][-1] == "search"


def test_a_cluster_the_role_cannot_describe_is_a_deploy_error() -> None:
    with pytest.raises(DeployError, match=r"^EKS cluster search: ResourceNotFoundException: No cluster found for "
                                          r"name: search\.$"):  # fmt: skip
        kubeconfig_for("search", eks=FakeEks(missing=True))


def test_an_eks_endpoint_out_of_reach_is_a_deploy_error_too(monkeypatch: pytest.MonkeyPatch) -> None:
    aws_out_of_reach(monkeypatch, "EKS")
    with pytest.raises(DeployError, match=r'^EKS cluster search: Could not connect to the endpoint URL: "http://127'):
        kubeconfig_for("search")


def test_without_an_injected_kubectl_the_deploy_runs_kubectl_on_a_kubeconfig_it_then_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _stand_in_kubectl(tmp_path, answer=deployment_manifest("search", "indexer", "indexer", OLD))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    record = EksDeployer(eks=FakeEks()).deploy(RECORD, TARGET, timeout=90)
    assert (record.target, record.image, record.previous_image, record.changed) == (TARGET.label, NEW, OLD, True)
    calls = _logged(log)
    assert [call["argv"][2:4] for call in calls] == [["get", "deployment"], ["patch", "deployment"],
                                                     ["rollout", "status"]]  # fmt: skip
    assert "--timeout=90s" in calls[2]["argv"]
    assert all(call["config"] == kubeconfig_for("search", eks=FakeEks()) for call in calls)
    assert not Path(calls[0]["argv"][1]).exists()
