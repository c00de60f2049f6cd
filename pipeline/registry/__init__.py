"""Registry clients: one small interface (:class:`RegistryClient`), a module per API.

``distribution`` speaks the OCI distribution HTTP API (any registry, ECR included, with a token from
``ecr:GetAuthorizationToken``); ``ecr_api`` speaks the ECR control-plane API (``BatchGetImage``/``PutImage``).
Stitch and verify are written once against the interface.
"""

from __future__ import annotations

from pipeline.registry.base import RegistryClient, RegistryError, RepositoryRef, client_for

__all__ = ["RegistryClient", "RegistryError", "RepositoryRef", "client_for"]
