"""The platform team's `cdk deploy --all`, as far as the replay needs it: the app synthesized and its file assets
published where the templates say (roles and pipeline definitions: :mod:`iam`, :mod:`starts`). The templates hold no
lock: what the bases publish reaches the jobs through the lock store, never through another synthesis."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from pipeline import assembly
from pipeline.config import PlatformConfig


def synthesize(config: PlatformConfig, outdir: Path, *, lock: dict[str, str] | None = None) -> list[assembly.Pipeline]:
    """The app synthesized as `slipway synth` does; ``lock``: the platform repository's (default: this checkout's)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.platform_app import build_app

    # The assembly is written over, never removed first: CDK stages an asset once per process, so a second synth in
    # the same process would leave the tools asset out of a fresh directory (manifest.json names what is current).
    build_app(config, outdir=str(outdir), lock=lock).synth()
    return assembly.load(outdir)


def publish_assets(outdir: Path, s3: Any) -> None:
    """What `cdk deploy` does with file assets before the stacks: zip each and put it where the template says."""
    for manifest in outdir.glob("*.assets.json"):
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            source = outdir / asset["source"]["path"]
            if asset["source"].get("packaging") != "zip":
                continue
            if not source.is_dir():
                raise assembly.AssemblyError(
                    f"{manifest}: asset {source.name} is not in the assembly; synthesize again"
                )
            archive = outdir / f"{source.name}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(source.rglob("*")):
                    if path.is_file():
                        zf.write(path, path.relative_to(source))
            for destination in asset["destinations"].values():
                bucket = destination["bucketName"]
                if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                    s3.create_bucket(
                        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name}
                    )
                s3.upload_file(str(archive), bucket, destination["objectKey"])
