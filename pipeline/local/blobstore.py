"""The S3 stand-in behind the local registry: where a blob GET is redirected, as ECR redirects to presigned S3 URLs.

The registry (``redirect`` storage middleware) answers ``GET /v2/<name>/blobs/<digest>`` with 307 to
``http://localhost:<port>/<storage path>``: another host than the registry's ``127.0.0.1``. Like S3 behind a presigned
URL, this server refuses any request that carries an ``Authorization`` header (400, "Only one auth mechanism
allowed"), so a client that forwards registry credentials across the redirect fails here as it would on AWS.

Run as ``python -m pipeline.local.blobstore ROOT PORT``; it serves files under ROOT only (read-only).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline.local import transfers

REFUSAL = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidArgument</Code>"
    b"<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
    b"parameter or the Authorization header should be specified</Message></Error>"
)


class BlobStore(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, port: int) -> None:
        self.root = root.resolve()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: BlobStore

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        if "Authorization" in self.headers:
            self._reply(400, REFUSAL if body else b"", "application/xml")
            return
        path = (self.server.root / self.path.split("?", 1)[0].lstrip("/")).resolve()
        if self.server.root not in path.parents or not path.is_file():
            self._reply(404, b"", "application/xml")
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
            transfers.record(transfers.PULLED, len(data), f"GET {self.path.split('?', 1)[0]}")

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main(argv: list[str]) -> int:
    root, port = Path(argv[0]), int(argv[1])
    with BlobStore(root, port) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
