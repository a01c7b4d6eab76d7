"""A user-space TCP relay for published ports when proot cannot map them (no ``-p``).

``host_ip:host_port`` on the host is forwarded to ``127.0.0.1:container_port`` (where the
container, sharing the host's loopback, really listens).
"""

from __future__ import annotations

import contextlib
import socket

import anyio
import anyio.abc

from ..errors import ProotError
from ..logs import logger

log = logger()


def check_port_free(host_ip: str, port: int) -> None:
    """Fail (one sentence) when ``port`` is already taken on the host."""
    family = socket.AF_INET6 if ":" in (host_ip or "") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except PermissionError:
            raise ProotError(
                f"cannot publish port {port}: binding it needs privileges a normal user lacks; "
                "use a host port >= 1024."
            ) from None
        except OSError:
            raise ProotError(
                f"cannot publish port {port}: it is already in use on the host."
            ) from None


async def _pipe(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
    try:
        async for chunk in src:
            await dst.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await dst.send_eof()


async def _handle(client: anyio.abc.SocketStream, target_port: int) -> None:
    async with client:
        try:
            upstream = await anyio.connect_tcp("127.0.0.1", target_port)
        except OSError:
            return
        async with upstream, anyio.create_task_group() as tg:
            tg.start_soon(_pipe, client, upstream)
            tg.start_soon(_pipe, upstream, client)


async def serve_relay(
    host_ip: str,
    host_port: int,
    container_port: int,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Forward connections until cancelled. Signals ``started`` once listening."""
    try:
        listener = await anyio.create_tcp_listener(
            local_host=host_ip or "0.0.0.0", local_port=host_port, reuse_port=False
        )
    except OSError as exc:
        raise ProotError(f"cannot publish port {host_port}: {exc.strerror or exc}.") from exc
    log.debug("relay listening", host_port=host_port, container_port=container_port)
    async with listener:
        task_status.started()

        async def handler(client: anyio.abc.SocketStream) -> None:
            await _handle(client, container_port)

        await listener.serve(handler)
