"""The SBOM of a built image, read from its OCI layout's layers (pipeline.attest.sbom)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pipeline.attest.sbom import SbomError, from_layout

STATUS = b"""Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u9

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: zlib1g
Status: install ok installed
Architecture: arm64
Version: 1:1.2.13.dfsg-1
"""


def _layer(files: dict[str, bytes | None]) -> bytes:
    """A gzipped layer tar; ``None`` makes a whiteout of that path."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path, data in files.items():
            if data is None:
                directory, _, base = path.rpartition("/")
                path, data = f"{directory}/.wh.{base}" if directory else f".wh.{base}", b""
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _layout(tmp_path: Path, *layers: bytes) -> Path:
    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": put(b"{}"), "size": 2},
                           "layers": [{"digest": put(layer), "size": len(layer)} for layer in layers]}).encode()  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": put(manifest), "size": len(manifest)}]}  # fmt: skip
    (tmp_path / "index.json").write_text(json.dumps(index))
    return tmp_path


def test_installed_debian_packages_and_python_distributions_as_the_last_layer_left_them(tmp_path: Path) -> None:
    base = _layer({
        "var/lib/dpkg/status": STATUS,
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": b"Name: six\nVersion: 1.16.0\n",
        "app/venv/lib/python3.11/site-packages/gone-1.0.dist-info/METADATA": b"Name: gone\nVersion: 1.0\n",
    })  # fmt: skip
    app = _layer({
        "app/venv/lib/python3.11/site-packages/gone-1.0.dist-info": None,  # the app's layer deleted it
        "app/venv/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/METADATA": b"Name: Flask_Login\nVersion: 0.6.3\n",
    })  # fmt: skip
    document = from_layout(_layout(tmp_path, base, app), name="payments/api linux/arm64", digest="sha256:" + "a" * 64,
                           created="2026-12-04T00:00:00Z")  # fmt: skip
    assert document["spdxVersion"] == "SPDX-2.3" and document["creationInfo"]["created"] == "2026-12-04T00:00:00Z"
    purls = [p["externalRefs"][0]["referenceLocator"] for p in document["packages"]]
    assert purls == [
        "pkg:deb/debian/libc6@2.36-9+deb12u9?arch=arm64",
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=arm64",
        "pkg:pypi/flask-login@0.6.3",
        "pkg:pypi/six@1.16.0",
    ]
    again = from_layout(tmp_path, name="payments/api linux/arm64", digest="sha256:" + "a" * 64,
                        created="2026-12-04T00:00:00Z")  # fmt: skip
    assert again == document  # deterministic


def test_an_opaque_directory_hides_what_lower_layers_had_and_a_static_image_has_no_packages(tmp_path: Path) -> None:
    base = _layer({"var/lib/dpkg/status": STATUS})
    emptied = _layer({"var/lib/dpkg/.wh..wh..opq": b""})
    assert from_layout(_layout(tmp_path, base, emptied), name="x", digest="sha256:1", created="t")["packages"] == []


def test_a_layout_that_is_not_one_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SbomError, match=f"^{tmp_path}: not an OCI image layout of one image"):
        from_layout(tmp_path, name="x", digest="sha256:1", created="t")
