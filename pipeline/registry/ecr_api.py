"""ECR control-plane client: ``BatchGetImage`` / ``PutImage`` instead of the distribution API.

Useful where only the AWS API is reachable (and against moto in tests). ``PutImage`` is given ``imageDigest``
explicitly: without it moto computes a digest from layers rather than bytes, and a digest must name bytes.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipeline.oci import Manifest
from pipeline.registry.base import ManifestNotFoundError, RegistryError, RepositoryRef


class EcrApiClient:
    def __init__(self, *, ecr: Any = None, region: str | None = None) -> None:
        self._ecr = ecr or boto3.client("ecr", region_name=region)
        self.round_trips = 0

    def get_manifest(self, repo: RepositoryRef, reference: str, accept: Sequence[str]) -> Manifest:
        image_id = {"imageDigest": reference} if reference.startswith("sha256:") else {"imageTag": reference}
        what = f"image {repo.name}{'@' if 'imageDigest' in image_id else ':'}{reference}"
        self.round_trips += 1
        try:
            response = self._ecr.batch_get_image(
                repositoryName=repo.name, imageIds=[image_id], acceptedMediaTypes=list(accept)
            )
        except ClientError as exc:
            raise RegistryError(f"{what}: {exc.response['Error']['Code']}: {exc.response['Error']['Message']}") from exc
        images = response.get("images", [])
        if not images:
            failure = (response.get("failures") or [{}])[0]
            raise ManifestNotFoundError(f"{what}: not found ({failure.get('failureCode', 'ImageNotFound')})")
        image = images[0]
        return Manifest(image["imageManifest"].encode(), image.get("imageManifestMediaType", ""))

    def put_manifest(self, repo: RepositoryRef, reference: str, manifest: Manifest) -> str:
        kwargs: dict[str, Any] = {
            "repositoryName": repo.name,
            "imageManifest": manifest.data.decode(),
            "imageManifestMediaType": manifest.media_type,
            "imageDigest": manifest.digest,
        }
        if not reference.startswith("sha256:"):
            kwargs["imageTag"] = reference
        self.round_trips += 1
        try:
            response = self._ecr.put_image(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise RegistryError(
                f"push of image {repo.name}:{reference}: {code}: {exc.response['Error']['Message']}"
            ) from exc
        return str(response["image"]["imageId"]["imageDigest"])

    def get_blob(self, repo: RepositoryRef, digest: str) -> bytes:
        self.round_trips += 1
        try:
            url = self._ecr.get_download_url_for_layer(repositoryName=repo.name, layerDigest=digest)["downloadUrl"]
        except ClientError as exc:
            raise RegistryError(f"blob {repo.name}@{digest}: {exc.response['Error']['Code']}") from exc
        with urllib.request.urlopen(url, timeout=30) as response:
            data: bytes = response.read()
            return data

    def has_blob(self, repo: RepositoryRef, digest: str) -> bool:
        self.round_trips += 1
        try:
            response = self._ecr.batch_check_layer_availability(repositoryName=repo.name, layerDigests=[digest])
        except ClientError as exc:
            raise RegistryError(f"blob {repo.name}@{digest}: {exc.response['Error']['Code']}") from exc
        return any(layer.get("layerAvailability") == "AVAILABLE" for layer in response.get("layers", []))

    def put_blob(self, repo: RepositoryRef, digest: str, path: Path) -> None:
        """InitiateLayerUpload, one UploadLayerPart per 16 MiB, CompleteLayerUpload (which checks the digest)."""
        part_size = 16 << 20
        try:
            upload_id = self._ecr.initiate_layer_upload(repositoryName=repo.name)["uploadId"]
            offset = 0
            with path.open("rb") as handle:
                while chunk := handle.read(part_size):
                    self.round_trips += 1
                    self._ecr.upload_layer_part(
                        repositoryName=repo.name, uploadId=upload_id, partFirstByte=offset,
                        partLastByte=offset + len(chunk) - 1, layerPartBlob=chunk,
                    )  # fmt: skip
                    offset += len(chunk)
            self._ecr.complete_layer_upload(repositoryName=repo.name, uploadId=upload_id, layerDigests=[digest])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise RegistryError(
                f"upload of blob {repo.name}@{digest}: {code}: {exc.response['Error']['Message']}"
            ) from exc
