"""payments/api: one image, two faces. Under Lambda (``AWS_LAMBDA_RUNTIME_API`` is set) it hands over to the Lambda
runtime interface client with ``app.handler.handle``; anywhere else (ECS, EKS) it serves HTTP on ``$HOST:$PORT``:
``GET /health`` answers with the machine it runs on."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app.service import health

# The Lambda base's runtime interface client (awslambdaric in its own virtualenv).
LAMBDA_PYTHON = "/home/app/lambda/bin/python"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, document = health() if self.path in ("/", "/health") else (404, {"error": "not found"})
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH", "")]))
        os.execv(LAMBDA_PYTHON, [LAMBDA_PYTHON, "-m", "awslambdaric", "app.handler.handle"])
    # 0.0.0.0 in a task (awsvpc) or a pod; local checks run on the host network and pass HOST=127.0.0.1.
    address = (os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))
    ThreadingHTTPServer(address, Handler).serve_forever()


if __name__ == "__main__":
    sys.exit(main())
