"""The registry gate in front of Debian's docker-registry: what ECR refuses is refused before anything is stored."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pipeline.local import registry_token, services
from pipeline.local.registry_gate import Gate
from pipeline.local.replay.authorize import Policies
from tests.unit.test_registry_gate import BUILD_ROLE, POLICIES, STITCH_ROLE, _session

pytestmark = pytest.mark.integration
KEY = "test-key"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class _Gate(Gate):
    def policies(self) -> Policies:
        return POLICIES


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(services.REGISTRY_BINARY).exists():
        pytest.skip("docker-registry is not installed")
    state = tmp_path_factory.mktemp("gate")
    store_port = services.free_port()
    with services.running(services.registry_service(state, store_port)):
        server = _Gate(services.free_port(), f"127.0.0.1:{store_port}", state / "cdk.out", KEY)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def _auth(role_arn: str) -> tuple[str, str]:
    return ("AWS", registry_token.issue(_session(role_arn), KEY)[0])


def _push_manifest(gate: str, role_arn: str, repository: str, tag: str, label: str) -> requests.Response:
    """A config blob and an empty-layered manifest naming it (``label`` makes the content differ)."""
    auth = _auth(role_arn)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"v": label}},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()  # fmt: skip
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    started = requests.post(f"{gate}/v2/{repository}/blobs/uploads/", auth=auth, timeout=10)
    if started.status_code != 202:
        return started
    location = started.headers["Location"]
    joiner = "&" if "?" in location else "?"
    done = requests.put(f"{location}{joiner}digest={digest}", data=config, auth=auth, timeout=10,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert done.status_code == 201, done.text
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                           "size": len(config)}}  # fmt: skip
    return requests.put(f"{gate}/v2/{repository}/manifests/{tag}", data=json.dumps(manifest).encode(), auth=auth,
                        headers={"Content-Type": OCI_MANIFEST}, timeout=10)  # fmt: skip


def test_anonymous_and_forged_credentials_get_401_with_a_basic_challenge(gate: str) -> None:
    anonymous = requests.get(f"{gate}/v2/", timeout=5)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    forged = base64.b64encode(b"AWS:111111111111-auth-token").decode()
    assert requests.get(f"{gate}/v2/", headers={"Authorization": f"Basic {forged}"}, timeout=5).status_code == 401
    assert requests.get(f"{gate}/v2/", auth=_auth(BUILD_ROLE), timeout=5).status_code == 200


def test_a_push_by_a_role_the_repository_policy_denies_stores_nothing(gate: str) -> None:
    refused = _push_manifest(gate, STITCH_ROLE, "payments/api", "f00d", "stitch")
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED" and "ecr:InitiateLayerUpload" in error["message"]
    tags = requests.get(f"{gate}/v2/payments/api/tags/list", auth=_auth(BUILD_ROLE), timeout=5)
    assert tags.status_code == 404 or "f00d" not in (tags.json().get("tags") or [])


def test_a_release_tag_never_moves_and_the_cache_tags_do(gate: str) -> None:
    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "c0ffee", "one").status_code == 201
    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "c0ffee", "one").status_code == 201  # same content
    moved = _push_manifest(gate, BUILD_ROLE, "payments/api", "c0ffee", "two")
    assert moved.status_code == 400
    assert moved.json()["errors"][0] == {
        "code": "TAG_INVALID",
        "message": "The image tag 'c0ffee' already exists in the 'payments/api' repository and cannot be "
        "overwritten because the tag is immutable.",
        "detail": None,
    }
    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "cache-linux-amd64", "one").status_code == 201
    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "cache-linux-amd64", "two").status_code == 201
    served = requests.get(f"{gate}/v2/payments/api/manifests/c0ffee", auth=_auth(BUILD_ROLE), timeout=5,
                          headers={"Accept": OCI_MANIFEST})  # fmt: skip
    assert served.status_code == 200 and served.headers["Content-Type"] == OCI_MANIFEST


def test_a_tls_hello_gets_a_plain_http_answer_so_clients_fall_back_to_http(gate: str) -> None:
    import socket

    host, port = gate.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(bytes.fromhex("16030100a5010000a10303") + b"\x00" * 32)  # the start of a ClientHello
        assert sock.recv(5) == b"HTTP/"


def test_a_store_that_does_not_answer_is_a_503_not_a_dropped_connection(tmp_path: Path) -> None:
    server = _Gate(services.free_port(), f"127.0.0.1:{services.free_port()}", tmp_path, KEY)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.server_address[1]}/v2/payments/api/manifests/c0ffee",
                              auth=_auth(BUILD_ROLE), timeout=5)  # fmt: skip
        assert answer.status_code == 503 and answer.json()["errors"][0]["code"] == "UNAVAILABLE"
    finally:
        server.shutdown()
        server.server_close()


def test_an_artifact_pushed_with_a_subject_is_listed_by_the_referrers_api_as_ecr_lists_it(gate: str) -> None:
    """docker-registry 2.8 stores an OCI 1.1 artifact (empty config, ``subject``) but has no referrers API; the gate
    answers it as ECR does, so the code that finds a release's attestations is the one that runs against ECR."""
    from pipeline.attest import referrers
    from pipeline.registry import RepositoryRef
    from pipeline.registry.distribution import DistributionClient

    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "5ub1ec7", "subject").status_code == 201
    user, password = _auth(BUILD_ROLE)
    client = DistributionClient(authorization="Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    repo = RepositoryRef.parse(gate.removeprefix("http://") + "/payments/api")
    subject = client.get_manifest(repo, "5ub1ec7", (OCI_MANIFEST,))
    assert client.referrers(repo, subject.digest) == []
    blob = b'{"payloadType": "application/vnd.in-toto+json"}'
    artifact = referrers.artifact(subject, "application/vnd.dsse.envelope.v1+json", blob, {"kind": "sig"})
    referrers.push(client, repo, "5ub1ec7-sig", artifact, blob)
    [listed] = referrers.listed(client, repo, subject.digest)
    assert listed == referrers.descriptor(artifact)
    fallback = requests.get(
        f"{gate}/v2/payments/api/manifests/{referrers.fallback_tag(subject.digest)}",
        timeout=5,
        auth=(user, password),
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )
    assert fallback.status_code == 404  # the API answered: no fallback tag was written
    filtered = requests.get(f"{gate}/v2/payments/api/referrers/{subject.digest}?artifactType=other", timeout=5,
                            auth=(user, password))  # fmt: skip
    assert filtered.json()["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"


def test_the_gate_counts_the_bytes_it_moves(gate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#30's benchmark reads its bytes here: each request body pushed (the config blob, the manifest) and each
    response body pulled, once each."""
    from pipeline.local import transfers

    log = tmp_path / "transfers.jsonl"
    monkeypatch.setenv(transfers.ENV, str(log))
    assert _push_manifest(gate, BUILD_ROLE, "payments/api", "c0unted", "counted").status_code == 201
    start = transfers.mark(log)
    served = requests.get(f"{gate}/v2/payments/api/manifests/c0unted", auth=_auth(BUILD_ROLE), timeout=5,
                          headers={"Accept": OCI_MANIFEST})  # fmt: skip
    manifest = served.json()
    assert transfers.since(log, start) == transfers.Moved(pulled=len(served.content))
    assert transfers.since(log, 0) == transfers.Moved(
        pushed=manifest["config"]["size"] + len(served.content), pulled=len(served.content)
    )
