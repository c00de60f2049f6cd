"""Image builders: one interface (:class:`pipeline.builders.base.Builder`), a module per builder CLI.

``buildx`` is the one backend: BuildKit through ``docker buildx``, the same code in CodeBuild, local mode, tests and
benchmarks. The classic ``docker build`` (inline cache only, not reproducible) and ``podman`` (checked only as a
command line) were removed; a new backend implements :class:`Builder` and registers here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.builders.base import Builder, BuildError, BuildRequest, BuildSecretSource, BuiltImage

if TYPE_CHECKING:
    from pipeline.registry.base import RegistryClient

BUILDERS = ("buildx",)


def get_builder(name: str, *, client: RegistryClient | None = None) -> Builder:
    """``client`` pushes the built image (default: the client for the image's registry)."""
    if name == "buildx":
        from pipeline.builders.buildx import BuildxBuilder

        return BuildxBuilder(client=client)
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
