"""``slipway verify``: check that the registry serves exactly what image.json says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.records import ImageRecord
from pipeline.registry import RegistryClient, RepositoryRef, client_for
from pipeline.stitch import verify as verify_image


def register(commands: Any) -> None:
    parser = commands.add_parser("verify", help="re-read an image.json's index and children", description=__doc__)
    parser.add_argument("--image-json", type=Path, default=Path("image.json"))
    parser.set_defaults(run=lambda a: verify(image_json=a.image_json))


def verify(*, image_json: Path, client: RegistryClient | None = None) -> int:
    record = ImageRecord.load(image_json)
    verify_image(client or client_for(RepositoryRef.parse(record.repository)), record)
    print(f"{record.index_uri}: verified ({', '.join(sorted(record.platforms))})")
    return 0
