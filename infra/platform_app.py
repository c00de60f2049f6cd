"""Build the CDK app from a loaded platform config: the one place stacks are wired together."""

from __future__ import annotations

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.blueprint import blueprint, shard
from infra.pipelines_stack import PipelinesStack
from infra.registry_stack import RegistryStack, service_repository_name
from pipeline.config import PlatformConfig


def build_app(config: PlatformConfig, *, outdir: str | None = None, nag: bool = True) -> App:
    """Compose every stack. cdk-nag's AwsSolutions pack runs on all of them; synth fails on any finding."""
    app = App(outdir=outdir) if outdir else App()
    # Account and region come from platform.toml, resolved once here, so synth needs no credentials.
    env = Environment(account=config.platform.account, region=config.platform.region)
    prefix = _stack_prefix(config)
    registry = RegistryStack(app, f"{prefix}-Registry", config=config, env=env, description="Slipway image supply")
    plans = [
        blueprint(team, service, service_repository_name(team.name, service.name))
        for team, service in config.services()
    ]
    for index, group in enumerate(shard(plans), start=1):
        team = group[0].team
        PipelinesStack(
            app,
            f"{prefix}-Pipelines-{team}-{index}",
            config=config,
            registry=registry,
            blueprints=group,
            env=env,
            description=f"Slipway service pipelines: {', '.join(bp.service for bp in group)}",
        )
    Tags.of(app).add("slipway:platform", config.platform.name)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def _stack_prefix(config: PlatformConfig) -> str:
    return "Slipway-" + "".join(part.capitalize() for part in config.platform.name.split("-"))
