"""Helpers for the image tests: crafted layer tars, tiny OCI images, a local registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Entry:
    """One tar member: ``kind`` is file|dir|symlink|hardlink|fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None
    target: str = ""
    mtime: int = 1_600_000_000


def f(name: str, data: bytes | str = b"", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode)


def d(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def sym(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target, mode=0o777)


def hard(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target, mode=0o644)


def make_tar(entries: Iterable[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mtime = e.mtime
            if e.kind == "file":
                ti.type = tarfile.REGTYPE
                ti.size = len(e.data)
                ti.mode = 0o644 if e.mode is None else e.mode
                tf.addfile(ti, io.BytesIO(e.data))
                continue
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755 if e.mode is None else e.mode
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.target
                ti.mode = 0o777
            elif e.kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e.target
                ti.mode = 0o644 if e.mode is None else e.mode
            elif e.kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                ti.mode = 0o644
            tf.addfile(ti)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=1)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """{relpath: (type, mode-bits, content-or-target)} for comparing unpacked trees."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            st = full.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(mode))
            else:
                out[rel] = ("file", oct(mode), full.read_bytes(), st.st_nlink)
    return out


MEDIA = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


@attrs.frozen
class BuiltImage:
    manifest: bytes
    manifest_digest: str
    config: bytes
    config_digest: str
    layers: tuple[bytes, ...]  # compressed blobs
    layer_digests: tuple[str, ...]
    media_type: str = "application/vnd.oci.image.manifest.v1+json"


def build_image(
    layers: list[list[Entry]],
    *,
    compression: str = "gzip",
    arch: str = "amd64",
    variant: str | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    docker_media: bool = False,
) -> BuiltImage:
    tars = [make_tar(entries) for entries in layers]
    blobs = [compress(t, compression) for t in tars]
    config: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Cmd": cmd or ["/bin/sh"],
            "Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"org.example": "yes"},
        },
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
        "history": [{"created_by": "test"} for _ in tars],
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True).encode()
    if docker_media:
        mt = "application/vnd.docker.distribution.manifest.v2+json"
        cmt = "application/vnd.docker.container.image.v1+json"
        lmt = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    else:
        mt = "application/vnd.oci.image.manifest.v1+json"
        cmt = "application/vnd.oci.image.config.v1+json"
        lmt = MEDIA[compression]
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cmt, "digest": sha(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": lmt, "digest": sha(b), "size": len(b)} for b in blobs],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    return BuiltImage(
        manifest=manifest_bytes,
        manifest_digest=sha(manifest_bytes),
        config=config_bytes,
        config_digest=sha(config_bytes),
        layers=tuple(blobs),
        layer_digests=tuple(sha(b) for b in blobs),
        media_type=mt,
    )


def build_index(images: list[tuple[BuiltImage, str, str, str | None]]) -> bytes:
    """An OCI index over (image, os, arch, variant) entries."""
    manifests = []
    for img, os_, arch, variant in images:
        platform = {"os": os_, "architecture": arch}
        if variant:
            platform["variant"] = variant
        manifests.append(
            {
                "mediaType": img.media_type,
                "digest": img.manifest_digest,
                "size": len(img.manifest),
                "platform": platform,
            }
        )
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
    ).encode()


# -- a misbehaving registry proxy ---------------------------------------------------------------
class RegistryProxy:
    """An aiohttp reverse proxy in front of a registry, run in its own thread and loop.

    ``corrupt``: blob digests whose bytes get one byte flipped. ``stall``: digest -> number of
    bytes after which that blob's response hangs until :meth:`release` (``stalled`` is set
    when it happens). ``requests`` records (method, path, range header).
    """

    def __init__(self, upstream: str) -> None:
        import threading

        self.upstream = upstream.rstrip("/")
        self.corrupt: set[str] = set()
        self.stall: dict[str, int] = {}
        self.stalled = threading.Event()
        self._release = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []
        self.auth_seen: list[tuple[str, str | None]] = []  # (path, Authorization)
        self.fail_first: dict[str, int] = {}  # digest -> how many 503s before serving
        self.redirect_blobs_to: str | None = None  # base URL for a 307 on blob GETs
        self.require_basic: str | None = None  # expected "Basic ..." header, else 401
        self.ignore_range = False  # answer 200 with the whole blob even when asked for a range
        self.host = ""
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._runner: Any = None

    def release(self) -> None:
        self.stall.clear()
        self._release.set()

    async def _handle(self, request: Any) -> Any:
        import asyncio

        import aiohttp
        from aiohttp import web

        self.requests.append((request.method, request.path, request.headers.get("Range")))
        self.auth_seen.append((request.path, request.headers.get("Authorization")))
        digest0 = request.path.rsplit("/", 1)[-1]
        if self.require_basic and request.headers.get("Authorization") != self.require_basic:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="t"'})
        if self.fail_first.get(digest0, 0) > 0:
            self.fail_first[digest0] -= 1
            return web.Response(status=503, text="busy")
        if self.redirect_blobs_to and "/blobs/" in request.path:
            return web.Response(status=307, headers={
                "Location": self.redirect_blobs_to + request.path_qs})
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("accept", "authorization")
                   or (k.lower() == "range" and not self.ignore_range)}
        digest = request.path.rsplit("/", 1)[-1] if "/blobs/" in request.path else None
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.request(
            request.method, self.upstream + request.path_qs, headers=headers,
            allow_redirects=True,
        ) as up:
            out_headers = {k: v for k, v in up.headers.items()
                           if k.lower() in ("content-type", "docker-content-digest",
                                            "content-range", "www-authenticate",
                                            "content-length", "accept-ranges")}
            resp = web.StreamResponse(status=up.status, headers=out_headers)
            await resp.prepare(request)
            sent = 0
            flipped = False
            async for chunk in up.content.iter_chunked(64 * 1024):
                if digest in self.corrupt and not flipped and chunk:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    flipped = True
                limit = self.stall.get(digest or "")
                if limit is not None and sent + len(chunk) >= limit:
                    await resp.write(chunk[: max(0, limit - sent)])
                    self.stalled.set()
                    while not self._release.is_set():
                        await asyncio.sleep(0.05)
                    return resp  # connection dropped after the stall
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
            return resp

    def start(self) -> RegistryProxy:
        import asyncio
        import threading

        from aiohttp import web

        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, handle_signals=False)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.host = f"127.0.0.1:{port}"
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self._release.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
