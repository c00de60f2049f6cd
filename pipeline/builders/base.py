"""What every builder takes and returns, and how it runs its CLI."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import SlipwayError
from pipeline.platforms import slug
from pipeline.registry.base import pull_address

CACHE_TAG_PREFIX = "cache-"


class BuildError(SlipwayError):
    """The build failed; the message names the image and platform and ends with the builder's last output."""


@dataclass(frozen=True)
class BuildSecretSource:
    """A BuildKit secret: ``id`` as the Dockerfile mounts it, its value from environment variable ``env`` or file
    ``src`` (a CA bundle for a TLS-intercepting proxy, say)."""

    id: str
    env: str = ""
    src: str = ""

    @classmethod
    def parse(cls, text: str) -> BuildSecretSource:
        parts = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
        if set(parts) not in ({"id", "env"}, {"id", "src"}) or not all(parts.values()):
            raise BuildError(f"secret {text!r}: expected 'id=NAME,env=VARIABLE' or 'id=NAME,src=FILE'")
        return cls(parts["id"], parts.get("env", ""), parts.get("src", ""))


@dataclass(frozen=True)
class BuildRequest:
    repository: str
    platform: str
    context: Path
    dockerfile: Path
    secrets: tuple[BuildSecretSource, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    """Non-secret build arguments only: values end up in the image history."""
    network_host: bool = False
    """Debian's dockerd runs with --bridge=none: RUN steps need the host network."""
    target: str = ""
    """Dockerfile stage to build; default the last."""
    source_date_epoch: int = 0
    """``SOURCE_DATE_EPOCH``: the commit time. Configs' ``created`` and every file time in the layers are set to it,
    so the same commit and the same pinned bases give the same digests."""
    use_cache: bool = True
    """Import the registry cache. False builds cold (the cache is still exported), e.g. to prove reproducibility."""

    @property
    def slug(self) -> str:
        return slug(self.platform)

    @property
    def cache_ref(self) -> str:
        """One registry-cache tag per platform, mutable by design (excluded from tag immutability)."""
        return f"{pull_address(self.repository)}:{CACHE_TAG_PREFIX}{self.slug}"

    def secret_values(self) -> dict[str, str]:
        missing = [s.env for s in self.secrets if s.env and s.env not in os.environ]
        missing += [s.src for s in self.secrets if s.src and not Path(s.src).is_file()]
        if missing:
            raise BuildError(
                f"image {self.repository} ({self.platform}): secret source {', '.join(missing)} not set or missing"
            )
        return {s.id: os.environ[s.env] if s.env else Path(s.src).read_text() for s in self.secrets}


@dataclass(frozen=True)
class BuiltImage:
    digest: str
    """The pushed single-platform manifest."""
    log: str = ""
    sbom: dict[str, Any] | None = None
    """Its SBOM (SPDX 2.3), read from the layers the build exported (:mod:`pipeline.attest.sbom`)."""

    @property
    def cache_hits(self) -> int:
        """BuildKit steps answered from cache (``#N CACHED`` in its plain progress output)."""
        return len(re.findall(r"^#\d+ CACHED", self.log, re.M))


class Builder(Protocol):
    name: str

    def build(self, request: BuildRequest) -> BuiltImage:
        """Build ``request`` for its platform and push it; return the pushed manifest's digest."""
        ...


def common_options(request: BuildRequest) -> list[str]:
    """Options every docker-compatible CLI takes the same way."""
    argv = ["--platform", request.platform, "--file", str(request.dockerfile)]
    if request.target:
        argv += ["--target", request.target]
    if request.network_host:
        argv += ["--network", "host"]
    for name, value in request.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    return argv


def run(argv: Sequence[str], *, request: BuildRequest, env: Mapping[str, str] | None = None) -> str:
    """Run a builder command; on failure raise one clear line plus the tail of its output."""
    try:
        completed = subprocess.run(
            list(argv),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(f"image {request.repository} ({request.platform}): {argv[0]} not found on PATH") from exc
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise BuildError(
            f"image {request.repository} ({request.platform}): {_command_name(argv)} failed "
            f"(exit {completed.returncode})\n{tail}"
        )
    return completed.stdout + completed.stderr


def _command_name(argv: Sequence[str]) -> str:
    """``docker buildx build``, ``docker info``: the program and its subcommands, without options."""
    words = [Path(argv[0]).name]
    for word in argv[1:3]:
        if word.startswith("-"):
            break
        words.append(word)
    return " ".join(words)
