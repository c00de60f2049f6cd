"""The deployer interface: what every deploy target's module provides, returns and raises.

A target kind (Lambda, ECS, EKS, or a new one) is one module under ``pipeline/deployers/`` with a class that follows
:class:`Deployer` -- its CLI arguments, its deploy, and the IAM it needs, as data -- plus one line in
``pipeline.deployers.DEPLOYERS`` and its typed target in the config model. Nothing else names the kinds: the CLI, the
pipeline model, the CDK rendering and local mode all go through this interface.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from botocore.exceptions import BotoCoreError

from pipeline.config.strategy import Strategy
from pipeline.errors import SlipwayError
from pipeline.records import ImageRecord, RecordError, read_object, typed_field
from pipeline.references import pinned

PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class DeployError(SlipwayError):
    """The deploy did not happen or did not finish; the previous version is still serving."""


class DeployTarget(Protocol):
    """A typed target from platform.toml (``LambdaTarget``, ``EcsTarget``, ``EksTarget``)."""

    kind: ClassVar[str]

    @property
    def label(self) -> str:
        """``lambda:<function>``, ``ecs:<cluster>/<service>``, ``eks:<cluster>/<namespace>/<deployment>``."""
        ...

    @property
    def strategy(self) -> Strategy:
        """How traffic moves to a new release (#29)."""
        ...

    def cli_args(self) -> tuple[str, ...]:
        """The ``slipway deploy <kind>`` options that name this target."""
        ...


@dataclass(frozen=True)
class Invocation:
    ok: bool
    status: int
    answer: Any
    error: str = ""


Invoke = Callable[[str, str, str, dict[str, Any]], Invocation]
"""(function name, version, image, event) -> what the version answered."""


@dataclass(frozen=True)
class Grant:
    """One IAM statement the deploy role needs, as data (pipeline code never imports CDK; infra renders it).

    ``resources`` are ARN templates with ``{partition}``, ``{region}`` and ``{account}``; ``reason`` acknowledges
    cdk-nag's IAM5 for a wildcard resource and says why it cannot be narrower."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class PullImages:
    """The deploy role pulls from the service's repository (Lambda resolves the image at update time)."""


@dataclass(frozen=True)
class NamespaceAccess:
    """Kubernetes permissions: an EKS access entry with the edit policy, scoped to one namespace."""

    cluster: str
    namespace: str


Permission = Grant | PullImages | NamespaceAccess


class Deployer(Protocol):
    kind: ClassVar[str]
    help: ClassVar[str]

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """The options naming a target (and any the deploy itself takes)."""
        ...

    @classmethod
    def from_args(cls, args: argparse.Namespace, session: Any) -> Deployer:
        """A deployer whose clients are made from ``session`` (a boto3 session: the job's own, or an environment's
        workload role in its region), with the deploy options given on the command line."""
        ...

    @staticmethod
    def target_from_args(args: argparse.Namespace) -> DeployTarget: ...

    @staticmethod
    def permissions(target: Any) -> Sequence[Permission]:
        """What the deploy role needs for ``target``, and nothing more."""
        ...

    def deploy(self, record: ImageRecord, target: Any, *, timeout: float) -> DeployRecord:
        """Deploy the release: the child of the target's platform (Lambda) or the index (ECS, EKS)."""
        ...

    def deploy_ref(self, image: str, target: Any, *, timeout: float) -> DeployRecord:
        """Deploy one pinned reference already checked against the registry (a rollback to a recorded digest)."""
        ...

    def serving(self, target: Any) -> Serving:
        """What the target serves now and what Slipway's last deploy put there, read from the target itself."""
        ...

    def record_verified(self, target: Any, image: str, verified: str) -> None:
        """Leave on the target itself what proved ``image`` answers (:func:`verified_mark`), once it did."""
        ...


@dataclass(frozen=True)
class Serving:
    """What a target serves now, read live from it (``slipway status``), never from a record."""

    image: str
    """``repo@sha256:…`` serving now (the alias's version, the service's task definition, the Deployment's pod
    template); empty when the target serves nothing yet."""
    deployed: str
    """What Slipway's last deploy there put (its tag or annotation on the target itself); empty: none did."""
    revision: str = ""
    since: str = ""
    """When the serving revision was made, as the target says (ISO 8601), when it says."""
    previous: str = ""
    """What that deploy recorded as serving before it (its rollback target): a deploy that did not finish leaves
    the target serving this."""
    verified: str = ""
    """The verification mark the last deploy that answered left on the target (:func:`verified_mark`)."""
    shifting: str = ""
    """A traffic shift under way (#29), as the target says it: ``10 % on version 7``; empty: none."""

    @property
    def verification(self) -> str:
        """What proved the serving image answers, and when: empty when no deploy of *this* image recorded it."""
        digest, _, rest = self.verified.partition(" ")
        if not rest or digest != self.image.rpartition("@")[2]:
            return ""
        when, _, check = rest.partition(" ")
        return f"{check} at {when}"


TAG_VALUE_LIMIT = 256
"""An AWS tag value is at most 256 characters (Lambda and ECS alike)."""


def verified_mark(image: str, verification: Verification, when: datetime) -> str:
    """``<digest> <UTC time> <check>``: what a deploy leaves on its target (a Lambda or ECS tag, a Deployment
    annotation) once the new digest answered, so ``slipway status`` reads the verification from the target itself."""
    return f"{image.rpartition('@')[2]} {when.strftime('%Y-%m-%dT%H:%M:%SZ')} {verification}"[:TAG_VALUE_LIMIT]


@dataclass(frozen=True)
class Verification:
    """What proved the new digest serves: ``invoke`` 200 on ``aarch64``, ``GET /health`` 200 on ``x86_64``…"""

    ok: bool
    check: str
    status: int
    machine: str = ""

    def __str__(self) -> str:
        return f"{self.check} {self.status} {self.machine}".strip()


@dataclass(frozen=True)
class DeployRecord:
    """What was deployed where, and what it replaced: the basis for a rollback."""

    target: str
    """``lambda:<function>``, ``ecs:<cluster>/<service>``, ``eks:<cluster>/<namespace>/<deployment>``."""
    image: str
    """``repo@sha256:…`` now serving."""
    previous_image: str
    changed: bool
    """False when the target already ran this digest (nothing was touched)."""
    revision: str = ""
    """Lambda version, ECS task-definition ARN, or Kubernetes rollout revision."""
    waited: bool = False
    verified: Verification | None = None
    """What proved the new digest answers (None: this deploy changed nothing, or its target has no such check)."""
    environment: str = ""
    """The environment deployed to (empty: the platform's own account, no environments)."""
    account: str = ""
    """The workload account of that environment."""
    strategy: dict[str, Any] | None = None
    """How traffic moved (#29: ``kind``, ``steps`` with each bake's alarm state, ``outcome``); None: all at once."""

    @classmethod
    def load(cls, path: Path) -> DeployRecord:
        """A deploy record as written by ``slipway deploy`` (what a rollback returns to)."""
        data = read_object(path)
        previous = typed_field(data, "previous_image", str, path)
        if previous and not PINNED.fullmatch(previous):
            raise RecordError(
                f"{path}: field 'previous_image': expected 'repo@sha256:<64 hex>', got {previous[:120]!r}"
            )
        return cls(
            target=typed_field(data, "target", str, path),
            image=typed_field(data, "image", str, path),
            previous_image=previous,
            changed=typed_field(data, "changed", bool, path),
            revision=typed_field(data, "revision", str, path, ""),
            waited=typed_field(data, "waited", bool, path, False),
            verified=_verification(data.get("verified"), path),
            environment=typed_field(data, "environment", str, path, ""),
            account=typed_field(data, "account", str, path, ""),
            strategy=data["strategy"] if isinstance(data.get("strategy"), dict) else None,
        )


def _verification(data: Any, path: Path) -> Verification | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: field 'verified': expected an object or null")
    return Verification(
        ok=typed_field(data, "ok", bool, path), check=typed_field(data, "check", str, path),
        status=typed_field(data, "status", int, path), machine=typed_field(data, "machine", str, path, ""),
    )  # fmt: skip


def platform_image(record: ImageRecord, platform: str, target: str) -> str:
    """``repo@<child digest>`` for one platform: never the index (Lambda runs single-platform images only)."""
    image = record.platforms.get(platform)
    if image is None:
        raise DeployError(
            f"image {record.index_uri} lacks platform {platform} needed by {target} (has {', '.join(sorted(record.platforms))})"
        )
    if image.digest == record.index_digest:
        raise DeployError(f"{target}: refusing the index digest {image.digest}; expected the {platform} child")
    return pinned(record.repository, image.digest)


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float, what: str) -> None:
    """Poll ``check`` until it holds; ``timeout`` bounds the wait so a test (or a stuck rollout) cannot hang."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise DeployError(f"{what}: timed out after {timeout:.0f}s")
        time.sleep(interval)


@contextlib.contextmanager
def aws_reached(target: str) -> Iterator[None]:
    """An AWS API that cannot be reached or signed for (no endpoint, no credentials) ends the deploy as a DeployError
    naming the target, not a traceback; a change already made stays for the retry to judge."""
    try:
        yield
    except BotoCoreError as exc:
        raise DeployError(f"{target}: {exc}; the deploy did not finish (run it again to finish it)") from exc
