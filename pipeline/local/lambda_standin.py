"""Lambda's Invoke inside the AWS stand-in runs the function's image, as Lambda does.

moto 5.2.5 answers an Invoke of a ``PackageType=Image`` function with HTTP 500. Here the version's image (the digest
its code names) is pulled from the registry stand-in as Lambda's service would pull it, started on its own
architecture (arm64 under QEMU) behind a Lambda Runtime API emulator, and invoked with the request's payload; its
answer is the Invoke's payload, a function error is ``X-Amz-Function-Error``. So ``slipway deploy lambda`` smoke-tests
a published version through the Lambda API in the replay exactly as it does in AWS -- no second code path.

The moto process learns where the builder and the registry are from the local state (``SLIPWAY_LOCAL_STATE``),
read at the first Invoke: dockerd starts after moto does.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from pipeline.local.state import STATE_ENV
from pipeline.platforms import platform_for_architecture
from pipeline.registry.base import ENDPOINT_ENV, REGIONS_ENV

_environment_lock = threading.Lock()


def _runtime_environment() -> None:
    """Where the image runs and is pulled from, from the local state; the same for every Invoke of this process."""
    from pipeline.local import verify
    from pipeline.local.state import LocalState

    with _environment_lock:
        if os.environ.get(ENDPOINT_ENV):
            return
        state = LocalState.load(Path(os.environ[STATE_ENV]))
        wanted = {ENDPOINT_ENV: state.registry, verify.RUNTIME_DOCKER_CONFIG: str(state.directory / "runtime-docker")}
        if state.regions:
            wanted[REGIONS_ENV] = state.regions  # a function in another region pulls its replica there
        if state.docker_host:
            wanted["DOCKER_HOST"] = state.docker_host
        os.environ.update(wanted)


def invoke(function: Any, body: Any) -> tuple[bytes, bool]:
    """``(payload, errored)`` of one invocation of ``function`` (a moto ``LambdaFunction`` or one of its versions)."""
    from pipeline.local import verify

    _runtime_environment()
    event = json.loads(body) if body else {}
    platform = platform_for_architecture((function.architectures or ["x86_64"])[0])
    version = str(getattr(function, "version", "") or "latest")
    image, account = function.code["ImageUri"], getattr(function, "account_id", "")
    # In the AWS stand-in's log, as Lambda's own logs name the version and image a request ran.
    print(f"Invoke {function.function_name}:{version} ({account}) runs {image}", file=sys.stderr, flush=True)
    return verify.run_invocation(function.function_name, version, image, event, platform=platform)


def keep_versions_immutable() -> None:
    """A published version keeps the code it was published with, as in Lambda. moto 5.2.5's ``PublishVersion``
    copies the function shallowly, so every version shares ``$LATEST``'s ``code`` dict and the next
    ``UpdateFunctionCode`` changes the image every version's Invoke runs: after a release that failed its smoke test,
    invoking the alias (still on the previous version) ran the failed release's image. Idempotent."""
    from moto.awslambda.models import LambdaStorage

    if getattr(LambdaStorage.publish_version, "slipway", False):
        return
    original = LambdaStorage.publish_version

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        version = original(self, name_or_arn, description)
        latest = self._functions.get(getattr(version, "function_name", ""), {}).get("latest")
        if version is not None and latest is not None and version is not latest and version.code is latest.code:
            version.code = copy.deepcopy(latest.code)
        return version

    publish_version.slipway = True  # type: ignore[attr-defined]
    LambdaStorage.publish_version = publish_version  # type: ignore[method-assign]


def keep_invoke_qualifier() -> None:
    """Invoke runs the version (or alias) its ``Qualifier`` names, as in Lambda. moto 5.2.5's Invoke asks its request
    for ``qualifier`` in lower case, finds nothing in the ``Qualifier`` that botocore sends, and runs ``$LATEST``: a
    smoke test of version N ran whatever ``$LATEST`` held, a canary's two versions ran the same image, and a check
    of the alias after a failed release ran the failed release. Idempotent."""
    from moto.awslambda.responses import LambdaResponse

    if getattr(LambdaResponse.invoke, "slipway", False):
        return
    original = LambdaResponse.invoke

    def invoke(self: Any) -> Any:
        given = self._get_param("Qualifier")
        if given and not self._get_param("qualifier"):
            asked = self._get_param
            self._get_param = lambda name, if_none=None: given if name == "qualifier" else asked(name, if_none)
        return original(self)

    invoke.slipway = True  # type: ignore[attr-defined]
    LambdaResponse.invoke = invoke  # type: ignore[method-assign]


def install() -> None:
    from moto.awslambda.models import LambdaFunction

    keep_versions_immutable()
    keep_invoke_qualifier()
    original = LambdaFunction.invoke

    def patched(self: Any, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
        if self.package_type != "Image" or not os.environ.get(STATE_ENV):
            return original(self, body, request_headers, response_headers)
        payload, errored = invoke(self, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    LambdaFunction.invoke = patched  # type: ignore[method-assign]
