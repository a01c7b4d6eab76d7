"""A user-space TCP relay: ``published`` on the host -> ``target`` on 127.0.0.1.

Used when proot has no port map (-p) and a service publishes a port different from the one it
listens on: the container binds its own port on the shared loopback, the relay forwards.
"""

from __future__ import annotations

import contextlib

import anyio
from anyio.abc import ByteStream, SocketStream, TaskStatus

from ..errors import ContainerError
from .network import Relay


async def _pipe(src: ByteStream, dst: ByteStream) -> None:
    try:
        async for chunk in src:
            await dst.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            await dst.send_eof()


async def serve(relay: Relay, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                ) -> None:
    host = relay.host_ip if relay.host_ip not in ("", "0.0.0.0") else "0.0.0.0"
    try:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=relay.listen,
                                                   reuse_port=False)
    except OSError as exc:
        raise ContainerError(
            f"cannot publish port {relay.listen}: {exc.strerror or exc} (is it in use?)."
        ) from exc

    async def handle(client: SocketStream) -> None:
        async with client:
            try:
                upstream = await anyio.connect_tcp("127.0.0.1", relay.target)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                tg.start_soon(_pipe, client, upstream)
                tg.start_soon(_pipe, upstream, client)

    async with listener:
        task_status.started()
        await listener.serve(handle)
