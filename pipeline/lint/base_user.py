"""The user a base image runs as, read from its config in the registry: what SW008 judges when the final stage sets
no USER (distroless ``:nonroot`` runs as uid 65532 without a USER line in the Dockerfile that uses it).

The lock pins every base by digest, so the answer is fixed for the release. Only a reference pinned by digest is
read (a tag could move under the lint); an index is read for the platform being judged. Anything that cannot be read
is unknown -- and SW008 then keeps its finding (the gate never passes on a guess).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pipeline.errors import SlipwayError
from pipeline.oci import ANY_MANIFEST, IMAGE_MANIFESTS, INDEXES, index_children
from pipeline.references import DIGEST
from pipeline.registry import RegistryClient, RepositoryRef, client_for

ImageUser = Callable[[str, str], "str | None"]
"""``(image reference pinned by digest, platform) -> the config's User ('' for none), or None when unknown``."""


def registry_user(client_for_repo: Callable[[RepositoryRef], RegistryClient] = client_for) -> ImageUser:
    """An :data:`ImageUser` that reads the registry (ECR with the job's credentials)."""
    cache: dict[tuple[str, str], str | None] = {}

    def user(reference: str, platform: str) -> str | None:
        if (reference, platform) not in cache:
            cache[reference, platform] = _read(client_for_repo, reference, platform)
        return cache[reference, platform]

    return user


def _read(client_for_repo: Callable[[RepositoryRef], RegistryClient], reference: str, platform: str) -> str | None:
    name, _, digest = reference.partition("@")
    if not DIGEST.fullmatch(digest):
        return None
    repository = name if ":" not in name.rsplit("/", 1)[-1] else name.rsplit(":", 1)[0]
    try:
        repo = RepositoryRef.parse(repository)
        client = client_for_repo(repo)
        manifest = client.get_manifest(repo, digest, ANY_MANIFEST)
        if manifest.media_type in INDEXES:
            child = next((c for c in index_children(manifest) if str(c.platform) == platform), None)
            if child is None:
                return None
            manifest = client.get_manifest(repo, child.digest, IMAGE_MANIFESTS)
        config = json.loads(client.get_blob(repo, manifest.json()["config"]["digest"]))
    except (SlipwayError, KeyError, ValueError, TypeError, OSError):
        return None
    return str((config.get("config") or {}).get("User") or "")
