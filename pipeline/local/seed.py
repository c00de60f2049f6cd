"""Seed a local registry with base images where ECR's pull-through cache would serve them.

No public registry is reachable here, so the upstream base is made from Debian packages: ``busybox-static`` for each
architecture gives a tiny rootfs with a shell, imported with ``FROM scratch`` + ``ADD rootfs.tar`` (no RUN, so no
emulation needed) and published as a multi-arch OCI index through :func:`pipeline.release.release` -- the same path
every service takes. The tar is deterministic (fixed mtimes, sorted entries), so re-seeding yields the same
digests.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import SlipwayError
from pipeline.local.pull_through import upstream_of
from pipeline.oci import ANY_MANIFEST
from pipeline.platforms import debian_arch
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef
from pipeline.release import release

BUSYBOX_APPLETS = (
    "sh", "ash", "cat", "cp", "echo", "ls", "mkdir", "chmod", "rm", "mv", "uname", "test", "[", "sleep", "env",
    "id", "grep", "sed", "tr", "wc", "head", "tail", "true", "false", "printf", "ln", "touch", "find", "tar",
    "gzip", "httpd", "nc", "wget", "whoami", "stat", "du", "sha256sum",
)  # fmt: skip
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class SeedError(SlipwayError):
    pass


def download_busybox(platform: str, directory: Path) -> Path:
    """``apt-get download busybox-static:<arch>`` (needs ``dpkg --add-architecture`` for foreign arches)."""
    arch = debian_arch(platform)
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(directory.glob(f"busybox-static_*_{arch}.deb"))
    if existing:
        return existing[-1]
    completed = subprocess.run(
        ["apt-get", "download", f"busybox-static:{arch}"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    debs = sorted(directory.glob(f"busybox-static_*_{arch}.deb"))
    if completed.returncode != 0 or not debs:
        raise SeedError(
            f"base image busybox ({platform}): apt-get download busybox-static:{arch} failed: "
            f"{completed.stderr.strip()[-300:]} (run `make deps`, which adds the {arch} architecture)"
        )
    return debs[-1]


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = mode
    info.type = kind
    info.linkname = link
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def busybox_rootfs(deb: Path, out: Path) -> Path:
    """A minimal, reproducible rootfs: busybox, applet links, passwd/group with a non-root user, /tmp."""
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(["dpkg-deb", "-x", str(deb), directory], check=True)
        busybox = (Path(directory) / "bin" / "busybox").read_bytes()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("bin", "etc", "root", "tmp", "usr", "usr/bin"):
            _add(tar, folder, kind=tarfile.DIRTYPE, mode=0o1777 if folder == "tmp" else 0o755)
        _add(tar, "bin/busybox", data=busybox, mode=0o755)
        for applet in sorted(BUSYBOX_APPLETS):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", data=PASSWD.encode())
        _add(tar, "etc/group", data=GROUP.encode())
    return out


ROOTFS_DOCKERFILE = 'FROM scratch\nARG TARGETARCH\nADD rootfs-${TARGETARCH}.tar /\nCMD ["/bin/sh"]\n'


def import_rootfs(
    client: RegistryClient, *, repository: str, tag: str, rootfs: dict[str, Path], work: Path
) -> ImageRecord:
    """One rootfs per platform, imported (``FROM scratch``, ``ADD rootfs-$TARGETARCH.tar``) and released as
    ``repository:tag`` through :func:`pipeline.release.release`, like any image.

    Idempotent: a tag already serving every platform is reused as it is, the way a pull-through cache keeps what it
    fetched (a release tag never moves).
    """
    context = work / "context"
    context.mkdir(parents=True, exist_ok=True)
    for platform, tar in rootfs.items():
        staged = context / f"rootfs-{debian_arch(platform)}.tar"
        staged.unlink(missing_ok=True)
        try:
            staged.hardlink_to(tar)
        except OSError:
            shutil.copyfile(tar, staged)
    (context / "Dockerfile").write_text(ROOTFS_DOCKERFILE)
    made = release(
        client, name=repository.split("/", 1)[1], repository=repository, context=context,
        dockerfile=context / "Dockerfile", platforms=sorted(rootfs), build_args={}, tag=tag,
    )  # fmt: skip
    return made.record


def seed_busybox(
    client: RegistryClient,
    *,
    registry: str,
    platforms: Sequence[str],
    work: Path,
    debs: Path,
    prefix: str = "docker-hub",
) -> ImageRecord:
    """``<registry>/<prefix>/library/busybox:1.35`` for each platform: where pull-through cache serves Docker Hub."""
    work.mkdir(parents=True, exist_ok=True)
    rootfs = {p: busybox_rootfs(download_busybox(p, debs), work / f"rootfs-{debian_arch(p)}.tar") for p in platforms}
    repository = str(RepositoryRef(registry, f"{prefix}/library/busybox"))
    return import_rootfs(client, repository=repository, tag="1.35", rootfs=rootfs, work=work)


def debootstrap_rootfs(platform: str, cache: Path, *, suite: str = "bookworm") -> Path:
    """A Debian minbase rootfs tar for ``platform`` (arm64 runs its second stage under QEMU), cached by path."""
    arch = debian_arch(platform)
    tar = cache / f"debian-{suite}-{arch}.tar"
    if tar.exists():
        return tar
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as directory:
        target = Path(directory) / "rootfs"
        completed = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--arch={arch}", "--include=ca-certificates,tzdata", suite,
             str(target), "http://deb.debian.org/debian"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            tail = "\n".join(completed.stdout.splitlines()[-5:] + completed.stderr.splitlines()[-5:])
            raise SeedError(f"base image debian:{suite} ({platform}): debootstrap failed\n{tail}")
        # apt lists and caches are not part of a base image.
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            subprocess.run(["find", str(target / leftover), "-type", "f", "-delete"], check=False)
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."], check=True)
        partial.rename(tar)
    return tar


def seed_debian(
    client: RegistryClient,
    *,
    registry: str,
    platforms: Sequence[str],
    work: Path,
    cache: Path,
    prefix: str = "docker-hub",
) -> ImageRecord:
    """``<registry>/<prefix>/library/debian:bookworm``: where pull-through cache serves Docker Hub's Debian."""
    work.mkdir(parents=True, exist_ok=True)
    rootfs = {p: debootstrap_rootfs(p, cache) for p in platforms}
    repository = str(RepositoryRef(registry, f"{prefix}/library/debian"))
    return import_rootfs(client, repository=repository, tag="bookworm", rootfs=rootfs, work=work)


COMMITTED_LOCK = Path(__file__).resolve().parents[2] / "images" / "lock.json"
UPDATE_FILE = "etc/slipway-upstream-update"


def upstream_tags(committed: Path = COMMITTED_LOCK) -> dict[str, tuple[str, str]]:
    """``{lock key: (repository name, tag)}``: the upstream tags the platform follows (the committed lock)."""
    from pipeline import bases
    from pipeline.runner_image import TARGETS as RUNNERS

    found = {}
    for key, value in bases.load(committed, required=True).items():
        if key in RUNNERS:  # built by the platform (`slipway runner bootstrap`), not served by an upstream
            continue
        name, _, rest = value.partition(":")
        found[key] = (name, rest.partition("@")[0])
    return found


CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def with_update(tar: Path, out: Path, update: str) -> Path:
    """``tar`` as an upstream update leaves it, deterministically (fixed mtimes: the same update, the same digest):
    the CA bundle with one more line -- what a ``ca-certificates`` security update changes, and what every image
    that talks TLS carries -- and ``/etc/slipway-upstream-update`` saying ``update``. Later members of a tar win when
    it is unpacked, as ADD unpacks it."""
    shutil.copyfile(tar, out)
    with tarfile.open(tar) as source:
        bundle = next((m for m in source.getmembers() if m.name.lstrip("./") == CA_BUNDLE and m.isfile()), None)
        data = source.extractfile(bundle).read() if bundle is not None else None  # type: ignore[union-attr]
    with tarfile.open(out, "a") as archive:
        files = {UPDATE_FILE: f"{update}\n".encode()}
        if bundle is not None and data is not None:
            files[bundle.name] = data + f"# upstream update {update}\n".encode()
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            archive.addfile(info, io.BytesIO(content))
    return out


def _rootfs(name: str, platform: str, *, work: Path, cache: Path) -> Path:
    """Debian's for a Debian upstream; otherwise a busybox rootfs standing in for what the tag serves (BuildKit's
    image is named in the lock but never run locally: local builds use the docker driver)."""
    if name.endswith("/debian"):
        return debootstrap_rootfs(platform, cache)
    return busybox_rootfs(download_busybox(platform, cache), work / f"busybox-{debian_arch(platform)}.tar")


def seed_upstreams(
    client: RegistryClient, *, registry: str, platforms: Sequence[str], work: Path, cache: Path, update: str = ""
) -> dict[str, tuple[ImageRecord, str]]:
    """What the upstream registries serve for every tag the committed lock follows, in the upstream stand-in
    (``slipway-upstream/<cache path>``: a pull by tag through the cache imports it, as ECR does):
    ``{lock key: (release, tag)}``. ``update``: a new image under each tag (the tag moves to it)."""
    seed_busybox(client, registry=registry, platforms=platforms, work=work / "busybox", debs=cache,
                 prefix=upstream_of("docker-hub"))  # fmt: skip
    found = {}
    for key, (name, tag) in upstream_tags().items():
        where = work / name.replace("/", "-")
        where.mkdir(parents=True, exist_ok=True)
        rootfs = {p: _rootfs(name, p, work=where, cache=cache) for p in platforms}
        if update:
            rootfs = {p: with_update(t, where / f"{update}-{debian_arch(p)}.tar", update) for p, t in rootfs.items()}
        repository = str(RepositoryRef(registry, upstream_of(name)))
        record = import_rootfs(client, repository=repository, tag=f"{tag}-{update}" if update else tag, rootfs=rootfs,
                               work=where)  # fmt: skip
        if update:  # the upstream moves its tag, as Docker Hub does
            repo = RepositoryRef.parse(repository)
            client.put_manifest(repo, tag, client.get_manifest(repo, record.index_digest, ANY_MANIFEST))
        found[key] = (record, tag)
    return found


def republish_upstreams(
    client: RegistryClient, *, registry: str, platforms: Sequence[str], work: Path, cache: Path
) -> dict[str, tuple[ImageRecord, str]]:
    """Every upstream tag moved to a new image (update ``u1``, ``u2``… counted from the debian repository's tags)."""
    name, tag = upstream_tags()["UPSTREAM_DEBIAN"]
    done = [t for t in client.list_tags(RepositoryRef(registry, upstream_of(name))) if t.startswith(f"{tag}-u")]
    return seed_upstreams(client, registry=registry, platforms=platforms, work=work, cache=cache,
                          update=f"u{len(done) + 1}")  # fmt: skip
