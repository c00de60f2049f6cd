"""``slipway deploy lambda|ecs|eks``: deploy image.json pinned by digest, and write what was deployed where."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline import records
from pipeline.arguments import dns_label, seconds
from pipeline.deployers.base import DeployRecord
from pipeline.records import ImageRecord


def register(commands: Any) -> None:
    parser = commands.add_parser("deploy", help="deploy image.json to Lambda, ECS or EKS", description=__doc__)
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")

    def common(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = targets.add_parser(name, help=help_text)
        sub.add_argument("--image-json", type=Path, default=Path("image.json"))
        sub.add_argument("--out", type=Path, default=Path(f"deployed-{name}.json"), help="deploy record")
        sub.add_argument(
            "--timeout", type=seconds, default=600, help="seconds to wait for the rollout (0: do not wait)"
        )
        return sub

    fn = common("lambda", "the child manifest of the function's architecture")
    fn.add_argument("--function-name", required=True)
    fn.add_argument("--architecture", required=True, choices=("x86_64", "arm64"))
    fn.add_argument("--alias", default="live")
    fn.set_defaults(run=lambda a: deploy_lambda(image_json=a.image_json, out=a.out, timeout=a.timeout,
                                                function_name=a.function_name, architecture=a.architecture, alias=a.alias))  # fmt: skip

    ecs = common("ecs", "a new task-definition revision with the index digest")
    ecs.add_argument("--cluster", required=True)
    ecs.add_argument("--service", required=True)
    ecs.add_argument("--container", required=True)
    ecs.set_defaults(run=lambda a: deploy_ecs(image_json=a.image_json, out=a.out, timeout=a.timeout,
                                              cluster=a.cluster, service=a.service, container=a.container))  # fmt: skip

    eks = common("eks", "patch the Deployment's container image to the index digest")
    eks.add_argument("--cluster", required=True)
    eks.add_argument("--namespace", required=True, type=dns_label)
    eks.add_argument("--deployment", required=True, type=dns_label)
    eks.add_argument("--container", required=True, type=dns_label)
    eks.add_argument("--render-only", type=Path, metavar="FILE", help="write the rendered Deployment; touch no cluster")
    eks.set_defaults(run=lambda a: deploy_eks(image_json=a.image_json, out=a.out, timeout=a.timeout,
                                              cluster=a.cluster, namespace=a.namespace, deployment=a.deployment,
                                              container=a.container, render_only=a.render_only))  # fmt: skip


def _finish(record: DeployRecord, out: Path) -> int:
    records.write(out, record)
    state = "deployed" if record.changed else "already serving this digest (nothing changed)"
    revision = f" revision {record.revision}" if record.revision else ""
    print(f"{record.target}: {record.image} [{state}]{revision}")
    return 0


def deploy_lambda(
    *,
    image_json: Path,
    out: Path,
    function_name: str,
    architecture: str,
    alias: str,
    timeout: float = 300,
    client: Any = None,
) -> int:
    from pipeline.deployers.lambda_ import LambdaDeployer

    record = LambdaDeployer(client).deploy(
        ImageRecord.load(image_json),
        function_name=function_name,
        architecture=architecture,
        alias=alias,
        timeout=timeout,
    )
    return _finish(record, out)


def deploy_ecs(
    *,
    image_json: Path,
    out: Path,
    cluster: str,
    service: str,
    container: str,
    timeout: float = 600,
    client: Any = None,
) -> int:
    from pipeline.deployers.ecs import EcsDeployer

    record = EcsDeployer(client).deploy(
        ImageRecord.load(image_json), cluster=cluster, service=service, container=container, timeout=timeout
    )
    return _finish(record, out)


def deploy_eks(
    *,
    image_json: Path,
    out: Path,
    cluster: str,
    namespace: str,
    deployment: str,
    container: str,
    timeout: float = 300,
    render_only: Path | None = None,
    kubectl: Any = None,
) -> int:
    from pipeline.deployers.eks import EksDeployer, deployment_manifest

    image = ImageRecord.load(image_json)
    if render_only is not None:
        manifest = deployment_manifest(namespace, deployment, container, image.index_uri)
        render_only.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"eks:{cluster}/{namespace}/{deployment}: rendered {image.index_uri} -> {render_only}")
        return 0
    record = EksDeployer(kubectl).deploy(
        image,
        cluster=cluster,
        namespace=namespace,
        deployment=deployment,
        container=container,
        timeout=timeout,
    )
    return _finish(record, out)
