"""ECR answers a blob GET with a 307 to a presigned S3 URL, and S3 refuses a request that also carries
``Authorization`` ("Only one auth mechanism allowed"). The registry client must drop its credentials when a redirect
leaves the registry's host (urllib, unlike requests, re-sends them)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.oci import digest_of
from pipeline.registry.base import RepositoryRef
from pipeline.registry.distribution import DistributionClient

BLOB = b"config bytes"
DIGEST = digest_of(BLOB)


class Storage(BaseHTTPRequestHandler):
    """The S3 stand-in: presigned URLs only, any Authorization header refused."""

    def do_GET(self) -> None:
        if "Authorization" in self.headers:
            body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
            self.send_response(400)
        else:
            body = BLOB
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry_and_storage() -> Iterator[str]:
    storage = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    # "localhost" and "127.0.0.1" are two hosts to urllib, as ECR's and S3's are.
    location = f"http://localhost:{storage.server_address[1]}/blob?X-Amz-Signature=abc"

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != "Basic QVdTOnRva2Vu":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    registry = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    for server in (storage, registry):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{registry.server_address[1]}"
    finally:
        for server in (storage, registry):
            server.shutdown()
            server.server_close()


def test_credentials_stay_with_the_registry_across_a_redirect(registry_and_storage: str) -> None:
    client = DistributionClient(authorization="Basic QVdTOnRva2Vu")
    assert client.get_blob(RepositoryRef(registry_and_storage, "payments/api"), DIGEST) == BLOB


def test_tags_are_listed_across_every_page() -> None:
    """ECR (and distribution) page `tags/list` with a `Link: <…?last=…&n=…>; rel="next"` header."""
    pages = {"": (["a", "b"], '</v2/x/y/tags/list?last=b&n=2>; rel="next"'), "b": (["c"], "")}

    class Tags(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            last = self.path.partition("last=")[2].partition("&")[0]
            tags, link = pages[last]
            body = ('{"name": "x/y", "tags": ' + str(tags).replace("'", '"') + "}").encode()
            self.send_response(200)
            if link:
                self.send_header("Link", link)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tags)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = RepositoryRef(f"127.0.0.1:{server.server_address[1]}", "x/y")
        assert DistributionClient().list_tags(repo) == ["a", "b", "c"]
    finally:
        server.shutdown()
