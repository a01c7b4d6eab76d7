"""The image endpoints: create (pull, progress as JSON lines), list, inspect, remove, tag."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from ...engine.filters import labels_match
from .common import (
    bad_request,
    conflict,
    flag,
    json_response,
    not_found,
    parse_filters,
    state_of,
)


def _store(request: web.Request) -> Any:
    from ...image.store import ImageStore

    return ImageStore(state_of(request).host.paths.store)


def _created(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def summary_dict(rec: Any) -> dict[str, Any]:
    from ...image.reference import parse_reference

    return {
        "Id": rec.config_digest,
        "ParentId": "",
        "RepoTags": [parse_reference(t).familiar() for t in rec.repo_tags] or None,
        "RepoDigests": [parse_reference(d).familiar() for d in rec.repo_digests],
        "Created": _created(rec.created),
        "Size": rec.size,
        "VirtualSize": rec.size,
        "SharedSize": -1,
        "Labels": dict(rec.config.labels) or None,
        "Containers": -1,
    }


IMAGE_FILTERS = ("reference", "label", "dangling", "before", "since")


async def list_(request: web.Request) -> web.Response:
    """``GET /images/json``: docker's filters ``reference``, ``label`` (``k``, ``k=v``: every
    one must match), ``dangling``, ``before``, ``since``; another is a 400, never ignored (a
    client such as Ryuk removes whatever the list returns)."""
    from ...image.reference import parse_reference

    filters = parse_filters(request.query.get("filters"))
    for key in filters:
        if key not in IMAGE_FILTERS:
            raise bad_request(f"invalid filter '{key}'")
    store = _store(request)
    records = await asyncio.to_thread(store.list_images)
    every = request.query.get("all", "").lower() in ("1", "true")
    records = [r for r in records if every or not r.intermediate]
    if filters.get("label"):
        records = [r for r in records
                   if labels_match(dict(r.config.labels or {}), filters["label"])]
    dangling = filters.get("dangling")
    if dangling:
        want = dangling[-1].lower() in ("1", "true")
        records = [r for r in records if (not r.repo_tags) == want]
    for key in ("before", "since"):
        for ref in filters.get(key, []):
            try:
                pivot = await asyncio.to_thread(store.resolve, ref)
            except Exception:
                raise bad_request(f"no such image: {ref}") from None
            records = [r for r in records if (r.created or "") and (
                (r.created < (pivot.created or "")) if key == "before"
                else (r.created > (pivot.created or "")))]
    out = [summary_dict(r) for r in records]
    refs = filters.get("reference") or []
    if refs:
        def wanted(item: dict[str, Any]) -> bool:
            for ref in refs:
                w = parse_reference(ref, default_tag=False)
                for tag in item["RepoTags"] or ():
                    r = parse_reference(tag)
                    if r.familiar_name() == w.familiar_name() and (not w.tag or w.tag == r.tag):
                        return True
            return False

        out = [i for i in out if wanted(i)]
    return json_response(out)


async def _resolve(request: web.Request) -> Any:
    from ...errors import ImageNotFound

    name = request.match_info["name"]
    try:
        return await asyncio.to_thread(_store(request).resolve, name)
    except ImageNotFound:
        raise not_found(f"No such image: {name}") from None


async def inspect(request: web.Request) -> web.Response:
    from ...cli.images import image_inspect_dict

    rec = await _resolve(request)
    data = dict(image_inspect_dict(rec))
    data["Created"] = rec.created or "1970-01-01T00:00:00Z"
    return json_response(data)


async def remove(request: web.Request) -> web.Response:
    from ...errors import ImageError, ImageNotFound

    name = request.match_info["name"]
    store = _store(request)
    try:
        lines = await asyncio.to_thread(store.remove, name, force=flag(request, "force"))
    except ImageNotFound:
        raise not_found(f"No such image: {name}") from None
    except ImageError as exc:
        raise conflict(str(exc)) from None
    out = []
    for line in lines:
        kind, _, ref = str(line).partition(": ")
        out.append({"Untagged" if kind.lower().startswith("untag") else "Deleted": ref or line})
    return json_response(out)


async def tag(request: web.Request) -> web.Response:
    repo = request.query.get("repo")
    if not repo:
        raise bad_request("repository name must have at least one component")
    target = repo + (":" + request.query["tag"] if request.query.get("tag") else "")
    rec = await _resolve(request)
    await asyncio.to_thread(_store(request).tag, rec.config_digest, target)
    return web.Response(status=201)


async def create(request: web.Request) -> web.StreamResponse:
    """``docker pull``: progress as JSON lines, an error as an ``errorDetail`` line (the
    status is sent before the pull can fail)."""
    from ...engine.events import LayerDone, LayerProgress
    from ...errors import OpenContainerError
    from ...image.pull import pull
    from ...image.reference import parse_reference

    host = state_of(request).host
    image = request.query.get("fromImage")
    if not image:
        if request.query.get("fromSrc"):
            raise bad_request("importing with fromSrc is not supported: use "
                              "'opencontainer import'.")
        raise bad_request("fromImage is required.")
    tag_ = request.query.get("tag")
    if tag_:
        image = f"{image}@{tag_}" if tag_.startswith("sha256:") else f"{image}:{tag_}"
    try:
        ref = parse_reference(image)
    except OpenContainerError as exc:
        raise bad_request(str(exc)) from None
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    seen: dict[str, str] = {}
    downloaded = False

    def short(digest: str) -> str:
        return digest.split(":", 1)[-1][:12]

    def progress(event: Any) -> None:
        nonlocal downloaded
        detail: dict[str, int] = {}
        if isinstance(event, LayerProgress):
            lid = short(event.digest)
            if event.phase == "extracting":
                status = "Pull complete"
            elif event.done == 0:
                status = "Pulling fs layer"
            else:
                status, detail = "Downloading", {"current": event.done, "total": event.total}
            if status == "Downloading" or seen.get(lid) != status:
                seen[lid] = status
                queue.put_nowait({"status": status, "progressDetail": detail, "id": lid})
        elif isinstance(event, LayerDone):
            lid = short(event.digest)
            status = "Already exists" if event.cached else "Download complete"
            downloaded = downloaded or not event.cached
            if seen.get(lid) != status:
                seen[lid] = status
                queue.put_nowait({"status": status, "progressDetail": {}, "id": lid})

    async def run() -> Any:
        try:
            return await pull(str(ref), paths=host.paths, platform=request.query.get("platform")
                              or None, env=host.env, progress=progress)
        finally:
            queue.put_nowait(None)

    async def send(msg: dict[str, Any]) -> None:
        await resp.write(json.dumps(msg).encode() + b"\r\n")

    await send({"status": f"Pulling from {ref.familiar_name()}", "id": ref.tag or ref.digest})
    task = asyncio.ensure_future(run())
    while (msg := await queue.get()) is not None:
        await send(msg)
    try:
        rec = await task
    except OpenContainerError as exc:
        await send({"errorDetail": {"message": str(exc)}, "error": str(exc)})
    else:
        await send({"status": f"Digest: {rec.index_digest or rec.digest}"})
        what = "Downloaded newer image" if downloaded else "Image is up to date"
        await send({"status": f"Status: {what} for {ref.familiar()}"})
    await resp.write_eof()
    return resp


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/images/create", create),
        ("GET", "/images/json", list_),
        ("GET", "/images/{name:.+}/json", inspect),
        ("POST", "/images/{name:.+}/tag", tag),
        ("DELETE", "/images/{name:.+}", remove),
    ]
