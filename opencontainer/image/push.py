"""Pushing: the stored blobs and manifest of a local image to a registry (Distribution API v2).

For every blob (layers, then the config): ``HEAD`` skips what the repository already has; a
blob the store knows to be in another repository of the same registry (its ``RepoDigests``) is
mounted (``POST /blobs/uploads/?mount=D&from=R``: 201, nothing sent); anything else is uploaded,
monolithically (``POST`` then ``PUT ?digest=`` with the whole blob) or, with a chunk size, in
``PATCH`` chunks (``Content-Range``) closed by an empty ``PUT``. Then the manifest is ``PUT``
under the tag: the exact bytes the store has, so the digest is the pulled one.

Auth is :mod:`.auth`'s (Bearer tokens for ``repository:R:pull,push`` and, for a mount,
``repository:FROM:pull`` too; basic auth; ``~/.docker/config.json``).
``OPENCONTAINER_PUSH_CHUNK_SIZE`` (bytes) makes every upload chunked.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
import attrs
import structlog

from ..errors import AuthError, ImageNotFound, OpenContainerError, RegistryError
from .auth import Authenticator, Credentials, DockerConfig
from .reference import Reference, parse_reference
from .registries_conf import Endpoint, RegistriesConf
from .registries_conf import load as load_registries_conf
from .registry import OCI_MANIFEST, RegistryClient, RetryPolicy, _registry_error
from .store import ImageRecord, ImageStore

log = structlog.get_logger(__name__)

CHUNK_ENV = "OPENCONTAINER_PUSH_CHUNK_SIZE"
READ = 1 << 20

# (short id, status) -> the CLI's progress line, e.g. ("5f70bf18a086", "Pushed")
PushProgress = Callable[[str, str], None]


@attrs.frozen
class PushResult:
    reference: str  # the normalised reference pushed
    tag: str
    digest: str  # the manifest digest the registry answered
    size: int  # manifest size


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _endpoint(conf: RegistriesConf, ref: Reference) -> Endpoint:
    """Where a push goes: the registry itself, never a mirror."""
    return [ep for ep in conf.endpoints(ref) if not ep.mirror][-1]


def _chunk_size(env: Mapping[str, str], chunk_size: int | None) -> int:
    if chunk_size is not None:
        return chunk_size
    raw = env.get(CHUNK_ENV, "").strip()
    if not raw:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise RegistryError(f"{CHUNK_ENV}={raw!r} is not a number of bytes.") from None


def _mount_sources(rec: ImageRecord, host: str, repository: str) -> list[str]:
    """Other repositories of ``host`` that hold this image's blobs (from its RepoDigests)."""
    out: list[str] = []
    for rd in rec.repo_digests:
        try:
            ref = parse_reference(rd)
        except OpenContainerError:
            continue
        if ref.domain == host and ref.path != repository and ref.path not in out:
            out.append(ref.path)
    return out


class _Pusher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint,
        auth: Authenticator,
        retry: RetryPolicy,
        display: str,
        progress: PushProgress,
        chunk: int,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.auth = auth
        self.retry = retry
        self.display = display
        self.progress = progress
        self.chunk = chunk
        repo = endpoint.repository
        self.client = RegistryClient(
            session, endpoint, auth, retry=retry, display=display,
            scope=f"repository:{repo}:pull,push", action="push",
        )

    @property
    def base(self) -> str:
        return f"{self.endpoint.base_url}/v2/{self.endpoint.repository}"

    async def exists(self, digest: str) -> bool:
        resp = await self.client.request("HEAD", f"{self.base}/blobs/{digest}")
        status = resp.status
        resp.release()
        if status in (401, 403):
            raise AuthError(f"push access denied for {self.display}.")
        return status == 200

    async def _start(self, client: RegistryClient, query: Mapping[str, str]) -> tuple[int, str]:
        url = f"{self.base}/blobs/uploads/" + (f"?{urlencode(query)}" if query else "")
        resp = await client.request("POST", url, {"Content-Length": "0"}, b"")
        try:
            body = await resp.read()
            status = resp.status
            location = resp.headers.get("Location", "")
        finally:
            resp.release()
        if status in (401, 403):
            raise AuthError(
                f"push access denied for {self.display}"
                + (f": {_registry_error(body)}." if _registry_error(body) else ".")
            )
        if status not in (201, 202):
            raise RegistryError(
                f"registry {self.endpoint.host} answered HTTP {status} to a blob upload"
                + (f": {_registry_error(body)}." if _registry_error(body) else ".")
            )
        return status, urljoin(url, location) if location else ""

    async def mount(self, digest: str, source: str) -> str | None:
        """Mount ``digest`` from repository ``source``: None when mounted, else the upload URL
        the registry opened instead."""
        repo = self.endpoint.repository
        client = RegistryClient(
            self.session, self.endpoint, self.auth, retry=self.retry, display=self.display,
            scope=f"repository:{repo}:pull,push repository:{source}:pull", action="push",
        )
        status, location = await self._start(client, {"mount": digest, "from": source})
        return None if status == 201 else location

    async def upload(
        self, digest: str, path: Path, size: int, location: str | None, sid: str
    ) -> None:
        if location is None:
            _, location = await self._start(self.client, {})
        if not location:
            raise RegistryError(f"registry {self.endpoint.host} gave no upload location.")
        if self.chunk and size > 0:
            offset = 0
            while offset < size:
                n = min(self.chunk, size - offset)
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(n)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + n - 1}",
                    "Content-Length": str(n),
                }
                resp = await self.client.request("PATCH", location, headers, data)
                try:
                    reply = await resp.read()
                    status = resp.status
                    nxt = resp.headers.get("Location", "")
                finally:
                    resp.release()
                if status != 202:
                    raise RegistryError(
                        f"registry {self.endpoint.host} answered HTTP {status} to an upload "
                        f"chunk of {digest}"
                        + (f": {_registry_error(reply)}." if _registry_error(reply) else ".")
                    )
                location = urljoin(location, nxt) if nxt else location
                offset += n
                if sid:
                    self.progress(sid, f"Pushing  {offset}/{size}")
            body: Any = b""
            length = 0
        else:
            def stream() -> AsyncIterator[bytes]:
                return _file_chunks(path)

            body, length = stream, size
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}{urlencode({'digest': digest})}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        resp = await self.client.request("PUT", url, headers, body)
        try:
            answer = await resp.read()
            status = resp.status
        finally:
            resp.release()
        if status != 201:
            why = _registry_error(answer)
            raise RegistryError(
                f"registry {self.endpoint.host} answered HTTP {status} when {digest} was "
                "uploaded" + (f": {why}." if why else ".")
            )

    async def blob(self, store: ImageStore, digest: str, sources: list[str],
                   label: str | None) -> None:
        """Make the repository have blob ``digest``; ``label`` (a layer's diff_id) is shown
        in the progress lines (None: nothing shown, for the config)."""
        sid = short(label) if label else ""
        say = self.progress if label else (lambda _id, _status: None)
        if await self.exists(digest):
            say(sid, "Layer already exists")
            return
        path = store.blob_path(digest)
        if not path.is_file():
            raise ImageNotFound(
                f"blob {digest} is not in the local store, so it cannot be pushed; pull the "
                "image again."
            )
        size = path.stat().st_size
        location: str | None = None
        for source in sources:
            location = await self.mount(digest, source)
            if location is None:
                say(sid, f"Mounted from {source}")
                return
            break  # the registry opened a normal upload instead
        say(sid, "Pushing")
        await self.upload(digest, path, size, location, sid if label else "")
        say(sid, "Pushed")

    async def manifest(self, tag: str, data: bytes, media_type: str) -> str:
        url = f"{self.base}/manifests/{tag}"
        resp = await self.client.request(
            "PUT", url, {"Content-Type": media_type, "Content-Length": str(len(data))}, data
        )
        try:
            body = await resp.read()
            status = resp.status
            digest = resp.headers.get("Docker-Content-Digest", "")
        finally:
            resp.release()
        if status in (401, 403):
            raise AuthError(f"push access denied for {self.display}.")
        if status != 201:
            raise RegistryError(
                f"registry {self.endpoint.host} refused the manifest of {self.display}:{tag} "
                f"(HTTP {status})"
                + (f": {_registry_error(body)}." if _registry_error(body) else ".")
            )
        return digest


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(READ):
            yield chunk


async def push(
    ref: str,
    *,
    paths: Any,
    env: Mapping[str, str] | None = None,
    registries_conf: RegistriesConf | Path | None = None,
    docker_config: DockerConfig | Path | None = None,
    credentials: Mapping[str, Credentials] | None = None,
    progress: PushProgress | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int | None = None,
) -> PushResult:
    """Push the local image tagged ``ref`` to its registry."""
    env = os.environ if env is None else env
    parsed = parse_reference(ref)
    if parsed.digest is not None:
        raise RegistryError(f"cannot push {ref}: push a tag, not a digest.")
    store = ImageStore(paths.store)
    key = str(parsed)
    try:
        rec = store.resolve(key)
    except ImageNotFound:
        raise ImageNotFound(
            f"an image does not exist locally with the tag: {parsed.familiar_name()}"
        ) from None
    if key not in rec.repo_tags:
        raise ImageNotFound(
            f"an image does not exist locally with the tag: {parsed.familiar_name()}"
        )
    conf = (
        registries_conf
        if isinstance(registries_conf, RegistriesConf)
        else load_registries_conf(env, path=registries_conf)
    )
    dconf = (
        docker_config
        if isinstance(docker_config, DockerConfig)
        else DockerConfig.from_env(env, docker_config)
    )
    auth = Authenticator(dconf, credentials)
    endpoint = _endpoint(conf, parsed)
    report = progress or (lambda _id, _status: None)
    manifest = store.read_blob(rec.digest)
    doc = json.loads(manifest)
    media_type = str(doc.get("mediaType") or rec.media_type or OCI_MANIFEST)
    config = doc["config"]
    layers = doc.get("layers") or []
    diff_ids = list(rec.config.diff_ids)
    sources = _mount_sources(rec, parsed.domain, endpoint.repository)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    from .pull import SESSION_HEADERS

    async with aiohttp.ClientSession(
        timeout=timeout, auto_decompress=False, headers=SESSION_HEADERS
    ) as session:
        pusher = _Pusher(session, endpoint, auth, retry or RetryPolicy(),
                         parsed.familiar_name(), report, _chunk_size(env, chunk_size))
        labels = [
            str(diff_ids[i]) if i < len(diff_ids) else str(layer["digest"])
            for i, layer in enumerate(layers)
        ]
        for label in labels:
            report(short(label), "Preparing")
        for layer, label in zip(layers, labels, strict=True):
            await pusher.blob(store, str(layer["digest"]), sources, label)
        await pusher.blob(store, str(config["digest"]), [], None)
        tag = parsed.tag or "latest"
        digest = await pusher.manifest(tag, manifest, media_type) or rec.digest
    store.add_repo_digest(rec.digest, f"{parsed.repository}@{digest}")
    return PushResult(reference=key, tag=tag, digest=digest, size=len(manifest))


__all__ = ["CHUNK_ENV", "PushResult", "push"]
