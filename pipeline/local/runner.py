"""``slipway local seed`` and ``slipway local run``: the cloud pipeline's steps on one machine, same code.

seed: upstream bases into the local registry at their pull-through-cache paths (offline: busybox and debootstrap),
then the curated bases of ``platform.toml`` through the normal build/stitch path, recorded in ``.slipway/lock.json``.

run: per service, lint → build every platform in parallel → stitch → verify → deploy (moto Lambda gets the child of its
architecture, moto ECS the index, the EKS Deployment is rendered with the index).
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import bases
from pipeline.builders import BuildSecretSource
from pipeline.config import BaseImage, PlatformConfig, Service, Team
from pipeline.deployers.base import DeployRecord
from pipeline.errors import SlipwayError
from pipeline.lint import lint_file
from pipeline.lint.policy import policy_for
from pipeline.local import aws
from pipeline.local.progress import progress
from pipeline.local.seed import seed_busybox, seed_debian
from pipeline.local.state import LocalState
from pipeline.naming import base_repository_name, service_repository_name
from pipeline.records import ImageRecord, write
from pipeline.registry import RepositoryRef
from pipeline.registry.distribution import DistributionClient
from pipeline.release import Release, release
from pipeline.stitch import verify

ROOT = Path(__file__).resolve().parents[2]


class LocalRunError(SlipwayError):
    pass


@dataclass
class ServiceResult:
    service: str
    image: ImageRecord
    builds: list[dict[str, Any]]
    deploys: list[dict[str, Any]] = field(default_factory=list)
    manifest: str = ""


def _platforms(config: PlatformConfig) -> list[str]:
    services = {p for team in config.teams for s in team.services for p in s.platforms}
    curated = {p for team in config.teams for b in team.base_images for p in b.platforms}
    return sorted(services | curated)


def seed(config: PlatformConfig, state: LocalState) -> dict[str, str]:
    client = DistributionClient()
    registry = state.registry
    platforms = _platforms(config)
    work, cache = state.directory / "seed", state.directory / "cache"
    progress("seed: upstream bases at their pull-through-cache paths")
    seed_busybox(client, registry=registry, platforms=platforms, work=work / "busybox", debs=cache)
    debian = seed_debian(client, registry=registry, platforms=platforms, work=work / "debian", cache=cache)
    repository = RepositoryRef.parse(debian.repository).name
    lock = {"UPSTREAM_DEBIAN": bases.entry(repository, debian.tag, debian.index_digest)}
    progress(f"  {'debian (upstream)':<18} {debian.index_uri}")
    progress("seed: curated bases")
    pending = [(team, base) for team in config.teams for base in team.base_images]
    while pending:
        ready = [(t, b) for t, b in pending if bases.required_args(_dockerfile(b)) <= set(lock)]
        if not ready:
            names = ", ".join(b.name for _, b in pending)
            raise LocalRunError(f"base images {names}: their FROM build arguments can never be satisfied")
        for team, base in ready:
            made = _release_base(client, registry, team, base, lock)
            name = RepositoryRef.parse(made.record.repository).name
            lock[base.lock_key] = bases.entry(name, made.record.tag, made.record.index_digest)
            pending.remove((team, base))
    bases.save(state.lock_path, lock)
    progress(f"seed: lock written to {state.lock_path}")
    return lock


REPOS = ROOT / "examples" / "repos.toml"


def source_root(service: Service) -> Path:
    """Where local mode finds a service's own repository (examples/repos.toml stands in for the git host)."""
    try:
        repos = tomllib.loads(REPOS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocalRunError(f"{REPOS}: unreadable ({exc})") from exc
    folder = repos.get(service.source_repo)
    if not isinstance(folder, str):
        raise LocalRunError(f"{REPOS}: no folder for source repository {service.source_repo!r}")
    return ROOT / folder


def _context(item: BaseImage | Service) -> Path:
    """Bases build from the platform's own repository (this checkout); services from their own repositories."""
    return ROOT / item.context if isinstance(item, BaseImage) else source_root(item) / item.context


def _dockerfile(item: BaseImage | Service) -> Path:
    return _context(item) / item.dockerfile


def trust_secrets() -> list[BuildSecretSource]:
    """The host's CA bundle as BuildKit secret ``ca_bundle``, when the host trusts a proxy CA (PIP_CERT/SSL_CERT_FILE).

    Package downloads inside a build then verify TLS the way the host does, and the CA never lands in a layer.
    """
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        path = os.environ.get(variable, "")
        if path and Path(path).is_file():
            return [BuildSecretSource("ca_bundle", src=path)]
    return []


def _release_base(
    client: DistributionClient, registry: str, team: Team, base: BaseImage, lock: dict[str, str]
) -> Release:
    return release(
        client,
        name=base.name,
        repository=f"{registry}/{base_repository_name(team.name, base.name)}",
        context=_context(base),
        dockerfile=_dockerfile(base),
        platforms=base.platforms,
        build_args=bases.build_args(lock, registry),
        target=base.target,
        secrets=trust_secrets(),
    )


def run(config: PlatformConfig, state: LocalState, selection: str = "") -> list[ServiceResult]:
    targets = [config.find_service(selection)] if selection else list(config.services())
    lock = bases.load(state.lock_path)
    if not lock:
        raise LocalRunError(f"{state.lock_path}: no base images yet; run `slipway local seed` first")
    client = DistributionClient()
    registry = state.registry
    args = bases.build_args(lock, registry)
    policy = policy_for(config, [], local_registry=registry)
    results = []
    for team, service in targets:
        name = f"{team.name}/{service.name}"
        dockerfile = _dockerfile(service)
        findings = lint_file(dockerfile, policy, args)
        if findings:
            raise LocalRunError(f"{name}: the policy gate failed:\n" + "\n".join(str(f) for f in findings))
        progress(f"{name}: lint ok")
        made = release(
            client,
            name=name,
            repository=f"{registry}/{service_repository_name(team.name, service.name)}",
            context=_context(service),
            dockerfile=dockerfile,
            platforms=service.platforms,
            build_args=args,
            secrets=trust_secrets(),
        )
        verify(client, made.record)
        out = state.directory / "runs" / f"{team.name}-{service.name}"
        out.mkdir(parents=True, exist_ok=True)
        write(out / "image.json", made.record)
        result = ServiceResult(name, made.record, [asdict(b) for b in made.builds])
        for record in _deploy(service, made.record, state, out):
            result.deploys.append(asdict(record))
            write(out / f"deployed-{record.target.split(':')[0]}.json", record)
            state_word = "deployed" if record.changed else "unchanged"
            progress(f"  {name:<18} {state_word} {record.target}: {record.image}, verified: {record.verified}")
        result.manifest = str(out / "deployment.json") if service.deploy.eks else ""
        results.append(result)
    return results


def _deploy(service: Service, image: ImageRecord, state: LocalState, out: Path) -> list[DeployRecord]:
    """Deploy to each target's stand-in, then prove the deployed digest answers (a failed check stops the run)."""
    records = []
    for target in service.deploy.targets():
        deployer = aws.local_deployer(state.aws_endpoint, target, image.repository, out)
        record = deployer.deploy(image, target, timeout=aws.LOCAL_TIMEOUT[target.kind])
        verified = aws.check(target, record, image, out)
        if not verified.ok:
            raise LocalRunError(f"{target.label}: {record.image} failed its check ({verified})")
        records.append(replace(record, verified=verified))
    return records


def record_timing(state: LocalState, seconds: float) -> str:
    """Keep run times; describe this run against the first one (the registry cache at work)."""
    path = state.directory / "runs" / "history.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({"seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=2))
    if len(history) == 1:
        return f"run took {seconds:.1f}s (first run: cold cache)"
    first = history[0]["seconds"]
    return f"run took {seconds:.1f}s vs {first:.1f}s the first time ({first / max(seconds, 0.1):.1f}x faster, registry cache reused)"
