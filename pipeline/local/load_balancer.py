"""The services' load balancers, as a deploy job reaches them: an HTTPS proxy stand-in.

An ECS target may name a ``health_url`` -- its load balancer's -- that ``slipway deploy ecs`` GETs after steady state,
going back to the previous revision unless it answers 200. No load balancer exists locally and the URL's host resolves
nowhere, so the replay gives each job ``HTTPS_PROXY`` pointing here (the deploy's ``urllib`` honours it, as it would a
corporate proxy in a CodeBuild VPC):

- a ``CONNECT`` to a host that a deploy target's ``health_url`` names is answered by this stand-in itself: TLS with a
  certificate for that host from a local CA (the job trusts it through ``SSL_CERT_FILE``, a bundle of the machine's
  CAs plus that one), then the status the service's **current** task image answers on its ``health_path`` -- read
  from the AWS stand-in (service -> task definition -> image and ``runtimePlatform``) and run as an ECS task would
  run it. Until that image has answered, the load balancer says 503, as an ALB does with no healthy target;
- a ``CONNECT`` to any other host is tunnelled through unchanged (pip reaching its index, for one).

So the deploy's own health check runs, unchanged, against what the service serves now.
"""

from __future__ import annotations

import datetime
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STARTING = 503
"""What a load balancer answers before any target is healthy."""


@dataclass(frozen=True)
class Fronted:
    """One health URL and the ECS service behind it."""

    account: str
    cluster: str
    service: str
    container: str
    url_path: str
    """The health URL's path (what the load balancer is asked)."""
    health_path: str
    """The container's own health path (what the load balancer asks the target)."""
    region: str = ""
    """Where the service runs (empty: the replay's home region)."""


Probe = Callable[[Fronted], tuple[str, Callable[[], int]]]
"""``fronted -> (the image it serves now, a function that runs that image and returns its health status)``."""


class LoadBalancers(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fronted: dict[str, Fronted], tls: ssl.SSLContext, probe: Probe) -> None:
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.fronted, self.tls, self.probe = fronted, tls, probe
        self.statuses: dict[str, int] = {}
        self._probing: set[str] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def status(self, host: str, path: str) -> int:
        """What the load balancer answers for ``host`` + ``path``: the current image's health (503 until known)."""
        fronted = self.fronted[host]
        if path.split("?", 1)[0] != fronted.url_path:
            return 404
        image, run = self.probe(fronted)
        with self._lock:
            if image in self.statuses:
                return self.statuses[image]
            if image not in self._probing:
                self._probing.add(image)
                threading.Thread(target=self._measure, args=(image, run), daemon=True).start()
        return STARTING

    def _measure(self, image: str, run: Callable[[], int]) -> None:
        try:
            status = run()
        except Exception:
            status = STARTING
        with self._lock:
            self.statuses[image] = status
            self._probing.discard(image)


class _Proxy(BaseHTTPRequestHandler):
    server: LoadBalancers

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if host in self.server.fronted:
            self.send_response(200, "Connection established")
            self.end_headers()
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
            _Listener(tls, self.client_address, self.server, host)
            self.close_connection = True
            return
        try:
            upstream = socket.create_connection((host, int(port or 443)), timeout=30)
        except (OSError, ValueError):
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        _relay(self.connection, upstream)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class _Listener(BaseHTTPRequestHandler):
    """One HTTP request inside the TLS tunnel: the load balancer's answer."""

    server: LoadBalancers

    def __init__(self, request: Any, client: Any, server: LoadBalancers, host: str) -> None:
        self.host = host
        super().__init__(request, client, server)

    def do_GET(self) -> None:
        status = self.server.status(self.host, self.path)
        body = b'{"status": %d}\n' % status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    with upstream:
        sockets = [client, upstream]
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 60)
            if broken or not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)


def certificates(directory: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A local CA and a certificate for ``hosts`` signed by it: ``(ca.pem, cert.pem, key.pem)`` under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Slipway local load balancers CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


def trust_bundle(directory: Path, ca: Path, extra: str = "") -> Path:
    """The machine's CA bundle (and ``extra``, a CA file the machine's own network needs) plus the local CA."""
    system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    parts = [Path(p).read_bytes() for p in (system, extra) if p and Path(p).is_file()]
    bundle = directory / "trust.pem"
    bundle.write_bytes(b"\n".join([*parts, ca.read_bytes()]))
    return bundle


_RUNNING: list[LoadBalancers] = []


def stop_all() -> None:
    """Stop every stand-in this process started (the end of a local run)."""
    while _RUNNING:
        server = _RUNNING.pop()
        server.shutdown()
        server.server_close()


def start(
    directory: Path, fronted: dict[str, Fronted], probe: Probe, *, extra_ca: str = ""
) -> tuple[LoadBalancers, dict[str, str]]:
    """The stand-in serving ``fronted`` (host -> service), and the environment a job reaches it with."""
    ca, cert, key = certificates(directory, sorted(fronted) or ["localhost"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = LoadBalancers(fronted, tls, probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _RUNNING.append(server)
    environment = {
        "HTTPS_PROXY": server.url, "https_proxy": server.url, "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost", "SSL_CERT_FILE": str(trust_bundle(directory, ca, extra_ca)),
    }  # fmt: skip
    return server, environment
