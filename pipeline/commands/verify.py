"""``slipway verify``: check that the registry serves exactly what image.json says (``--attestations KEY``: and
that the release is signed, with its provenance, by the platform's release key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.attest.release import verify as verify_attestations
from pipeline.attest.signer import KmsSigner, Signer
from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import verify as verify_image


def register(commands: Any) -> None:
    parser = commands.add_parser("verify", help="re-read an image.json's index and children", description=__doc__)
    parser.add_argument("--image-json", type=Path, default=Path("image.json"))
    parser.add_argument(
        "--attestations",
        metavar="KEY",
        default="",
        help="also check the release's signature and provenance with this release key (ARN)",
    )
    parser.add_argument("--source", default="", help="with --attestations: the source repository it must name")
    parser.set_defaults(run=lambda a: verify(image_json=a.image_json, key=a.attestations, source=a.source))  # fmt: skip


def verify(*, image_json: Path, client: RegistryClient | None = None, key: str = "", source: str = "",
           signer: Signer | None = None) -> int:  # fmt: skip
    record = ImageRecord.load(image_json)
    client = client or client_for(RepositoryRef.parse(record.repository))
    verify_image(client, record)
    print(f"{record.index_uri}: verified ({', '.join(sorted(record.platforms))})")
    if key or signer:
        for found in verify_attestations(client, record, signer or KmsSigner(key), source=source):
            print(f"{record.index_uri}: {found.kind}: {found.digest} {found.says}")
    return 0
