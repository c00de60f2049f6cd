"""An SPDX 2.3 SBOM of one built image, read from its layers as the build exported them (an OCI image layout).

What the image holds, as its package managers recorded it: the Debian packages of ``var/lib/dpkg/status`` (and
distroless' ``var/lib/dpkg/status.d/*``) marked installed, and the Python distributions of every
``site-packages``/``dist-packages`` ``*.dist-info/METADATA``. Layers are applied in order, whiteouts included, so a
file a later layer deleted is not reported. Deterministic: the same layers and time give the same document.
"""

from __future__ import annotations

import email.parser
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import SlipwayError

PREDICATE = "https://spdx.dev/Document/v2.3"
_DPKG = re.compile(r"^var/lib/dpkg/(status|status\.d/[^/]+)$")
_PYTHON = re.compile(r"^(?:.*/)?(?:site|dist)-packages/[^/]+\.dist-info/METADATA$")
_INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class SbomError(SlipwayError):
    pass


def sbom_path(build_record: Path) -> Path:
    """Where a build writes its image's SBOM: beside its record (``build-amd64.json`` → ``build-amd64.spdx.json``)."""
    return build_record.with_name(build_record.stem + ".spdx.json")


def from_layout(layout: Path, *, name: str, digest: str, created: str) -> dict[str, Any]:
    """The SBOM of the one image in ``layout`` (``digest``: its manifest's, named in the document)."""
    files = _files(layout)
    packages = [*_debian(files), *_python(files)]
    unique = {p["SPDXID"]: p for p in packages}
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "documentNamespace": f"https://slipway.dev/spdx/{digest.replace(':', '-')}",
        "creationInfo": {"created": created, "creators": ["Tool: slipway"]},
        "packages": [unique[k] for k in sorted(unique)],
    }  # fmt: skip


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, value = digest.partition(":")
    path = layout / "blobs" / algorithm / value
    if not path.is_file():
        raise SbomError(f"{layout}: blob {digest} is missing from the layout")
    return path


def _files(layout: Path) -> dict[str, bytes]:
    """The files of interest as the last layer left them."""
    try:
        descriptor = json.loads((layout / "index.json").read_text())["manifests"][0]
        manifest = json.loads(_blob(layout, descriptor["digest"]).read_text())
        if manifest.get("mediaType") in _INDEXES or descriptor.get("mediaType") in _INDEXES:
            manifest = json.loads(_blob(layout, manifest["manifests"][0]["digest"]).read_text())
        layers = [str(layer["digest"]) for layer in manifest["layers"]]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SbomError(f"{layout}: not an OCI image layout of one image ({exc})") from exc
    files: dict[str, bytes] = {}
    for layer in layers:
        try:
            with tarfile.open(_blob(layout, layer), mode="r:*") as archive:
                for member in archive:
                    _apply(files, archive, member)
        except (tarfile.TarError, OSError) as exc:
            raise SbomError(f"{layout}: layer {layer} cannot be read ({exc})") from exc
    return files


def _apply(files: dict[str, bytes], archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    path = member.name.lstrip("./").lstrip("/")
    directory, _, base = path.rpartition("/")
    if base == ".wh..wh..opq":  # an opaque directory: what lower layers had there is gone
        for name in [n for n in files if n.startswith(f"{directory}/")]:
            del files[name]
        return
    if base.startswith(".wh."):
        gone = f"{directory}/{base[4:]}" if directory else base[4:]
        for name in [n for n in files if n == gone or n.startswith(f"{gone}/")]:
            del files[name]
        return
    if not (_DPKG.match(path) or _PYTHON.match(path)):
        return
    if member.isfile() and (handle := archive.extractfile(member)) is not None:
        files[path] = handle.read()
    else:
        files.pop(path, None)


def _package(kind: str, name: str, version: str, purl: str) -> dict[str, Any]:
    ident = re.sub(r"[^A-Za-z0-9.-]", "-", f"{kind}-{name}-{version}")
    return {"name": name, "SPDXID": f"SPDXRef-{ident}", "versionInfo": version, "downloadLocation": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": purl}]}  # fmt: skip


def _debian(files: dict[str, bytes]) -> Iterator[dict[str, Any]]:
    for path in sorted(p for p in files if _DPKG.match(p)):
        for paragraph in files[path].decode(errors="replace").split("\n\n"):
            fields = {
                key.strip(): value.strip()
                for key, _, value in (line.partition(":") for line in paragraph.splitlines() if line[:1].strip())
            }
            if not fields.get("Package") or not fields.get("Status", "install ok installed").endswith(" installed"):
                continue
            name, version, arch = fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")
            yield _package("deb", name, version, f"pkg:deb/debian/{name}@{version}" + (f"?arch={arch}" if arch else ""))


def _python(files: dict[str, bytes]) -> Iterator[dict[str, Any]]:
    for path in sorted(p for p in files if _PYTHON.match(p)):
        headers = email.parser.BytesHeaderParser().parsebytes(files[path])
        name, version = str(headers.get("Name", "")), str(headers.get("Version", ""))
        if name:
            normalized = re.sub(r"[-_.]+", "-", name).lower()
            yield _package("pypi", normalized, version, f"pkg:pypi/{normalized}@{version}")
