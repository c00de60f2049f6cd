"""The one mapping between OCI platforms and the names AWS and Debian give the same architectures."""

from __future__ import annotations

from pipeline.errors import InputError

# Lambda ``Architectures`` and the config's ``architecture``/``cpu_architecture`` values.
_ARCHITECTURE = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
# ECS ``runtimePlatform.cpuArchitecture``.
_ECS_CPU = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
# Debian's architecture names (dpkg, debootstrap, apt-get download pkg:arch).
_DEBIAN = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def platform_for_architecture(architecture: str) -> str:
    """``x86_64`` (Lambda, config) → ``linux/amd64``; ``arm64`` → ``linux/arm64``."""
    try:
        return _ARCHITECTURE[architecture]
    except KeyError:
        raise InputError(f"architecture {architecture!r}: expected one of {', '.join(_ARCHITECTURE)}") from None


def architecture_names() -> tuple[str, ...]:
    return tuple(_ARCHITECTURE)


def platform_for_ecs_cpu(cpu_architecture: str) -> str | None:
    """ECS ``cpuArchitecture`` (``X86_64``/``ARM64``) → platform; None for anything else."""
    return _ECS_CPU.get(cpu_architecture)


def debian_arch(platform: str) -> str:
    return _DEBIAN[platform]


def slug(platform: str) -> str:
    """``linux/arm64`` → ``arm64``: construct IDs, artifact names, cache tags."""
    return platform.split("/", 1)[1].replace("/", "-")
