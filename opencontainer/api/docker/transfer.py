"""Images in and out: ``push`` (progress as JSON lines, credentials from ``X-Registry-Auth``),
``history``, ``get`` (``docker save``: a docker-archive tar) and ``load``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from .common import bad_request, flag, json_response, not_found, state_of
from .images import _created, _resolve, _store


def registry_auth(header: str | None) -> dict[str, str]:
    """``X-Registry-Auth``: base64url JSON ``{"username", "password", "serveraddress"}``
    (``{}`` or nothing: anonymous)."""
    if not header:
        return {}
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(raw or b"{}")
    except (ValueError, TypeError):
        raise bad_request("the X-Registry-Auth header is not base64url JSON.") from None
    return {str(k).lower(): str(v) for k, v in (data or {}).items() if v}


async def push(request: web.Request) -> web.StreamResponse:
    from ...errors import OpenContainerError
    from ...image.auth import Credentials
    from ...image.push import push as do_push
    from ...image.reference import parse_reference

    host = state_of(request).host
    name = request.match_info["name"]
    tag = request.query.get("tag")
    try:
        ref = parse_reference(f"{name}:{tag}" if tag else name)
    except OpenContainerError as exc:
        raise bad_request(str(exc)) from None
    auth = registry_auth(request.headers.get("X-Registry-Auth"))
    creds = None
    if auth.get("username"):
        creds = {ref.domain: Credentials(auth["username"], auth.get("password", ""))}
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    last: dict[str, str] = {}

    def progress(short: str, status: str) -> None:
        if status.startswith("Pushing "):
            done, _, total = status.split()[-1].partition("/")
            with contextlib.suppress(ValueError):
                queue.put_nowait({"status": "Pushing", "id": short, "progressDetail": {
                    "current": int(done), "total": int(total)}})
            return
        if last.get(short) != status:
            last[short] = status
            queue.put_nowait({"status": status, "progressDetail": {}, "id": short})

    async def run() -> Any:
        try:
            return await do_push(str(ref), paths=host.paths, env=host.env,
                                 credentials=creds, progress=progress)
        finally:
            queue.put_nowait(None)

    async def send(msg: dict[str, Any]) -> None:
        await resp.write(json.dumps(msg).encode() + b"\r\n")

    await send({"status": f"The push refers to repository [{ref.familiar_name()}]"})
    task = asyncio.ensure_future(run())
    while (msg := await queue.get()) is not None:
        await send(msg)
    try:
        result = await task
    except OpenContainerError as exc:
        await send({"errorDetail": {"message": str(exc)}, "error": str(exc)})
    else:
        await send({"status": f"{result.tag}: digest: {result.digest} size: {result.size}"})
        await send({"progressDetail": {}, "aux": {"Tag": result.tag, "Digest": result.digest,
                                                  "Size": result.size}})
    await resp.write_eof()
    return resp


async def history(request: web.Request) -> web.Response:
    from ...cli.image_ops import history_rows
    from ...image.reference import parse_reference

    rec = await _resolve(request)
    rows = await asyncio.to_thread(history_rows, rec, _store(request))
    tags = [parse_reference(t).familiar() for t in rec.repo_tags] or None
    out = []
    for i, row in enumerate(rows):
        out.append({"Id": row["ID"], "Created": _created(row["CreatedAt"]),
                    "CreatedBy": row["CreatedBy"], "Tags": tags if i == 0 else None,
                    "Size": int(row["Size"]), "Comment": row["Comment"]})
    return json_response(out)


async def _send_archive(request: web.Request, names: list[str]) -> web.StreamResponse:
    from ...errors import ImageNotFound
    from ...image.archive import save

    host = state_of(request).host
    if not names:
        raise bad_request("no image named (?names=).")
    store = _store(request)
    for n in names:
        try:
            await asyncio.to_thread(store.resolve, n)
        except ImageNotFound:
            raise not_found(f"No such image: {n}") from None
    fd, tmp = tempfile.mkstemp(prefix=".save-", suffix=".tar", dir=host.paths.store)
    os.close(fd)
    try:
        await asyncio.to_thread(save, names, Path(tmp), paths=host.paths)
        resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        resp.content_length = os.path.getsize(tmp)
        await resp.prepare(request)
        with open(tmp, "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


async def get_one(request: web.Request) -> web.StreamResponse:
    return await _send_archive(request, [request.match_info["name"]])


async def get_many(request: web.Request) -> web.StreamResponse:
    return await _send_archive(request, request.query.getall("names", []))


async def load(request: web.Request) -> web.Response:
    from ...errors import OpenContainerError
    from ...image.archive import load as do_load

    host = state_of(request).host
    host.paths.store.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".load-", suffix=".tar", dir=host.paths.store)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await request.content.read(1 << 20):
                await asyncio.to_thread(out.write, chunk)
        try:
            loaded = await do_load(Path(tmp), paths=host.paths)
        except OpenContainerError as exc:
            raise bad_request(str(exc)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    lines = []
    for rec, tag in loaded:
        text = f"Loaded image: {tag}" if tag else f"Loaded image ID: {rec.config_digest}"
        lines.append(json.dumps({"stream": text + "\n"}))
    body = "\r\n".join(lines) + "\r\n" if not flag(request, "quiet") or lines else ""
    return web.Response(body=body.encode(), content_type="application/json")


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/images/load", load),
        ("GET", "/images/get", get_many),
        ("GET", "/images/{name:.+}/history", history),
        ("GET", "/images/{name:.+}/get", get_one),
        ("POST", "/images/{name:.+}/push", push),
    ]
