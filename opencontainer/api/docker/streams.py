"""Docker's stream formats: the multiplexed stream (an 8-byte header per frame: stream type,
three zero bytes, big-endian length) and the hijacked connection of ``attach`` and
``exec start`` (HTTP ``Upgrade: tcp``, ``101 UPGRADED``, then raw bytes both ways)."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

STDIN, STDOUT, STDERR = 0, 1, 2
STREAM_IDS = {"stdout": STDOUT, "stderr": STDERR}
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def frame(stream: int, data: bytes) -> bytes:
    """One frame of the multiplexed stream."""
    return struct.pack(">BxxxL", stream, len(data)) + data


class _UpgradeResponse(web.StreamResponse):
    """The ``101`` answer: no length, no chunking (the connection is raw afterwards)."""

    _length_check = False


class _InputParser:
    """Takes the connection's incoming bytes once it is hijacked (aiohttp's set_parser)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class _HalfOpen(RequestHandler):
    """aiohttp's connection handler, but a half-closed connection (the client's stdin ended:
    docker's CloseWrite) stays open for the output."""

    __slots__ = ()

    def eof_received(self) -> bool:  # type: ignore[override]
        parser = getattr(self, "_payload_parser", None)
        if parser is not None:
            parser.feed_eof()
        return True


class Hijacked:
    """A hijacked connection: :meth:`write` raw bytes, :meth:`read` the client's input
    (``b""`` at its end: the client closed its writing side, or the connection)."""

    def __init__(self, request: web.Request, response: web.StreamResponse,
                 parser: _InputParser) -> None:
        self.request = request
        self.response = response
        self._parser = parser
        self.closed = False

    async def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        transport = self.request.transport
        if transport is None or transport.is_closing():
            self.closed = True
            return
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True

    async def read(self) -> bytes:
        return await self._parser.queue.get()

    def close(self) -> None:
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def hijack(request: web.Request, content_type: str = RAW_STREAM) -> Hijacked:
    """Answer ``101 UPGRADED`` (or ``200`` to a client that did not ask to upgrade) and take
    the connection over."""
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    headers = {"Content-Type": content_type}
    resp: web.StreamResponse
    if upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        resp = _UpgradeResponse(status=101, reason="UPGRADED", headers=headers)
    else:
        resp = _UpgradeResponse(status=200, headers=headers)
    await resp.prepare(request)
    writer: Any = request._payload_writer
    if hasattr(writer, "send_headers"):
        writer.send_headers()
    await writer.drain()
    parser = _InputParser()
    protocol: Any = request.protocol
    if isinstance(protocol, RequestHandler) and type(protocol) is RequestHandler:
        protocol.__class__ = _HalfOpen  # the client's end of input is not the end
    if upgrade:
        protocol.set_parser(parser)
    else:
        parser.feed_eof()
    return Hijacked(request, resp, parser)
