"""Image builders: one interface (:class:`pipeline.builders.base.Builder`), a module per builder CLI.

``buildx`` is what CodeBuild runs (BuildKit, registry cache, push by digest); ``docker`` is the docker CLI against a
dockerd with built-in BuildKit (Debian's ``docker.io``, local mode); ``podman`` builds with no daemon at all.
"""

from __future__ import annotations

from pipeline.builders.base import Builder, BuildError, BuildRequest, BuildSecretSource, BuiltImage

BUILDERS = ("buildx", "docker", "podman")


def get_builder(name: str) -> Builder:
    if name == "buildx":
        from pipeline.builders.buildx import BuildxBuilder

        return BuildxBuilder()
    if name == "docker":
        from pipeline.builders.docker import DockerBuilder

        return DockerBuilder()
    if name == "podman":
        from pipeline.builders.podman import PodmanBuilder

        return PodmanBuilder()
    raise BuildError(f"builder {name!r}: expected one of {', '.join(BUILDERS)}")


__all__ = [
    "BUILDERS",
    "BuildError",
    "BuildRequest",
    "BuildSecretSource",
    "Builder",
    "BuiltImage",
    "get_builder",
]
