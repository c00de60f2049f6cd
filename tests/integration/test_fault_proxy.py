"""Faults injected between the deployer and the AWS stand-in (a proxy in front of moto): an ECS UpdateService that
moto applied but whose answer never came back. The deploy must judge what the service names now -- the new revision
-- and finish, instead of reporting "previous revision still serving" over a change that happened."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipeline.commands.deploy import deploy
from pipeline.config import EcsTarget
from pipeline.deployers.base import DeployRecord
from pipeline.deployers.ecs import EcsDeployer
from tests.integration.deploys import OLD, REGISTRY

pytestmark = pytest.mark.integration
UPDATE_SERVICE = "AmazonEC2ContainerServiceV20141113.UpdateService"


class FaultProxy(ThreadingHTTPServer):
    """Forwards every request to moto; for the operations in ``lose``, forwards it and then drops the connection
    without an answer (the change is made, its answer lost)."""

    daemon_threads = True

    def __init__(self, upstream: str, lose: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream, self.lose, self.lost = upstream, lose, 0


class _Forward(BaseHTTPRequestHandler):
    server: FaultProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.server.upstream + self.path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer, kept = response.status, response.read(), response.headers.items()
        except urllib.error.HTTPError as exc:
            status, answer, kept = exc.code, exc.read(), exc.headers.items()
        if self.headers.get("X-Amz-Target") in self.server.lose:
            self.server.lost += 1
            self.close_connection = True
            return  # applied upstream; nothing comes back
        self.send_response(status)
        for key, value in kept:
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxied_ecs(moto_endpoint: str, ecs_client: Any) -> Iterator[tuple[Any, FaultProxy]]:
    proxy = FaultProxy(moto_endpoint, {UPDATE_SERVICE})
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield boto3.client(
            "ecs", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{proxy.server_address[1]}",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=5),
        ), proxy  # fmt: skip
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_an_update_service_applied_but_unanswered_is_judged_by_what_the_service_names(
    proxied_ecs: tuple[Any, FaultProxy], ecs_client: Any, image_json: Path, tmp_path: Path
) -> None:
    ecs, proxy = proxied_ecs
    worker = ecs_client.describe_services(cluster="payments", services=["worker"])["services"][0]
    task = ecs_client.register_task_definition(
        family="faulty", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "faulty", "image": OLD, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    if not [s for s in ecs_client.describe_services(cluster="payments", services=["faulty"])["services"]
            if s["status"] == "ACTIVE"]:  # fmt: skip
        ecs_client.create_service(cluster="payments", serviceName="faulty", taskDefinition=task, desiredCount=1,
                                  launchType="FARGATE", networkConfiguration=worker["networkConfiguration"])  # fmt: skip
    else:
        ecs_client.update_service(cluster="payments", service="faulty", taskDefinition=task)
    target = EcsTarget(cluster="payments", service="faulty", container="faulty")
    out = tmp_path / "deployed.json"
    assert deploy(EcsDeployer(ecs, poll_seconds=0.1), target, image_json=image_json, out=out, timeout=30,
                  registry=REGISTRY) == 0  # fmt: skip
    assert proxy.lost >= 1  # the fault happened (the SDK may resend it once; every answer was lost)
    record = DeployRecord.load(out)
    service = ecs_client.describe_services(cluster="payments", services=["faulty"])["services"][0]
    assert (record.changed, record.revision, record.waited) == (True, service["taskDefinition"], True)
