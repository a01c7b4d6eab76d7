"""``POST /build``: the classic builder's protocol (``DOCKER_BUILDKIT=0 docker build``, the
docker SDK's ``images.build``).

The body is the build context as a tar archive (plain, gzip, bzip2 or xz: detected), unpacked
into a private folder with ``docker cp``'s checks (no entry leaves it, none through a symlink
that leads out); the build is :mod:`opencontainer.build.executor`'s, as ``opencontainer build``
runs it. Progress goes out as JSON lines: ``{"stream": "Step 1/3 : FROM busybox\\n"}``, the
RUN steps' output, then ``{"aux": {"ID": ...}}``, ``Successfully built`` and ``Successfully
tagged``; a failure as an ``errorDetail`` line (the status is sent before the build can fail).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from .archive import _check_member
from .common import ApiError, bad_request, flag, state_of


def _json_map(request: web.Request, name: str) -> dict[str, str]:
    """``buildargs``/``labels``: a JSON object of strings (a null value: left out)."""
    text = request.query.get(name)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise bad_request(f"{name} is not a JSON object.") from None
    if not isinstance(data, dict):
        raise bad_request(f"{name} is not a JSON object.")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def _dockerfile_path(text: str | None) -> str:
    """The Dockerfile's path inside the context (docker's default: ``Dockerfile``)."""
    name = posixpath.normpath((text or "Dockerfile").strip().lstrip("/"))
    if name in ("", ".") or name == ".." or name.startswith("../"):
        raise bad_request(f"the Dockerfile {text!r} is not inside the build context.")
    return name


def unpack_context(archive: IO[bytes], dest: Path) -> None:
    """Extract the context archive (any compression tarfile detects) into ``dest``."""
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as tar:
            for member in tar:
                _check_member(member, dest)
                if member.isdev() or member.name == ".":
                    continue  # device nodes cannot be made without privileges
                tar.extract(member, str(dest), set_attrs=not member.issym())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read the build context: {exc}") from None


class ClassicProgress:
    """The executor's progress as the classic builder's ``stream`` lines."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], total: int,
                 quiet: bool) -> None:
        from ...build.executor import Progress

        self.emit = emit
        self.total = total
        self.quiet = quiet
        self.n = 0
        outer = self

        class _Progress(Progress):
            def line(self, text: str) -> None:
                outer.stream(text + "\n")

            def instruction(self, label: str, index: int, total: int, text: str) -> int:
                outer.n += 1
                self.n = outer.n
                outer.stream(f"Step {outer.n}/{max(outer.total, outer.n)} : {text}\n")
                return self.n

            def cached(self) -> None:
                outer.stream(" ---> Using cache\n")

            def done(self) -> None:
                pass

            def output(self, data: str) -> None:
                outer.stream(data)

        self.progress = _Progress(None)

    def stream(self, text: str) -> None:
        if not self.quiet and text:
            self.emit({"stream": text})

    def output(self, data: bytes) -> None:
        self.stream(data.decode("utf-8", "replace"))


_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


async def _receive(request: web.Request, into: IO[bytes]) -> None:
    """The body into ``into``; a plain tar archive gets its end blocks (docker 20.10's CLI
    sends an archive without them, and no padding after the last file, when ``-f`` names a
    Dockerfile outside the context)."""
    first = b""
    while chunk := await request.content.read(1 << 20):
        if len(first) < 6:
            first += chunk[:6]
        await asyncio.to_thread(into.write, chunk)
    if not first.startswith(_COMPRESSED) and "Content-Encoding" not in request.headers:
        into.write(b"\0" * 1536)
    into.seek(0)


async def build(request: web.Request) -> web.StreamResponse:
    from ...build.executor import Builder, BuildOptions
    from ...errors import OpenContainerError
    from ...image.reference import parse_reference

    host = state_of(request).host
    q = request.query
    if q.get("remote"):
        raise bad_request("a remote build context is not supported: send the context as a "
                          "tar archive.")
    dockerfile = _dockerfile_path(q.get("dockerfile"))
    tags = [t for t in q.getall("t", []) if t]
    for t in tags:
        try:
            parse_reference(t)
        except OpenContainerError as exc:
            raise bad_request(f"invalid tag {t!r}: {exc}") from None
    build_args = _json_map(request, "buildargs")
    labels = _json_map(request, "labels")
    quiet = flag(request, "q")
    scratch = host.paths.data / "build"
    scratch.mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(prefix="context-", dir=scratch))
    try:
        with tempfile.TemporaryFile(prefix="oc-build-", dir=scratch) as tmp:
            await _receive(request, tmp)
            raw: IO[bytes] = tmp
            if request.headers.get("Content-Encoding", "") in ("gzip", "x-gzip"):
                import gzip

                raw = gzip.GzipFile(fileobj=tmp)  # type: ignore[assignment]
            try:
                await asyncio.to_thread(unpack_context, raw, context)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        path = context / dockerfile
        if not path.is_file():
            raise ApiError(500, f"Cannot locate specified Dockerfile: {dockerfile}")
        opts = BuildOptions(context=context, dockerfile=path, tags=tuple(tags),
                            build_args=build_args, target=q.get("target") or None,
                            no_cache=flag(request, "nocache"), pull=_pull(request),
                            labels=labels, platform=q.get("platform") or None, quiet=quiet)
        return await _stream(request, host, opts, Builder)
    finally:
        await asyncio.to_thread(shutil.rmtree, context, True)


def _pull(request: web.Request) -> bool:
    value = request.query.get("pull") or ""
    return bool(value) and value.strip().lower() not in ("0", "false", "no")


async def _stream(request: web.Request, host: Any, opts: Any, builder_cls: Any
                  ) -> web.StreamResponse:
    from ...errors import OpenContainerError
    from ...image.reference import parse_reference

    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def send(msg: dict[str, Any]) -> None:
        await resp.write(json.dumps(msg).encode() + b"\r\n")

    async def run() -> Any:
        try:
            builder = builder_cls(host.paths, host.env, opts)
            classic = ClassicProgress(queue.put_nowait, builder.step_count(), opts.quiet)
            builder.progress = classic.progress
            builder.output = classic.output
            return await builder.build()
        finally:
            queue.put_nowait(None)

    task = asyncio.ensure_future(run())
    try:
        while (msg := await queue.get()) is not None:
            await send(msg)
        try:
            rec = await task
        except OpenContainerError as exc:
            await send({"errorDetail": {"message": str(exc)}, "error": str(exc)})
        else:
            image_id = rec.config_digest
            await send({"aux": {"ID": image_id}})
            if opts.quiet:
                await send({"stream": image_id + "\n"})
            else:
                await send({"stream": f"Successfully built {image_id.split(':', 1)[-1][:12]}\n"})
                for t in opts.tags:
                    await send({"stream": f"Successfully tagged {parse_reference(t).familiar()}\n"})
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await resp.write_eof()
    return resp


def routes() -> list[tuple[str, str, Any]]:
    return [("POST", "/build", build)]


__all__ = ["ClassicProgress", "build", "routes", "unpack_context"]
