"""``slipway platform deploy``: the platform pipeline's Deploy action -- the platform deploying itself from git.

Run in the platform repository's checkout: synthesizes platform.toml with this checkout's Slipway, deploys every
stack (the CDK CLI through each account's bootstrap roles; in the replay, the CloudFormation stand-in), and starts
each pipeline whose definition changed (:mod:`pipeline.platform_deploy`). Prints what it started as JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3

from pipeline import config, platform_deploy
from pipeline.commands.deploy import STANDINS_ENV
from pipeline.commands.synth import synthesize
from pipeline.progress import progress


def register(commands: Any) -> None:
    parser = commands.add_parser("platform", help="the platform deploying itself", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    deploy_parser = verbs.add_parser(
        "deploy", help="synthesize this checkout, deploy every stack, start the pipelines whose definition changed"
    )
    deploy_parser.add_argument("--config", type=Path, default=Path("platform.toml"))
    deploy_parser.add_argument("--outdir", type=Path, default=Path("cdk.out"))
    deploy_parser.set_defaults(run=lambda a: deploy(config_path=a.config, outdir=a.outdir))


def _stacks(loaded: config.PlatformConfig) -> platform_deploy.Stacks:
    if os.environ.get(STANDINS_ENV):
        from pipeline.local.cloudformation_standin import SERVICE_PRINCIPAL_ENV, StandInCloudFormation
        from pipeline.local.state import STATE_ENV

        return StandInCloudFormation(
            state=Path(os.environ[STATE_ENV]), endpoint=os.environ["AWS_ENDPOINT_URL"],
            service_principal=os.environ[SERVICE_PRINCIPAL_ENV], platform_account=loaded.platform.account,
        )  # fmt: skip
    from pipeline.cdk_cli import CdkCli

    def cloudformation_in(account: str, region: str) -> Any:
        role = platform_deploy.bootstrap_role("lookup", account, region)
        keys = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="slipway-platform-deploy")["Credentials"]
        return boto3.client(
            "cloudformation", region_name=region, aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"], aws_session_token=keys["SessionToken"],
        )  # fmt: skip

    return CdkCli(checkout=Path.cwd(), cloudformation_in=cloudformation_in)


def deploy(*, config_path: Path, outdir: Path) -> int:
    loaded = config.load(config_path)  # ConfigError: exit 2, naming the file and field, before anything deploys
    progress(f"platform deploy: synthesizing {config_path}")
    synthesize(loaded, outdir)
    codepipeline = boto3.client("codepipeline", region_name=loaded.platform.region)
    with tempfile.TemporaryDirectory(prefix="slipway-deployed-") as scratch:
        outcome = platform_deploy.deploy(outdir, _stacks(loaded), codepipeline, Path(scratch))
    print(json.dumps(outcome.json(), indent=2))
    return 0
