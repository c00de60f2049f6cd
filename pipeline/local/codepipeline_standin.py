"""CodePipeline's StartPipelineExecution inside the AWS stand-in starts an execution the replay then runs.

moto 5.2.5 records an execution as ``Succeeded`` the moment it is started (it runs nothing) and ignores the request's
``clientRequestToken``; its CreatePipeline reads every trust statement's principal as a service (a role the stand-in
also lets its admin assume fails with a server error). Here a pipeline is created when its role trusts CodePipeline
in any statement, as IAM reads a trust policy; a new execution is ``InProgress`` until the replay's engine -- CodePipeline's part of the
replay (:mod:`pipeline.local.replay.starts`) -- has run it (a created pipeline starts one, as CodePipeline's
creation does), and a retried start with the same token answers the same
execution, as CodePipeline's idempotent start does. So the job that publishes a base calls the cloud's API unchanged.
"""

from __future__ import annotations

import json
from typing import Any

TOKEN = "client_request_token"
SERVICE = "codepipeline.amazonaws.com"


def trusted_services(iam_backend: Any, role_arn: str) -> set[str]:
    """The services a role's trust policy names, in any statement (none: no such role)."""
    try:
        role = iam_backend.get_role_by_arn(role_arn)
    except Exception:  # moto's NotFound: CodePipeline cannot assume a role that does not exist
        return set()
    found: set[str] = set()
    for statement in json.loads(role.assume_role_policy_document).get("Statement", []):
        service = (statement.get("Principal") or {}).get("Service", [])
        found.update([service] if isinstance(service, str) else service)
    return found


def install() -> None:
    from moto.codepipeline import models
    from moto.codepipeline.responses import CodePipelineResponse

    original_init = models.PipelineExecution.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.status = "InProgress"

    models.PipelineExecution.__init__ = init  # type: ignore[method-assign]

    def create_pipeline(self: Any, pipeline: dict[str, Any], tags: list[dict[str, str]]) -> Any:
        from moto.codepipeline.exceptions import InvalidStructureException

        if pipeline["name"] in self.pipelines:
            raise InvalidStructureException(f"A pipeline with the name '{pipeline['name']}' already exists")
        if SERVICE not in trusted_services(self.iam_backend, pipeline["roleArn"]):
            raise InvalidStructureException(
                f"CodePipeline is not authorized to perform AssumeRole on role {pipeline['roleArn']}"
            )
        if len(pipeline["stages"]) < 2:
            raise InvalidStructureException(f"Pipeline has only {len(pipeline['stages'])} stage(s)")
        self.pipelines[pipeline["name"]] = models.CodePipeline(self.account_id, self.region_name, pipeline)
        self.start_pipeline_execution(pipeline["name"], None)  # CodePipeline starts a pipeline it creates
        return pipeline, []

    models.CodePipelineBackend.create_pipeline = create_pipeline  # type: ignore[method-assign]
    original = CodePipelineResponse.start_pipeline_execution

    def start_pipeline_execution(self: Any) -> str:
        token, name = self._get_param("clientRequestToken"), self._get_param("name")
        pipeline = self.codepipeline_backend.pipelines.get(name)
        if token and pipeline is not None:
            for execution in pipeline.executions.values():
                if getattr(execution, TOKEN, None) == token:
                    return json.dumps({"pipelineExecutionId": execution.pipeline_execution_id})
        answer = str(original(self))
        if token and pipeline is not None:
            setattr(pipeline.executions[json.loads(answer)["pipelineExecutionId"]], TOKEN, token)
        return answer

    CodePipelineResponse.start_pipeline_execution = start_pipeline_execution  # type: ignore[method-assign]
