"""moto's server (``python -m pipeline.local.moto_server -H 127.0.0.1 -p PORT``) with IAM enforced by Slipway's
evaluator (:mod:`pipeline.local.iam_enforcement`; on when ``INITIAL_NO_AUTH_ACTION_COUNT`` is set) and one correction
to its signature check: moto hashes a request without a body (Lambda's REST GETs) as if the request's headers were the payload,
so every signed ``GetFunction``/``ListFunctions`` fails with SignatureDoesNotMatch (moto 5.2.5). A GET, HEAD or
DELETE without a body hashes as the empty string, as AWS and botocore hash it. Three services do what moto only records:
Lambda's Invoke runs the function's image (:mod:`pipeline.local.lambda_standin`) and ECS's UpdateService rolls the
service out (:mod:`pipeline.local.ecs_standin`), and CodePipeline's StartPipelineExecution leaves an execution for the
replay to run (:mod:`pipeline.local.codepipeline_standin`), so the jobs' commands run unchanged against the stand-in."""

from __future__ import annotations

import os
import sys
from typing import Any

from moto.iam import access_control

from pipeline.local import codepipeline_standin, ecs_standin, iam_enforcement, lambda_standin, registry_token

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self: Any) -> Any:
    if self._method in ("GET", "HEAD", "DELETE") and not self._body:
        self._data = b""
    return _original(self)


def main() -> None:
    access_control.IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]
    iam_enforcement.install()
    lambda_standin.install()
    ecs_standin.install()
    codepipeline_standin.install()
    if key := os.environ.get(registry_token.KEY_ENV):
        iam_enforcement.install_tokens(key)
    from moto.server import main as serve

    serve(sys.argv[1:])


if __name__ == "__main__":
    main()
