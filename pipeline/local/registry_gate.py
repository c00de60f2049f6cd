"""The registry's front door (``python -m pipeline.local.registry_gate``): ECR's authorization and tag immutability.

Debian's docker-registry stores and serves; it has neither ECR's per-principal authorization nor immutable tags. The
gate sits in front of it, on the registry's address, and does what ECR's registry API does before anything is stored:

- **Who**: a request needs ``Basic AWS:<password>`` from the AWS stand-in's ``GetAuthorizationToken``
  (:mod:`pipeline.local.registry_token`: the password names its caller and expires); anything else gets 401.
- **May they**: each request is the ECR action IAM authorizes for it (``ecr:PutImage`` for a manifest PUT,
  ``ecr:InitiateLayerUpload`` for a blob upload, ``ecr:BatchGetImage`` for a manifest read…) on the repository's ARN.
  The caller's identity policies (the role's, from the synthesized assembly; the stand-in's admin may do anything) and
  the repository's own policy are evaluated as IAM evaluates a same-account request: an explicit deny in either wins,
  else an allow in either; otherwise 403 ``DENIED``.
- **Pull-through cache repositories fill as ECR fills them** (:mod:`pipeline.local.pull_through`): a pull by tag
  imports from the upstream stand-in (``ecr:BatchImportUpstreamImage``, and ``ecr:CreateRepository`` the first time);
  a pull by digest of what no tag pull imported is 404 ``MANIFEST_UNKNOWN``.
- **Referrers, as ECR serves them**: a manifest pushed with a ``subject`` is listed by OCI 1.1's referrers API
  (``GET /v2/<name>/referrers/<digest>``), which docker-registry 2.8 lacks (signed releases, :mod:`pipeline.attest`).
- **Release tags never move**: a manifest PUT to an existing tag of a repository the assembly makes immutable, with
  other content, gets 400 ``TAG_INVALID`` -- unless the tag matches one of the repository's exclusion filters
  (``cache-*``). The same content again is accepted.

What passes is forwarded as it came (without the credentials: the store behind the gate trusts the gate alone);
blob reads still answer 307 to the S3 stand-in.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import sys
import threading
from base64 import b64decode
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline.local import pull_through, registry_token, replicas, transfers
from pipeline.local.lifecycle import ADMIN
from pipeline.local.replay import authorize, policy
from pipeline.local.replay.authorize import Policies

ADMIN_USER = f"user/{ADMIN}"  # the stand-in's admin: its identity policy allows everything
REALM = 'Basic realm="slipway ECR stand-in"'
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))  # fmt: skip
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}
_PATH = re.compile(r"^/v2/(?P<name>[a-z0-9._/-]+?)/(?P<kind>manifests|blobs|tags|referrers)/(?P<rest>.*)$")


@dataclass(frozen=True)
class Call:
    """What ECR authorizes for one registry request: ``action`` on ``repository`` (and ``also``, e.g. a blob mount's
    source); ``tag``: the tag a manifest PUT names (empty for a PUT by digest)."""

    action: str
    repository: str
    tag: str = ""
    also: tuple[tuple[str, str], ...] = ()


def call_for(method: str, path: str, query: dict[str, list[str]]) -> Call | None:
    """The ECR action of a registry request; ``None`` for the API root (``/v2/``: credentials only)."""
    found = _PATH.match(path)
    if path.rstrip("/") in ("/v2", ""):
        return None
    if not found:
        return Call("ecr:DescribeRepositories", "")
    name, kind, rest = found["name"], found["kind"], found["rest"]
    if kind == "tags":
        return Call("ecr:ListImages", name)
    if kind == "referrers":
        return Call("ecr:BatchGetImage", name)
    if kind == "manifests":
        action = {"PUT": "ecr:PutImage", "DELETE": "ecr:BatchDeleteImage"}.get(method, "ecr:BatchGetImage")
        return Call(action, name, tag=rest if method == "PUT" and not rest.startswith("sha256:") else "")
    if rest.startswith("uploads"):
        if method == "POST":
            source = query.get("from", [""])[0]
            mounted = (("ecr:GetDownloadUrlForLayer", source),) if source else ()
            return Call("ecr:InitiateLayerUpload", name, also=mounted)
        return Call("ecr:CompleteLayerUpload" if method == "PUT" else "ecr:UploadLayerPart", name)
    if method == "DELETE":
        return Call("ecr:BatchDeleteImage", name)
    return Call("ecr:BatchCheckLayerAvailability" if method == "HEAD" else "ecr:GetDownloadUrlForLayer", name)


def _role(policies: Policies, caller: str) -> str:
    """The role ARN (with its path) behind an assumed-role session ARN; the caller itself otherwise."""
    session = re.fullmatch(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/.*", caller)
    if not session:
        return caller
    for arn in policies.roles:
        if arn.startswith(f"arn:aws:iam::{session[1]}:role/") and arn.rsplit("/", 1)[-1] == session[2]:
            return arn
    return f"arn:aws:iam::{session[1]}:role/{session[2]}"


def refusal(policies: Policies, caller: str, call: Call, replica_region: str = "") -> str:
    """Why ECR would refuse ``caller`` this call (empty: it would not); ``replica_region``: asked of that region's
    registry (its repositories are the replicas, with their own policies)."""
    account = caller.split(":")[4]
    region = replica_region or policies.region or "eu-west-1"
    held_policies = policies.replicas.get(replica_region, {}) if replica_region else policies.repositories
    principal = _role(policies, caller)
    for action, repository in ((call.action, call.repository), *call.also):
        resource = f"arn:aws:ecr:{region}:{account}:repository/{repository}" if repository else "*"
        request = policy.Request(action, resource, principal, {"aws:PrincipalArn": principal})
        identity = (
            policy.ALLOW
            if caller.endswith(f":{ADMIN_USER}")
            else policy.evaluate(policies.roles.get(principal, []), request)
        )
        held = held_policies.get(repository)
        resource_side = policy.evaluate([held], request, resource_policy=True) if held else policy.IMPLICIT_DENY
        if policy.DENY in (identity, resource_side):
            whose = "a resource-based policy" if resource_side == policy.DENY else "an identity-based policy"
            return f"User: {caller} is not authorized to perform: {action} on resource: {resource} with an explicit deny in {whose}"
        if policy.ALLOW not in (identity, resource_side):
            return (f"User: {caller} is not authorized to perform: {action} on resource: {resource} because no "
                    f"identity-based policy allows the {action} action")  # fmt: skip
    return ""


def tag_locked(policies: Policies, repository: str, tag: str) -> bool:
    """The tag may not move: its repository is immutable and no exclusion filter matches it."""
    if repository not in policies.immutable:
        return False
    return not any(policy._like(pattern, tag) for pattern in policies.immutable[repository])


class Gate(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream: str, assembly: Path, key: str, region: str = "") -> None:
        """``region``: this gate serves the registry of that replica region (:mod:`pipeline.local.replicas`)."""
        super().__init__(("127.0.0.1", port), _Handler)
        self.region = region
        host, _, upstream_port = upstream.rpartition(":")
        self.upstream = (host, int(upstream_port))
        self.assembly = assembly
        self.key = key
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.referrers = assembly.parent / "referrers" / f"{region or 'home'}.json"
        """What ECR's referrers API answers: each stored manifest that names a ``subject``, by repository and
        subject digest (kept beside the store, as ECR keeps it beside the images)."""

    def referred(self, repository: str, digest: str) -> list[dict[str, object]]:
        with self._guard:
            known = json.loads(self.referrers.read_text()) if self.referrers.is_file() else {}
        return list(known.get(repository, {}).get(digest, []))

    def refer(self, repository: str, manifest: bytes) -> str:
        """Record a pushed manifest with a ``subject``; returns the subject's digest ("" when it names none)."""
        try:
            document = json.loads(manifest)
            subject = (
                str(document["subject"]["digest"]) if isinstance(document, dict) and document.get("subject") else ""
            )
        except (ValueError, KeyError, TypeError):
            return ""
        if not subject:
            return ""
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        entry = {"mediaType": document.get("mediaType", ""), "digest": digest, "size": len(manifest),
                 "artifactType": document.get("artifactType") or document.get("config", {}).get("mediaType", ""),
                 "annotations": document.get("annotations", {})}  # fmt: skip
        with self._guard:
            known = json.loads(self.referrers.read_text()) if self.referrers.is_file() else {}
            listed = known.setdefault(repository, {}).setdefault(subject, [])
            if all(e["digest"] != digest for e in listed):
                listed.append(entry)
                self.referrers.parent.mkdir(parents=True, exist_ok=True)
                staged = self.referrers.with_suffix(".new")
                staged.write_text(json.dumps(known))
                staged.replace(self.referrers)
        return subject

    def policies(self) -> Policies:
        if not (self.assembly / "manifest.json").is_file():
            return Policies()
        return authorize.current(self.assembly)

    def lock(self, repository: str, tag: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((repository, tag), threading.Lock())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Gate

    def handle(self) -> None:
        """A TLS ClientHello (first byte 0x16) gets a plain ``HTTP/1.0 400``, as Go's servers answer it: a client
        that tries HTTPS first (BuildKit's resolver) falls back to HTTP only on a reply that starts ``HTTP/``."""
        if self.rfile.peek(1)[:1] == b"\x16":  # type: ignore[attr-defined]
            self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTPS request to an HTTP server.\n")
            return
        super().handle()

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _caller(self) -> str | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return registry_token.caller(password, self.server.key) if user == "AWS" else None

    def _error(self, status: int, code: str, message: str, *extra: tuple[str, str]) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self.send_response(status)
        for name, value in (("Content-Type", "application/json"), ("Docker-Distribution-Api-Version", "registry/2.0"),
                            ("Content-Length", str(len(body))), *extra):  # fmt: skip
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        try:
            self._serve()
        except OSError as exc:  # the store is down (or the client went away): say so, as a registry answers an outage
            self._error(503, "UNAVAILABLE", f"the registry's store at {self.server.upstream} did not answer ({exc})")

    def _serve(self) -> None:
        body = self._body()
        caller = self._caller()
        if caller is None:
            return self._error(401, "UNAUTHORIZED", "authentication required", ("WWW-Authenticate", REALM))
        parts = urlsplit(self.path)
        call = call_for(self.command, parts.path, parse_qs(parts.query))
        if call is None:
            return self._forward(body)
        policies = self.server.policies()
        if why := refusal(policies, caller, call, self.server.region):
            return self._error(403, "DENIED", why)
        if call.repository.startswith(pull_through.UPSTREAM + "/") and not caller.endswith(f":{ADMIN_USER}"):
            return self._error(404, "NAME_UNKNOWN", f"repository {call.repository} is not in this registry")
        if "/referrers/" in parts.path:
            return self._referrers(call.repository, parts.path.rsplit("/referrers/", 1)[-1], parse_qs(parts.query))
        if call.action == "ecr:BatchGetImage" and pull_through.cached(policies.pull_through, call.repository):
            reference = parts.path.rsplit("/manifests/", 1)[-1]
            if not reference.startswith("sha256:") and self._refused_import(policies, caller, call, reference):
                return None
        if not (call.tag and tag_locked(policies, call.repository, call.tag)):
            return self._forward(body, call)
        with self.server.lock(call.repository, call.tag):
            current = self._upstream_digest(call)
            if current and current != "sha256:" + hashlib.sha256(body).hexdigest():
                return self._error(400, "TAG_INVALID", f"The image tag '{call.tag}' already exists in the "
                                   f"'{call.repository}' repository and cannot be overwritten because the tag is "
                                   "immutable.")  # fmt: skip
            return self._forward(body, call)

    def _referrers(self, repository: str, digest: str, query: dict[str, list[str]]) -> None:
        """OCI 1.1's ``GET /v2/<name>/referrers/<digest>``: an image index of what names ``digest`` as its subject
        (filtered by ``artifactType`` when asked, as ECR does, saying so in ``OCI-Filters-Applied``)."""
        found = self.server.referred(repository, digest)
        wanted = query.get("artifactType", [""])[0]
        if wanted:
            found = [d for d in found if d.get("artifactType") == wanted]
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": found}).encode()  # fmt: skip
        self.send_response(200)
        headers = [("Content-Type", "application/vnd.oci.image.index.v1+json"), ("Content-Length", str(len(body)))]
        for name, value in headers + ([("OCI-Filters-Applied", "artifactType")] if wanted else []):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refused_import(self, policies: Policies, caller: str, call: Call, tag: str) -> bool:
        """A pull by tag through the cache: the upstream's image under ``tag`` imported first (or refreshed), with
        the permissions ECR asks of the puller. ``True``: refused (and answered)."""
        store = pull_through.Store(*self.server.upstream)
        with self.server.lock(call.repository, tag):
            wanted = ["ecr:BatchImportUpstreamImage"] + (
                [] if store.exists(call.repository) else ["ecr:CreateRepository"]
            )
            for action in wanted:
                if why := refusal(policies, caller, Call(action, call.repository)):
                    self._error(403, "DENIED", why)
                    return True
            pull_through.import_tag(store, call.repository, tag)
        return False

    def _upstream_digest(self, call: Call) -> str:
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            connection.request(
                "HEAD", f"/v2/{call.repository}/manifests/{call.tag}", headers={"Accept": MANIFEST_TYPES}
            )
            response = connection.getresponse()
            response.read()
            return response.getheader("Docker-Content-Digest", "") if response.status == 200 else ""
        finally:
            connection.close()

    def _forward(self, body: bytes, call: Call | None = None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization"}}
        headers.pop("Content-Length", None)
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=600)
        try:
            parts = urlsplit(self.path)
            path = replicas.namespaced(parts.path, self.server.region)
            query = replicas.mounted_from(parts.query, self.server.region)
            connection.request(self.command, path + (f"?{query}" if query else ""), body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if self.command in ("PUT", "PATCH", "POST"):
            transfers.record(transfers.PUSHED, len(body), f"{self.command} {parts.path}")
        elif self.command == "GET":
            transfers.record(transfers.PULLED, len(data), f"GET {parts.path}")
        subject = ""
        if call and call.action == "ecr:PutImage" and response.status == 201:
            subject = self.server.refer(call.repository, body)
        self.send_response_only(response.status, response.reason)
        if subject:  # OCI 1.1: the registry processed the subject (the client needs no fallback tag)
            self.send_header("OCI-Subject", subject)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(
                    name, replicas.outward(value, self.server.region) if name.lower() == "location" else value
                )
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length if length is not None else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if call and call.action == "ecr:PutImage" and response.status == 201 and not self.server.region:
            regions = replicas.matches(self.server.policies().replication, call.repository)
            if regions:  # as ECR does after the push, by itself
                replicas.replicate(
                    self.server.upstream, call.repository, self.path.rsplit("/manifests/", 1)[-1], regions
                )


def main(argv: list[str]) -> None:
    """``PORT UPSTREAM ASSEMBLY [REGION]``; the token key comes from ``SLIPWAY_REGISTRY_TOKEN_KEY``."""
    import os

    port, upstream, assembly, *region = argv
    Gate(int(port), upstream, Path(assembly), os.environ[registry_token.KEY_ENV], *region).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
