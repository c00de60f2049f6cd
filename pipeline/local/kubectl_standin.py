"""``kubectl`` against a cluster stand-in: what the replay's deploy jobs find on PATH where CodeBuild has kubectl.

moto's EKS keeps clusters (``DescribeCluster`` gives the endpoint the deployer's kubeconfig names) but no Kubernetes
API. This stand-in answers the kubectl calls ``slipway deploy eks`` makes, as a cluster would, on Deployments kept in
``$SLIPWAY_LOCAL_STATE/kube/<cluster>.json``:

- ``get deployment NAME --namespace NS --output json``;
- ``patch deployment NAME --namespace NS --type strategic --patch JSON``: annotations merge, containers merge by name,
  the result is checked against Kubernetes' schema (an API server refuses an invalid Deployment), and a change of the
  pod template is a new rollout (``deployment.kubernetes.io/revision`` goes up, the template joins the history);
- ``rollout status deployment/NAME --namespace NS --timeout=Ns``: complete (the stand-in runs no pods; the replay's
  check runs the deployed digest);
- ``rollout undo deployment/NAME --namespace NS``: the template before the current one.

The kubeconfig is required and must name the cluster with ``aws eks get-token`` as its credential, as the deployer
writes it. Anything else is refused with kubectl's own kind of message, exit 1.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.local.state import STATE_ENV

REVISION = "deployment.kubernetes.io/revision"
_VALUED = ("--kubeconfig", "--namespace", "--output", "--type", "--patch")


class KubectlError(Exception):
    pass


def cluster_file(state: Path, cluster: str) -> Path:
    return state / "kube" / f"{cluster}.json"


@contextlib.contextmanager
def _cluster(path: Path) -> Iterator[dict[str, Any]]:
    """The cluster's objects, locked for one call and written back after it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {"deployments": {}, "history": {}}
        yield data
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def ensure_deployment(state: Path, cluster: str, manifest: dict[str, Any]) -> None:
    """What the team applied once: a Deployment the deploys then patch (kept if it is already there)."""
    key = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
    with _cluster(cluster_file(state, cluster)) as data:
        if key not in data["deployments"]:
            live = copy.deepcopy(manifest)
            live["metadata"].setdefault("annotations", {})[REVISION] = "1"
            data["deployments"][key] = live
            data["history"][key] = [copy.deepcopy(live["spec"]["template"])]


def _parse(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    words: list[str] = []
    flags: dict[str, str] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        name, sep, value = word.partition("=")
        if sep and name in (*_VALUED, "--timeout"):
            flags[name] = value
        elif word in _VALUED and rest:
            flags[word] = rest.pop(0)
        elif word.startswith("-"):
            raise KubectlError(f"error: unknown flag: {word}")
        else:
            words.append(word)
    return words, flags


def _cluster_name(kubeconfig: str) -> str:
    if not kubeconfig:
        raise KubectlError("error: no kubeconfig (the deploy writes one from eks:DescribeCluster)")
    config = json.loads(Path(kubeconfig).read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    command = user.get("exec", {})
    if command.get("command") != "aws" or context["cluster"] not in command.get("args", []):
        raise KubectlError(f"error: kubeconfig user for {context['cluster']} has no 'aws eks get-token' credential")
    return str(context["cluster"])


def _merge(live: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic-merge patch of what Slipway patches: annotations, and containers merged by name."""
    merged = copy.deepcopy(live)
    annotations = patch.get("metadata", {}).get("annotations", {})
    merged["metadata"].setdefault("annotations", {}).update(annotations)
    containers = merged["spec"]["template"]["spec"]["containers"]
    for change in patch.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        found = [c for c in containers if c["name"] == change.get("name")]
        if not found:
            containers.append(change)
        else:
            found[0].update(change)
    return merged


def _validate(manifest: dict[str, Any]) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, "1.32", strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise KubectlError(f"The Deployment is invalid: {exc}") from exc


def run(args: Sequence[str], state: Path) -> str:
    words, flags = _parse(args)
    cluster = _cluster_name(flags.get("--kubeconfig", ""))
    verb = " ".join(words[:2])
    if len(words) != 3 or verb not in ("get deployment", "patch deployment", "rollout status", "rollout undo"):
        raise KubectlError(f"error: the stand-in cannot {' '.join(words)}")
    name = words[2].removeprefix("deployment/") if verb.startswith("rollout") else words[2]
    key = f"{flags.get('--namespace', 'default')}/{name}"
    with _cluster(cluster_file(state, cluster)) as data:
        live = data["deployments"].get(key)
        if live is None:
            raise KubectlError(f'Error from server (NotFound): deployments.apps "{name}" not found')
        if verb == "get deployment":
            if flags.get("--output") != "json":
                raise KubectlError("error: the stand-in answers --output json only")
            return json.dumps(live)
        if verb == "rollout status":
            return f'deployment "{name}" successfully rolled out\n'
        history = data["history"][key]
        if verb == "rollout undo":
            if len(history) < 2:
                raise KubectlError(f'error: no rollout history found for deployment "{name}"')
            template = copy.deepcopy(history[-2])
            patched = copy.deepcopy(live)
            patched["spec"]["template"] = template
        else:
            if flags.get("--type") != "strategic":
                raise KubectlError(f"error: --type must be strategic here, got {flags.get('--type')!r}")
            patched = _merge(live, json.loads(flags["--patch"]))
        _validate(patched)
        if patched["spec"]["template"] != live["spec"]["template"]:
            revision = int(patched["metadata"]["annotations"].get(REVISION, "0")) + 1
            patched["metadata"]["annotations"][REVISION] = str(revision)
            history.append(copy.deepcopy(patched["spec"]["template"]))
        data["deployments"][key] = patched
        return f"deployment.apps/{name} {'rolled back' if verb == 'rollout undo' else 'patched'}\n"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        sys.stdout.write(run(sys.argv[1:] if argv is None else argv, Path(os.environ[STATE_ENV])))
    except (KubectlError, KeyError, StopIteration, ValueError, OSError) as exc:
        print(exc if isinstance(exc, KubectlError) else f"error: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
