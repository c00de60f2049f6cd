"""The platform model: ``platform.toml`` loaded into frozen, typed dataclasses.

``platform.toml`` is the one file a platform team edits, so a typo in it must never pass silently: unknown keys,
wrong types, duplicate names, bad platforms, ARNs, accounts and regions are all reported at load, every problem at
once, each naming the file and the key path (``teams[1].services[0].deploy.lambda.architecture``).

The dataclasses are the schema: :func:`_build` walks their type hints, and a field's ``metadata["check"]`` holds the
domain rule for that one value. Rules that need several values (uniqueness, cross-references) live in
:func:`_check_model`.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

Platform = Literal["linux/amd64", "linux/arm64"]
LambdaArchitecture = Literal["x86_64", "arm64"]
ScanMode = Literal["basic", "enhanced"]

PLATFORMS: tuple[str, ...] = get_args(Platform)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_SOURCE_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
_ECR_PREFIX = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRETS_MANAGER_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LAMBDA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

# Upstreams ECR pull-through cache supports, and whether each needs a Secrets Manager credential.
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-creating-rule.html
UPSTREAM_REGISTRIES: Mapping[str, tuple[str, bool]] = {
    # kind: (default upstream URL, needs credential)
    "ecr-public": ("public.ecr.aws", False),
    "k8s": ("registry.k8s.io", False),
    "quay": ("quay.io", False),
    "docker-hub": ("registry-1.docker.io", True),
    "github-container-registry": ("ghcr.io", True),
    "gitlab-container-registry": ("registry.gitlab.com", True),
    "azure-container-registry": ("", True),
}
PULL_THROUGH_SECRET_PREFIX = "ecr-pullthroughcache/"

Check = Callable[[Any], str | None]


def _matches(pattern: re.Pattern[str], expected: str) -> Check:
    def check(value: Any) -> str | None:
        return None if pattern.fullmatch(value) else f"expected {expected}, got {value!r}"

    return check


def _in_range(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"expected {low}..{high}, got {value}"

    return check


def _each(check: Check, **kwargs: Any) -> Any:
    """A tuple field whose every item must pass ``check`` (reported with the item's index)."""
    return field(metadata={"each": check}, **kwargs)


def _checked(check: Check, default: Any = MISSING, **kwargs: Any) -> Any:
    if default is MISSING:
        return field(metadata={"check": check}, **kwargs)
    return field(default=default, metadata={"check": check}, **kwargs)


_name = _matches(_NAME, "a lowercase name of 2-40 letters, digits and '-'")


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    """Who and where: the AWS account and region the platform is deployed to."""

    name: str = _checked(_name)
    account: str = _checked(_matches(_ACCOUNT, "a 12-digit AWS account id"))
    region: str = _checked(_matches(_REGION, "an AWS region such as 'eu-west-1'"))
    connection_arn: str = _checked(
        _matches(_CONNECTION_ARN, "a CodeConnections ARN 'arn:aws:codeconnections:REGION:ACCOUNT:connection/UUID'")
    )
    source_repo: str = _checked(
        lambda v: None if v == "" or _SOURCE_REPO.fullmatch(v) else f"expected 'owner/name', got {v!r}", default=""
    )
    """The platform's own repository (platform.toml, images/, lambda_base/): its base pipelines build from it.
    Empty: no base pipelines."""
    branch: str = "main"


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """An upstream registry served through ECR pull-through cache under ``<prefix>/``."""

    prefix: str = _checked(_matches(_ECR_PREFIX, "a lowercase ECR repository prefix such as 'docker-hub'"))
    registry: str = _checked(
        lambda v: None if v in UPSTREAM_REGISTRIES else f"expected one of {sorted(UPSTREAM_REGISTRIES)}, got {v!r}"
    )
    url: str = ""
    """Upstream URL; defaults to the registry's public endpoint (required for ``azure-container-registry``)."""
    credential_secret: str = ""
    """Secrets Manager name for registries that need credentials; must start ``ecr-pullthroughcache/``."""
    create_secret: bool = False
    """Create an empty secret shell with that name (the value is set out of band), instead of referencing one."""

    @property
    def upstream_url(self) -> str:
        return self.url or UPSTREAM_REGISTRIES[self.registry][0]

    @property
    def needs_credential(self) -> bool:
        return UPSTREAM_REGISTRIES[self.registry][1]


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """Defaults for every ECR repository the platform creates."""

    scan: ScanMode = "basic"
    """``basic`` scans on push; ``enhanced`` turns on Amazon Inspector continuous scanning for the registry."""
    kms_key_arn: str = _checked(
        lambda v: None if v == "" or _KMS_KEY_ARN.fullmatch(v) else f"expected a KMS key ARN, got {v!r}",
        default="",
    )
    """Customer-managed KMS key for repositories; empty means AES-256 with an AWS-owned key."""
    untagged_expiry_days: int = _checked(_in_range(1, 3650), default=14)
    keep_releases: int = _checked(_in_range(1, 1000), default=50)
    keep_cache_images: int = _checked(_in_range(1, 100), default=10)
    root_creation_template: bool = False
    """Also add a ``ROOT`` creation template for repositories created on push outside the known prefixes."""


@dataclass(frozen=True, kw_only=True)
class BuildSecret:
    """A BuildKit secret mount (``RUN --mount=type=secret,id=<id>``) fed from Secrets Manager."""

    id: str = _checked(_matches(_SECRET_ID, "a BuildKit secret id of letters, digits, '_' and '-'"))
    secret_name: str = _checked(_matches(_SECRETS_MANAGER_NAME, "a Secrets Manager secret name"))


@dataclass(frozen=True, kw_only=True)
class LambdaTarget:
    function_name: str = _checked(_matches(_LAMBDA_NAME, "a Lambda function name"))
    architecture: LambdaArchitecture
    alias: str = _checked(_matches(_LAMBDA_NAME, "a Lambda alias name"), default="live")

    @property
    def platform(self) -> str:
        return "linux/amd64" if self.architecture == "x86_64" else "linux/arm64"


@dataclass(frozen=True, kw_only=True)
class EcsTarget:
    cluster: str = _checked(_matches(_ECS_NAME, "an ECS cluster name"))
    service: str = _checked(_matches(_ECS_NAME, "an ECS service name"))
    container: str = _checked(_matches(_ECS_NAME, "a container name in the task definition"))
    cpu_architecture: LambdaArchitecture = "x86_64"
    """Fargate runtimePlatform.cpuArchitecture (``X86_64`` or ``ARM64``); must be a platform the service builds."""


@dataclass(frozen=True, kw_only=True)
class EksTarget:
    cluster: str = _checked(_matches(_ECS_NAME, "an EKS cluster name"))
    namespace: str = _checked(_matches(_K8S_NAME, "a Kubernetes namespace (DNS label)"))
    deployment: str = _checked(_matches(_K8S_NAME, "a Kubernetes Deployment name (DNS label)"))
    container: str = _checked(_matches(_K8S_NAME, "a container name (DNS label)"))


@dataclass(frozen=True, kw_only=True)
class DeployTargets:
    lambda_: LambdaTarget | None = field(default=None, metadata={"key": "lambda"})
    ecs: EcsTarget | None = None
    eks: EksTarget | None = None
    approval: bool = False
    """Hold each deploy behind a manual approval (production)."""


@dataclass(frozen=True, kw_only=True)
class Service:
    name: str = _checked(_name)
    source_repo: str = _checked(_matches(_SOURCE_REPO, "'owner/name' of the source repository"))
    branch: str = "main"
    dockerfile: str = "Dockerfile"
    context: str = "."
    platforms: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
    file_paths: tuple[str, ...] = ()
    """Only pushes touching these globs start the pipeline; empty means every push to the branch."""
    secrets: tuple[BuildSecret, ...] = ()
    deploy: DeployTargets = field(default_factory=DeployTargets)


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    """A curated base image the team publishes from ``images/<name>``."""

    name: str = _checked(_name)
    context: str
    dockerfile: str = "Dockerfile"
    target: str = ""
    """Dockerfile stage to publish (e.g. ``build`` for a ``python-build`` variant); default: the last stage."""
    platforms: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")

    @property
    def lock_key(self) -> str:
        """The build argument Dockerfiles use for this base (``BASE_PYTHON_BUILD``), filled from the lock."""
        return "BASE_" + self.name.upper().replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class Team:
    name: str = _checked(_name)
    workload_accounts: tuple[str, ...] = _each(_matches(_ACCOUNT, "a 12-digit AWS account id"), default=())
    """Accounts whose Lambda/ECS/EKS workloads pull this team's images (the platform account always can)."""
    base_images: tuple[BaseImage, ...] = ()
    services: tuple[Service, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PlatformConfig:
    platform: PlatformSettings
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    upstreams: tuple[Upstream, ...] = ()
    teams: tuple[Team, ...] = ()
    source: Path = field(default=Path("platform.toml"), compare=False, metadata={"loader": False})

    def services(self) -> Iterator[tuple[Team, Service]]:
        for team in self.teams:
            for service in team.services:
                yield team, service

    def find_service(self, ref: str) -> tuple[Team, Service]:
        """Look up ``TEAM/SERVICE``."""
        for team, service in self.services():
            if f"{team.name}/{service.name}" == ref:
                return team, service
        known = ", ".join(f"{t.name}/{s.name}" for t, s in self.services()) or "none"
        raise ConfigError(self.source, [f"service {ref!r} not found (known: {known})"])


class ConfigError(Exception):
    """``platform.toml`` is unreadable or invalid; ``problems`` holds one line per problem."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def load(path: str | Path = "platform.toml") -> PlatformConfig:
    """Load and validate ``platform.toml``; raise :class:`ConfigError` listing every problem found."""
    source = Path(path)
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
    return parse(raw, source=source)


def parse(raw: Mapping[str, Any], *, source: Path = Path("platform.toml")) -> PlatformConfig:
    """Validate an already-decoded TOML document (tests build these inline)."""
    problems: list[str] = []
    config = _build(PlatformConfig, raw, "", problems)
    if config is not None:
        problems.extend(_check_model(config))
    if problems or config is None:
        raise ConfigError(source, problems)
    return replace(config, source=source)


T = TypeVar("T")


def _key(f: Any) -> str:
    return str(f.metadata.get("key", f.name))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type[T], raw: Any, path: str, problems: list[str]) -> T | None:
    """Build dataclass ``cls`` from ``raw``, appending a problem per bad key instead of stopping at the first."""
    where = path or "top level"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a table, got {_type_name(raw)}")
        return None
    hints = typing.get_type_hints(cls)
    known = {_key(f): f for f in fields(cls) if f.metadata.get("loader", True)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            suggestion = _closest(key, known)
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            problems.append(f"{_join(path, key)}: unknown key{hint}; allowed: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    ok = True
    for key, f in known.items():
        key_path = _join(path, key)
        if key not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append(f"{key_path}: required key is missing")
                ok = False
            continue
        before = len(problems)
        value = _convert(hints[f.name], raw[key], key_path, problems)
        if len(problems) == before and (check := f.metadata.get("check")) and (message := check(value)):
            problems.append(f"{key_path}: {message}")
        if len(problems) == before and (each := f.metadata.get("each")):
            problems.extend(f"{key_path}[{i}]: {m}" for i, item in enumerate(value) if (m := each(item)))
        if len(problems) > before:
            ok = False
        kwargs[f.name] = value
    return cls(**kwargs) if ok else None


def _convert(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):  # only ``X | None`` is used in the model
        (inner,) = (a for a in get_args(hint) if a is not type(None))
        return _convert(inner, value, path, problems)
    if is_dataclass(hint):
        return _build(hint, value, path, problems)  # type: ignore[arg-type]
    if origin is tuple:
        item_hint = get_args(hint)[0]
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {_type_name(value)}")
            return ()
        return tuple(_convert(item_hint, item, f"{path}[{i}]", problems) for i, item in enumerate(value))
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            problems.append(f"{path}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    # bool is a subclass of int: ``keep_releases = true`` must not pass as 1.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        problems.append(f"{path}: expected {_type_name_of(hint)}, got {_type_name(value)} {value!r}")
    return value


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )


def _type_name_of(hint: type) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer"}.get(hint, hint.__name__)


def _closest(key: str, known: Mapping[str, Any]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def _duplicates(names: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield index, name
        seen.add(name)


def _check_model(config: PlatformConfig) -> Iterator[str]:
    """Rules that span several values: uniqueness, credentials and cross-references."""
    for i, name in _duplicates([u.prefix for u in config.upstreams]):
        yield f"upstreams[{i}].prefix: duplicate prefix {name!r}"
    for i, upstream in enumerate(config.upstreams):
        yield from _check_upstream(upstream, f"upstreams[{i}]")
    for i, name in _duplicates([t.name for t in config.teams]):
        yield f"teams[{i}].name: duplicate team name {name!r}"
    bases = [(t, b, base.name) for t, team in enumerate(config.teams) for b, base in enumerate(team.base_images)]
    seen_bases: set[str] = set()
    for t, b, name in bases:
        if name in seen_bases:
            yield f"teams[{t}].base_images[{b}].name: base image {name!r} is defined by another team too (build args BASE_<NAME> must be unique)"
        seen_bases.add(name)
    for t, team in enumerate(config.teams):
        image_names = [b.name for b in team.base_images] + [s.name for s in team.services]
        for i, name in _duplicates(image_names):
            kind, index = ("base_images", i) if i < len(team.base_images) else ("services", i - len(team.base_images))
            yield f"teams[{t}].{kind}[{index}].name: duplicate image name {name!r} in team {team.name!r}"
        for b, base in enumerate(team.base_images):
            yield from _check_platforms(base.platforms, f"teams[{t}].base_images[{b}].platforms")
        for s, service in enumerate(team.services):
            yield from _check_service(service, f"teams[{t}].services[{s}]")


def _check_upstream(upstream: Upstream, path: str) -> Iterator[str]:
    if upstream.needs_credential and not upstream.credential_secret:
        yield (
            f"{path}.credential_secret: {upstream.registry} needs a Secrets Manager secret named "
            f"'{PULL_THROUGH_SECRET_PREFIX}...'"
        )
    if upstream.credential_secret and not upstream.credential_secret.startswith(PULL_THROUGH_SECRET_PREFIX):
        yield (
            f"{path}.credential_secret: expected a name starting {PULL_THROUGH_SECRET_PREFIX!r} "
            f"(ECR requires it), got {upstream.credential_secret!r}"
        )
    if not upstream.needs_credential and upstream.credential_secret:
        yield f"{path}.credential_secret: {upstream.registry} takes no credential; remove the key"
    if not upstream.upstream_url:
        yield f"{path}.url: {upstream.registry} has no public endpoint; set the registry URL"


def _check_platforms(platforms: tuple[str, ...], path: str) -> Iterator[str]:
    if not platforms:
        yield f"{path}: expected at least one of {', '.join(PLATFORMS)}"
    for i, name in _duplicates(list(platforms)):
        yield f"{path}[{i}]: duplicate platform {name!r}"


def _check_service(service: Service, path: str) -> Iterator[str]:
    yield from _check_platforms(service.platforms, f"{path}.platforms")
    for i, name in _duplicates([s.id for s in service.secrets]):
        yield f"{path}.secrets[{i}].id: duplicate secret id {name!r}"
    for key, value in (("dockerfile", service.dockerfile), ("context", service.context)):
        if Path(value).is_absolute() or ".." in Path(value).parts:
            yield f"{path}.{key}: expected a path inside the source repository, got {value!r}"
    deploy = service.deploy
    if deploy.lambda_ and deploy.lambda_.platform not in service.platforms:
        yield (
            f"{path}.deploy.lambda.architecture: {deploy.lambda_.architecture!r} needs platform "
            f"{deploy.lambda_.platform!r}, which the service does not build (platforms: {list(service.platforms)})"
        )
    if deploy.ecs:
        wanted = "linux/amd64" if deploy.ecs.cpu_architecture == "x86_64" else "linux/arm64"
        if wanted not in service.platforms:
            yield (
                f"{path}.deploy.ecs.cpu_architecture: {deploy.ecs.cpu_architecture!r} needs platform "
                f"{wanted!r}, which the service does not build (platforms: {list(service.platforms)})"
            )
