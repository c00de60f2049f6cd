"""Slipway's runner image: what every CodeBuild job of the platform runs in, and what the local replay runs each job in.

``images/runner/Dockerfile`` on the platform's upstream Debian (the lock's ``UPSTREAM_DEBIAN``, through the pull-through
cache), built for both runners (``linux/amd64`` for the x86 projects, ``linux/arm64`` for ``ARM_CONTAINER``) the way
every release is built (:func:`pipeline.release.release`: reproducible, pushed by digest, stitched into one index) into
``slipway/runner`` of the platform's registry, and pinned in the lock as ``RUNNER``. Every CodeBuild project names it
by digest (:mod:`infra.jobs`).

The first runner cannot be built by a job, since every job runs in it: ``slipway runner bootstrap`` builds it where
the platform team runs ``cdk deploy`` (the way ``cdk bootstrap`` makes what CDK deploys with), once, before the first
``cdk deploy --all``; the lock entry it writes is committed with the platform repository. A new runner (a Slipway
upgrade, a dependency's security fix) is the same command and a commit of the lock: the platform pipeline deploys it,
and each job runs in it from its next start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import bases
from pipeline.builders.base import BuildError
from pipeline.errors import InputError
from pipeline.oci import ANY_MANIFEST
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.registry.base import endpoint
from pipeline.release import release

LOCK_KEY = "RUNNER"
PLATFORM_LOCK_KEY = "RUNNER_PLATFORM"
"""The ``platform`` target: the runner plus Node, the CDK libraries and the CDK CLI, for the platform's Deploy job."""
REPOSITORY = "slipway/runner"
DOCKERFILE = Path("images/runner/Dockerfile")
PLATFORMS = ("linux/amd64", "linux/arm64")
TARGETS = {LOCK_KEY: ("runner", PLATFORMS), PLATFORM_LOCK_KEY: ("platform", ("linux/amd64",))}
"""Lock key → (Dockerfile target, platforms). The platform's Deploy runs on the x86 runner only."""
SOURCES = ("images/runner", "pyproject.toml", "package-lock.json", "pipeline", "infra")
"""What the image copies (its ``.dockerignore`` lets nothing else in): the release tags are their hash."""
UPSTREAM_KEY = "UPSTREAM_DEBIAN"


@dataclass(frozen=True)
class Bootstrap:
    record: ImageRecord
    entry: str
    """The lock entry: ``slipway/runner:<target>-<hash>@<index digest>``."""
    created: bool


def source_tag(checkout: Path, upstream: str, target: str = "runner") -> str:
    """``<target>-<hash>`` of the image's sources and the upstream it is built on: the same inputs, the same tag."""
    digest = hashlib.sha256(upstream.encode())
    for top in SOURCES:
        root = checkout / top
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(checkout)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"{target}-" + digest.hexdigest()[:16]


def bootstrap(client: RegistryClient, *, registry: str, lock: dict[str, str], checkout: Path) -> dict[str, Bootstrap]:
    """Build and release both targets from ``checkout`` on the lock's upstream Debian: ``{lock key: release}``. The
    upstream is first read by its tag (what imports it into a pull-through cache) and must still be the locked
    digest."""
    if UPSTREAM_KEY not in lock:
        raise InputError(f"image {REPOSITORY}: the lock has no {UPSTREAM_KEY}, the Debian the runner is built on")
    locked = lock[UPSTREAM_KEY]
    name, _, rest = locked.partition(":")
    tag, _, digest = rest.partition("@")
    served = client.get_manifest(RepositoryRef(registry, name), tag, ANY_MANIFEST)
    if served.digest != digest:
        raise InputError(
            f"image {REPOSITORY}: {UPSTREAM_KEY} is {locked} in the lock, but {registry}/{name}:{tag} serves "
            f"{served.digest} now (run `slipway bases update` first)"
        )
    upstream = bases.build_args({UPSTREAM_KEY: locked}, endpoint(registry))

    def one(key: str) -> Bootstrap:
        target, platforms = TARGETS[key]
        released = release(
            client, name=target, repository=str(RepositoryRef(registry, REPOSITORY)), context=checkout,
            dockerfile=checkout / DOCKERFILE, platforms=platforms, build_args=upstream, target=target,
            tag=source_tag(checkout, locked, target),
        )  # fmt: skip
        entry = bases.entry(REPOSITORY, released.record.tag, released.record.index_digest)
        return Bootstrap(released.record, entry, released.created)

    # Side by side: the platform target (x86_64) builds while the arm64 runner, the longest, builds under emulation.
    with ThreadPoolExecutor(max_workers=len(TARGETS)) as pool:
        return dict(zip(TARGETS, pool.map(one, TARGETS), strict=True))


def image_uri(lock: dict[str, str], registry: str, key: str = LOCK_KEY) -> str:
    """``<registry>/slipway/runner@sha256:…`` (the index: CodeBuild pulls the child of its runner's architecture)."""
    entry = lock.get(key, "")
    if not entry:
        raise InputError(
            f"the lock has no {key}: every CodeBuild project runs in Slipway's runner image, built once by "
            "`slipway runner bootstrap` before the first `cdk deploy --all`"
        )
    name = entry.partition(":")[0]
    return f"{registry}/{name}@{entry.rpartition('@')[2]}"


def describe(record: ImageRecord) -> str:
    return json.dumps({"index": record.index_uri, "platforms": dict(sorted(record.platforms.items()))}, indent=2)


DAEMON_CONFIG = Path("/etc/docker/daemon.json")
"""In the image: images in containerd (buildx's docker driver exports a registry cache), as the local builder keeps
them (:data:`pipeline.local.services.DAEMON_CONFIG`)."""
DAEMON_READY_SECONDS = 60.0


def ensure_dockerd(*, docker: str = "docker", timeout: float = DAEMON_READY_SECONDS, log: Path | None = None) -> str:
    """A Docker daemon answering ``docker``: the one ``DOCKER_HOST`` names (the replay's, standing in for privileged
    mode), else this image's own ``dockerd`` started in the background (CodeBuild, privileged) and waited for."""
    if _answers(docker):
        return "docker daemon: answering"
    binary = shutil.which("dockerd")
    if binary is None:
        raise BuildError(
            f"image {REPOSITORY}: no docker daemon answers and there is no dockerd on PATH (a build project must be "
            "privileged and run in Slipway's runner image)"
        )
    log = log or Path(os.environ.get("TMPDIR") or "/tmp") / "dockerd.log"
    with log.open("ab") as out:
        subprocess.Popen(
            [binary, f"--config-file={DAEMON_CONFIG}"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(docker):
            return f"docker daemon: started ({binary}, log {log})"
        time.sleep(0.5)
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    raise BuildError(f"image {REPOSITORY}: dockerd did not answer within {timeout:.0f} s: {' | '.join(tail)}")


def _answers(docker: str) -> bool:
    try:
        return subprocess.run([docker, "info"], capture_output=True, check=False, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


CDK_CLI_HOME = Path("/opt/slipway/cdk")
"""Where the ``platform`` target holds the CDK CLI that package-lock.json pins (``node_modules/.bin/cdk``)."""
NPM_REGISTRY = "https://registry.npmjs.org"


def cdk_cli_pin(package_lock: Path) -> tuple[str, str]:
    """``(version, integrity)`` of ``aws-cdk`` in ``package_lock`` (npm's ``sha512-<base64>``)."""
    try:
        entry = json.loads(package_lock.read_text(encoding="utf-8"))["packages"]["node_modules/aws-cdk"]
        return str(entry["version"]), str(entry["integrity"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{package_lock}: no pinned aws-cdk (packages.node_modules/aws-cdk: {exc})") from exc


def install_cdk_cli(package_lock: Path, home: Path = CDK_CLI_HOME, *, fetch: Any = None) -> Path:
    """The CDK CLI ``package_lock`` pins, into ``home/node_modules/aws-cdk``, checked against the lock's integrity
    before anything is unpacked (the package bundles its dependencies: one tarball). Runs in the image's build, the
    one place the runner reaches npm's registry; returns the ``cdk`` command."""
    import base64
    import io
    import tarfile
    import urllib.request

    version, integrity = cdk_cli_pin(package_lock)
    algorithm, _, expected = integrity.partition("-")
    url = f"{NPM_REGISTRY}/aws-cdk/-/aws-cdk-{version}.tgz"
    data = fetch(url) if fetch else urllib.request.urlopen(url, timeout=120).read()
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise InputError(f"{url}: its sha512 is not package-lock.json's integrity {integrity}")
    target = home / "node_modules" / "aws-cdk"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("package/")]
        for member in members:
            member.name = member.name.removeprefix("package/")
            # What tarfile's "data" filter refuses (Debian 12's Python 3.11.2 predates the filter).
            if (
                member.name.startswith("/")
                or ".." in Path(member.name).parts
                or not (member.isfile() or member.isdir())
            ):
                raise InputError(f"{url}: {member.name!r} is not a plain file inside the package")
            member.mode &= 0o755
        archive.extractall(target, members=members)
    command = home / "node_modules" / ".bin" / "cdk"
    command.parent.mkdir(parents=True, exist_ok=True)
    command.unlink(missing_ok=True)
    command.symlink_to(Path("..") / "aws-cdk" / "bin" / "cdk")
    return command
