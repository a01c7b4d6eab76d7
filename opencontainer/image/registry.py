"""A Distribution API v2 client on aiohttp: manifests, blobs, auth, redirects, retries.

One :class:`RegistryClient` talks to one :class:`~.registries_conf.Endpoint` (host, repository,
scheme). It adds credentials (see :mod:`.auth`), follows redirects itself (so that the
``Authorization`` header is dropped when a redirect leaves the registry's host, e.g. to blob
storage), retries transient failures (connection errors, 5xx, 429) with exponential backoff,
and resumes an interrupted blob download with ``Range``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio
import attrs
import structlog

from ..errors import AuthError, DigestMismatch, ImageNotFound, RegistryError
from .auth import Authenticator
from .registries_conf import Endpoint

log = structlog.get_logger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
# a request body: bytes, or a function returning a fresh body (bytes or an async iterator)
Body = bytes | Callable[[], Any] | None


@attrs.frozen
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 4.0
    connect_attempts: int = 3  # a registry that refuses connections is most likely down

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**attempt)))


@attrs.frozen
class Manifest:
    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        value = json.loads(self.data)
        if not isinstance(value, dict):
            raise RegistryError("the registry sent a manifest that is not a JSON object.")
        return value


def _registry_error(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(
            f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}".strip(": ")
            for e in errors
        )
    except (ValueError, AttributeError):
        return ""


class RegistryClient:
    """Talks to ``endpoint`` for one repository, sharing ``auth`` state with other clients."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint,
        auth: Authenticator,
        *,
        retry: RetryPolicy | None = None,
        display: str | None = None,
        scope: str | None = None,
        action: str = "pull",
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.display = display or f"{endpoint.host}/{endpoint.repository}"
        self.scope = f"repository:{endpoint.repository}:pull" if scope is None else scope
        self.action = action  # what error messages say was denied ("pull", "push")

    @property
    def host(self) -> str:
        return self.endpoint.host

    def url(self, kind: str, ref: str) -> str:
        return f"{self.endpoint.base_url}/v2/{self.endpoint.repository}/{kind}/{ref}"

    # -- the request core ------------------------------------------------------------------------
    async def _follow(
        self, method: str, url: str, headers: dict[str, str], data: Body = None
    ) -> aiohttp.ClientResponse:
        origin = urlsplit(url).netloc
        for _ in range(10):
            body = data() if callable(data) else data
            resp = await self.session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            )
            if resp.status not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            location = urljoin(url, resp.headers["Location"])
            resp.release()
            if urlsplit(location).netloc != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = location
            if resp.status == 303:
                method = "GET"
        raise RegistryError(f"registry {self.host} redirected too many times.")

    async def _authorized(
        self, method: str, url: str, headers: Mapping[str, str], data: Body = None
    ) -> aiohttp.ClientResponse:
        h = dict(headers)
        auth = self.auth.header_for(self.host, self.scope)
        if auth:
            h["Authorization"] = auth
        resp = await self._follow(method, url, h, data)
        if resp.status != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        body = await resp.read()
        resp.release()
        if not challenge:
            raise AuthError(f"registry {self.host} refused the request: {_registry_error(body)}.")
        self.auth.forget(self.host, self.scope)
        h["Authorization"] = await self.auth.answer(self.session, self.host, challenge, self.scope)
        resp = await self._follow(method, url, h, data)
        if resp.status == 401:
            body = await resp.read()
            resp.release()
            creds = self.auth.credentials(self.host)
            if creds is None:
                raise AuthError(
                    f"{self.action} access denied for {self.display}: the repository does not "
                    f"exist or needs 'opencontainer login {self.host}'."
                )
            if "insufficient" in _registry_error(body).lower() or "bearer" in challenge.lower():
                raise AuthError(
                    f"{self.action} access denied for {self.display} to user "
                    f"{creds.username!r}."
                )
            raise AuthError(
                f"login to {self.host} failed: wrong username or password for {creds.username!r}."
            )
        return resp

    async def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, data: Body = None
    ) -> aiohttp.ClientResponse:
        """Send with auth, redirects and retries; the caller releases the response. ``data``:
        the body, or a function making it afresh for each attempt (a stream can be sent once).
        """
        headers = dict(headers or {})
        last: str = ""
        connect_failures = 0
        for attempt in range(self.retry.attempts):
            try:
                resp = await self._authorized(method, url, headers, data)
            except aiohttp.ClientConnectorError as exc:
                connect_failures += 1
                last = str(exc.os_error.strerror if exc.os_error else exc) or type(exc).__name__
                if connect_failures >= self.retry.connect_attempts:
                    break
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = str(exc) or type(exc).__name__
            else:
                if resp.status not in TRANSIENT:
                    return resp
                last = f"HTTP {resp.status}"
                retry_after = resp.headers.get("Retry-After", "")
                resp.release()
                if retry_after.isdigit() and attempt + 1 < self.retry.attempts:
                    await anyio.sleep(min(float(retry_after), self.retry.max_delay))
                    continue
            if attempt + 1 < self.retry.attempts:
                log.debug("retrying", url=url, reason=last, attempt=attempt + 1)
                await anyio.sleep(self.retry.delay(attempt))
        raise RegistryError(f"cannot reach registry {self.host}: {last}.")

    # -- manifests ------------------------------------------------------------------------------
    async def get_manifest(self, reference: str, *, shown: str | None = None) -> Manifest:
        resp = await self.request("GET", self.url("manifests", reference), {"Accept": ACCEPT})
        try:
            body = await resp.read()
            status = resp.status
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        finally:
            resp.release()
        what = shown or f"{self.display}:{reference}"
        if status == 404:
            detail = _registry_error(body) or "manifest unknown"
            raise ImageNotFound(f"manifest for {what} not found: {detail}.")
        if status == 403:
            raise AuthError(f"pull access denied for {self.display}: {_registry_error(body)}.")
        if status != 200:
            raise RegistryError(
                f"registry {self.host} answered HTTP {status} for {what}"
                + (f": {_registry_error(body)}." if _registry_error(body) else ".")
            )
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch(
                f"the manifest for {what} hashes to {digest}, not {reference}; nothing was stored."
            )
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise RegistryError(f"registry {self.host} sent a manifest that is not JSON.") from exc
        media_type = parsed.get("mediaType") or media_type
        if not media_type:
            media_type = OCI_INDEX if "manifests" in parsed else OCI_MANIFEST
        if media_type == DOCKER_V1_SIGNED or parsed.get("schemaVersion") == 1:
            raise RegistryError(
                f"{what} uses the old Docker schema 1 manifest, which is not supported."
            )
        return Manifest(data=body, media_type=media_type, digest=digest)

    async def get_blob_bytes(self, digest: str, limit: int = 16 << 20) -> bytes:
        """A small blob (config), verified."""
        resp = await self.request("GET", self.url("blobs", digest))
        try:
            if resp.status == 404:
                raise ImageNotFound(f"blob {digest} of {self.display} not found in the registry.")
            if resp.status != 200:
                raise RegistryError(
                    f"registry {self.host} answered HTTP {resp.status} for {digest}."
                )
            body = await resp.content.read(limit + 1)
        finally:
            resp.release()
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise DigestMismatch(
                f"blob {digest} of {self.display} hashes to {actual}; nothing was stored."
            )
        return body

    # -- big blobs --------------------------------------------------------------------------------
    async def download_blob(
        self,
        digest: str,
        partial: Path,
        *,
        size: int | None = None,
        on_started: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Append the blob to ``partial`` (resuming what is there) and verify it.

        On success ``partial`` holds exactly the blob; on a digest mismatch it is deleted and
        :class:`DigestMismatch` raised. The caller renames it.
        """
        hasher = hashlib.sha256()
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have > size:
            partial.unlink()
            have = 0
        if have:
            await anyio.to_thread.run_sync(_hash_file, partial, hasher)
            log.debug("resuming blob", digest=digest, have=have)
        if on_started:
            on_started(have)
        url = self.url("blobs", digest)
        failures = 0
        with open(partial, "ab", buffering=0) as out:
            while size is None or have < size:
                headers = {"Range": f"bytes={have}-"} if have else {}
                resp = await self.request("GET", url, headers)
                try:
                    if resp.status == 416 and have and size is None:
                        break
                    if resp.status == 404:
                        raise ImageNotFound(f"blob {digest} of {self.display} not found.")
                    if resp.status not in (200, 206):
                        raise RegistryError(
                            f"registry {self.host} answered HTTP {resp.status} for blob {digest}."
                        )
                    skip = have
                    if resp.status == 206:
                        start = _range_start(resp.headers.get("Content-Range", ""))
                        skip = have - start if start is not None and start <= have else have
                    try:
                        async for chunk in resp.content.iter_chunked(CHUNK):
                            if skip:
                                if len(chunk) <= skip:
                                    skip -= len(chunk)
                                    continue
                                chunk = chunk[skip:]
                                skip = 0
                            out.write(chunk)
                            hasher.update(chunk)
                            have += len(chunk)
                            if on_progress:
                                on_progress(have)
                    except (
                        TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError
                    ) as exc:
                        failures += 1
                        if failures >= self.retry.attempts:
                            raise RegistryError(
                                f"download of {digest} from {self.host} kept failing ({exc})."
                            ) from exc
                        await anyio.sleep(self.retry.delay(failures - 1))
                        continue
                finally:
                    resp.release()
                if size is None:
                    break
                if have < size:  # the connection ended early without an error
                    failures += 1
                    if failures >= self.retry.attempts:
                        raise RegistryError(f"download of {digest} from {self.host} is incomplete.")
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest or (size is not None and have != size):
            partial.unlink(missing_ok=True)
            raise DigestMismatch(
                f"blob {digest} from {self.host} hashes to {actual} "
                f"({have} bytes); nothing was stored."
            )


async def check_login(endpoint: Endpoint, auth: Authenticator) -> None:
    """``GET /v2/`` with the credentials of ``auth``; raises :class:`AuthError` if refused."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = RegistryClient(
            session, endpoint, auth, scope="", retry=RetryPolicy(attempts=2, connect_attempts=1)
        )
        resp = await client.request("GET", f"{endpoint.base_url}/v2/")
        status = resp.status
        resp.release()
        if status in (401, 403):
            raise AuthError(f"login to {endpoint.host} failed: wrong username or password.")
        if status >= 400:
            raise RegistryError(f"registry {endpoint.host} answered HTTP {status} to a login.")


def _range_start(content_range: str) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _hash_file(path: Path, hasher: Any) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)


__all__ = [
    "ACCEPT",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Manifest",
    "RegistryClient",
    "RetryPolicy",
    "check_login",
]
