"""OCI distribution API client (``/v2/<name>/manifests/<reference>``), stdlib only.

Registries on loopback are spoken to over plain HTTP, as Docker does for 127.0.0.0/8; everything else over HTTPS.
The client never trusts ``Docker-Content-Digest``: callers hash the bytes (see :func:`pipeline.oci.check_bytes`).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from pipeline.oci import Manifest
from pipeline.registry.base import ManifestNotFoundError, RegistryError, RepositoryRef, endpoint

TIMEOUT_SECONDS = 30


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry ``Authorization`` to another host: ECR redirects a blob GET to a presigned
    S3 URL, and S3 refuses a request with two auth mechanisms (urllib would re-send the header)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            redirected is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            for stored in (redirected.headers, redirected.unredirected_hdrs):
                for name in [n for n in stored if n.lower() == "authorization"]:
                    del stored[name]
        return redirected


_OPENER = urllib.request.build_opener(_CredentialsStayHome)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost, with or without a port: registries Docker speaks plain HTTP to."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class DistributionClient:
    """Talks to one or more registries; ``authorization`` is an ``Authorization`` header value (ECR: Basic)."""

    def __init__(self, *, authorization: str | Callable[[], str] = "", timeout: float = TIMEOUT_SECONDS) -> None:
        """``authorization`` may be a function: it is called once, on the first request (an ECR token is fetched
        only when the registry is really spoken to)."""
        self._authorization = authorization
        self._timeout = timeout
        self.round_trips = 0
        """Requests made, for benchmarks: stitch must move no layer bytes, only manifests and configs."""
        self.bytes_moved = 0

    def _auth_header(self) -> str:
        if callable(self._authorization):
            self._authorization = self._authorization()
        return self._authorization

    def _url(self, repo: RepositoryRef, kind: str, reference: str) -> str:
        host = endpoint(repo.host)
        scheme = "http" if is_loopback(host) else "https"
        return f"{scheme}://{host}/v2/{repo.name}/{kind}/{reference}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str],
        body: bytes | IO[bytes] | None = None,
        body_size: int = 0,
    ) -> tuple[bytes, dict[str, str]]:
        if authorization := self._auth_header():
            headers = {**headers, "Authorization": authorization}
        if body is not None and not isinstance(body, bytes):
            headers = {**headers, "Content-Length": str(body_size)}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        self.round_trips += 1
        try:
            with _OPENER.open(request, timeout=self._timeout) as response:
                data = response.read()
                self.bytes_moved += len(data) + (len(body) if isinstance(body, bytes) else body_size)
                return data, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace").strip()
            if exc.code == 404 and method in ("GET", "HEAD"):
                raise ManifestNotFoundError(f"{what}: not found (HTTP 404)") from exc
            raise RegistryError(f"{what}: registry answered HTTP {exc.code} {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"{what}: registry unreachable at {url.split('/v2/')[0]} ({reason})") from exc
        except (http.client.InvalidURL, ValueError) as exc:  # a reference that makes no URL
            raise RegistryError(f"{what}: not a valid registry URL {url[:200]!r} ({exc})") from exc
        except http.client.HTTPException as exc:  # a reply that is not HTTP, or a body cut short
            raise RegistryError(
                f"{what}: {url} did not answer as an OCI registry ({type(exc).__name__}: {str(exc)[:120]})"
            ) from exc

    def get_manifest(self, repo: RepositoryRef, reference: str, accept: Sequence[str]) -> Manifest:
        what = f"image {repo}{_sep(reference)}{reference}"
        data, headers = self._request(
            "GET", self._url(repo, "manifests", reference), what=what, headers={"Accept": ", ".join(accept)}
        )
        media_type = headers.get("content-type", "").split(";")[0].strip()
        return Manifest(data, media_type)

    def put_manifest(self, repo: RepositoryRef, reference: str, manifest: Manifest) -> str:
        what = f"push of image {repo}{_sep(reference)}{reference}"
        _, headers = self._request(
            "PUT",
            self._url(repo, "manifests", reference),
            what=what,
            headers={"Content-Type": manifest.media_type},
            body=manifest.data,
        )
        return headers.get("docker-content-digest", manifest.digest)

    def list_tags(self, repo: RepositoryRef) -> list[str]:
        """``GET /v2/<name>/tags/list``, following the ``Link`` header's pages (ECR returns up to 1000 per page)."""
        host = endpoint(repo.host)
        scheme = "http" if is_loopback(host) else "https"
        url, tags = f"{scheme}://{host}/v2/{repo.name}/tags/list?n=1000", list[str]()
        while url:
            try:
                data, headers = self._request("GET", url, what=f"tags of {repo}", headers={})
            except ManifestNotFoundError:
                return []
            tags += [str(t) for t in json.loads(data).get("tags") or []]
            link = re.match(r"<([^>]+)>", headers.get("link", ""))
            url = urllib.parse.urljoin(url, link.group(1)) if link else ""
        return tags

    def get_blob(self, repo: RepositoryRef, digest: str) -> bytes:
        data, _ = self._request("GET", self._url(repo, "blobs", digest), what=f"blob {repo}@{digest}", headers={})
        return data

    def has_blob(self, repo: RepositoryRef, digest: str) -> bool:
        try:
            self._request("HEAD", self._url(repo, "blobs", digest), what=f"blob {repo}@{digest}", headers={})
        except ManifestNotFoundError:
            return False
        return True

    def referrers(self, repo: RepositoryRef, digest: str) -> list[dict[str, Any]] | None:
        """``GET /v2/<name>/referrers/<digest>``: an image index of the referrers (404: no such API here)."""
        try:
            data, _ = self._request("GET", self._url(repo, "referrers", digest), what=f"referrers of {repo}@{digest}",
                                    headers={"Accept": "application/vnd.oci.image.index.v1+json"})  # fmt: skip
        except ManifestNotFoundError:
            return None
        try:
            return list(json.loads(data).get("manifests") or [])
        except (ValueError, AttributeError) as exc:
            raise RegistryError(f"referrers of {repo}@{digest}: not an image index ({exc})") from exc

    def put_blob(self, repo: RepositoryRef, digest: str, path: Path) -> None:
        """One upload session: POST, one PATCH with the whole blob, PUT with the digest (what every registry,
        ECR included, accepts; ECR refuses only non-final chunks under 5 MB)."""
        what = f"upload of blob {repo}@{digest}"
        start = self._url(repo, "blobs", "uploads/")
        _, headers = self._request("POST", start, what=what, headers={})
        location = urllib.parse.urljoin(start, headers.get("location", ""))
        size = path.stat().st_size
        with path.open("rb") as handle:
            _, headers = self._request(
                "PATCH", location, what=what, headers={"Content-Type": "application/octet-stream"},
                body=handle, body_size=size,
            )  # fmt: skip
        location = urllib.parse.urljoin(location, headers.get("location", location))
        separator = "&" if urllib.parse.urlsplit(location).query else "?"
        self._request(
            "PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", what=what, headers={}, body=b""
        )


def _sep(reference: str) -> str:
    return "@" if reference.startswith("sha256:") else ":"
