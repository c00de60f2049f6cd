"""The cloud's backend of the platform deploy (:mod:`pipeline.platform_deploy`): CloudFormation's deployed templates,
read through each account's bootstrap lookup role, and the CDK CLI that package.json pins, which assumes each
account's deploy role itself (workload accounts trust the platform's through ``cdk bootstrap --trust``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline import assembly, runner_image
from pipeline.errors import SlipwayError

CONCURRENCY = 4
"""Stacks deployed at once (``cdk deploy --concurrency``): CloudFormation's own quota is far above it."""


class CdkDeployError(SlipwayError):
    pass


@dataclass(frozen=True)
class CdkCli:
    checkout: Path
    """The platform repository's checkout: its package.json and package-lock.json pin the CDK CLI."""
    cloudformation_in: Callable[[str, str], Any]
    """``(account, region)`` → a CloudFormation client acting there (the bootstrap lookup role)."""
    run: Callable[..., subprocess.CompletedProcess[str]] = field(default=subprocess.run)

    def deployed(self, assembly_dir: Path, into: Path) -> Path:
        shutil.rmtree(into, ignore_errors=True)
        into.mkdir(parents=True)
        manifest = json.loads((assembly_dir / "manifest.json").read_text(encoding="utf-8"))
        for name, artifact in manifest.get("artifacts", {}).items():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            account, region = assembly.environment(artifact.get("environment", ""))
            stack_name = artifact.get("properties", {}).get("stackName", name)
            try:
                body = self.cloudformation_in(account, region).get_template(
                    StackName=stack_name, TemplateStage="Original"
                )["TemplateBody"]
            except ClientError as exc:
                if "does not exist" not in str(exc):
                    raise
                body = {}
            template = json.loads(body) if isinstance(body, str) else body
            (into / artifact["properties"]["templateFile"]).write_text(json.dumps(template), encoding="utf-8")
        (into / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        return into

    cli_home: Path = runner_image.CDK_CLI_HOME
    """Where the runner's ``platform`` target holds the pinned CDK CLI; absent (a laptop): ``npm ci`` in the checkout."""

    def cli(self) -> tuple[list[list[str]], str]:
        """``(steps before the deploy, the cdk command)``: the runner's CLI when it is the one the checkout pins (no
        step: the job fetches nothing), else the checkout's own after ``npm ci``."""
        runner = self.cli_home / "node_modules" / ".bin" / "cdk"
        if not runner.exists():
            return [["npm", "ci", "--no-audit", "--no-fund"]], str(self.checkout / "node_modules" / ".bin" / "cdk")
        pinned, _ = runner_image.cdk_cli_pin(self.checkout / "package-lock.json")
        held, _ = runner_image.cdk_cli_pin(self.cli_home / "package-lock.json")
        if pinned != held:
            raise CdkDeployError(
                f"package-lock.json pins the CDK CLI {pinned}, the runner holds {held}: bootstrap a runner from this "
                "checkout (`slipway runner bootstrap`) and commit its lock entries first"
            )
        return [], str(runner)

    def command(self, assembly_dir: Path, cdk: str) -> list[str]:
        return [
            cdk, "deploy", "--all", "--app", str(assembly_dir),
            "--require-approval", "never", "--concurrency", str(CONCURRENCY), "--progress", "events",
        ]  # fmt: skip

    def deploy(self, assembly_dir: Path) -> None:
        before, cdk = self.cli()
        for step in [*before, self.command(assembly_dir, cdk)]:
            completed = self.run(step, cwd=self.checkout, check=False, text=True)
            if completed.returncode != 0:
                raise CdkDeployError(f"{' '.join(step[:3])}: exit {completed.returncode} (the deploy's log above)")
