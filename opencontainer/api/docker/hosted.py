"""Containers the service supervises itself: those a client attached to before starting
them (``docker run`` without ``-d``, ``docker run -i``/``-it``, ``docker start -a``).

Every other container runs under a detached supervisor of its own, which has no stdin to give
it and whose output reaches a client only through the log file (gone with ``--rm`` as soon as
the container ends). A stopped standalone container that a client attaches to is instead
supervised in the service's process, as the CLI's ``run`` supervises it in its own: an
:class:`~opencontainer.engine.engine.Engine` opens the container's project, the container gets
an :class:`~opencontainer.engine.runner.Attachment` whose stdin is a pipe the attached
connections write to (used when its config opens stdin, ``OpenStdin``) and whose
stdout/stderr are fanned out to them as the bytes come, and the project's control socket is
served from here, so ``opencontainer ps/stop/kill`` and the API's own operations keep working.
It ends when the container has ended for good (and goes with the service: stopping the service
stops these containers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import attrs
import structlog

from ...engine.containers import Host
from .streams import STDERR, STDOUT

log = structlog.get_logger()

Chunk = tuple[int, bytes]


class Fanout:
    """The container's output as it comes, to every attached connection (``None``: the
    end)."""

    def __init__(self) -> None:
        self.queues: list[asyncio.Queue[Chunk | None]] = []
        self.closed = False

    def subscribe(self) -> asyncio.Queue[Chunk | None]:
        q: asyncio.Queue[Chunk | None] = asyncio.Queue()
        if self.closed:
            q.put_nowait(None)
        self.queues.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Chunk | None]) -> None:
        with contextlib.suppress(ValueError):
            self.queues.remove(q)

    def put(self, item: Chunk | None) -> None:
        for q in self.queues:
            q.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.put(None)


class _Echo:
    """What the supervisor's log pump echoes to (a file, for it): one stream's bytes into
    the fanout."""

    def __init__(self, fanout: Fanout, stream: int) -> None:
        self.fanout = fanout
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.fanout.put((self.stream, bytes(data)))
        return len(data)

    def flush(self) -> None:
        pass


@attrs.define(eq=False)
class Hosted:
    """One container supervised (or about to be) in the service."""

    id: str
    name: str
    tty: bool
    fanout: Fanout = attrs.field(factory=Fanout)
    stdin_r: int = -1
    stdin_w: int = -1
    attached_stdin: int = 0  # connections that feed stdin
    task: asyncio.Task[None] | None = None
    container: Any = None
    started: asyncio.Future[None] | None = None

    def __attrs_post_init__(self) -> None:
        self.stdin_r, self.stdin_w = os.pipe()

    async def write_stdin(self, data: bytes) -> None:
        fd = self.stdin_w
        if fd < 0:
            return
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_write_all, fd, data)

    def close_stdin(self) -> None:
        """The client's input has ended (docker's StdinOnce): the container reads EOF."""
        if self.stdin_w >= 0:
            with contextlib.suppress(OSError):
                os.close(self.stdin_w)
            self.stdin_w = -1

    def close(self) -> None:
        self.close_stdin()
        if self.stdin_r >= 0:
            with contextlib.suppress(OSError):
                os.close(self.stdin_r)
            self.stdin_r = -1
        self.fanout.close()

    @property
    def tty_master(self) -> int | None:
        handle = getattr(self.container, "handle", None)
        return getattr(handle, "tty_master", None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


async def run_hosted(h: Hosted, entry: Any, host: Host,
                     exits: dict[str, tuple[int, int]]) -> None:
    """Supervise ``entry`` here, attached to ``h``, until it has ended for good. ``h.started``
    gets the start's outcome (an exception when it could not start)."""
    import anyio

    from ...api.control import ControlServer
    from ...cli.supervise import wait_idle
    from ...engine import events as ev
    from ...engine.engine import Engine
    from ...engine.model import ProjectModel
    from ...engine.runner import Attachment
    from ...engine.supervisor import UpOptions
    from ...errors import ContainerError

    assert h.started is not None
    started = h.started
    failure: BaseException | None = None
    try:
        model = ProjectModel.from_json(entry.project.state.project_json.read_text())
        async with Engine(paths=host.paths, env=dict(host.env), pull_policy="never") as engine:
            sup = await engine.open(model)
            await sup.up(UpOptions(services=(entry.state.service,), no_recreate=True,
                                   start=False))
            c = sup.containers.get(entry.name)
            if c is None:
                raise ContainerError(f"container {entry.name} cannot be started.")
            c.attach = Attachment(stdout=_Echo(h.fanout, STDOUT),  # type: ignore[arg-type]
                                  stderr=_Echo(h.fanout, STDERR),  # type: ignore[arg-type]
                                  stdin=h.stdin_r)
            h.container = c
            server = ControlServer(engine, sup, sup.state.socket)
            async with anyio.create_task_group() as tg, \
                    sup.bus.subscribe(ev.Removed, name="hosted") as removals:
                await tg.start(server.run)
                result = await sup.start(names=[c.name])
                if not result.ok:
                    failure = ContainerError(result.errors[0] if result.errors else
                                             f"container {entry.name} failed to start.")
                else:
                    started.set_result(None)
                    await c.wait_done()
                    count, _ = exits.get(h.id, (0, 0))
                    exits[h.id] = (count + 1, int(c.state.exit_code or 0))
                    h.fanout.close()
                    if c.ctx.service.auto_remove:  # its supervisor (here) removes it
                        with anyio.move_on_after(60):
                            while sup.containers.get(c.name) is c:
                                await removals.receive()
                    else:
                        await wait_idle(sup, server)
                tg.cancel_scope.cancel()
    except Exception as exc:
        failure = exc
    finally:
        h.close()
        if not started.done():
            if failure is not None:
                started.set_exception(failure)
            else:
                started.cancel()
        elif failure is not None:
            log.error("a container supervised by the service failed", container=h.name,
                      error=f"{type(failure).__name__}: {failure}")
        if entry.kind == "standalone" and not entry.project.state.container_dir(
                entry.name).is_dir():
            from ...engine.containers import forget

            await asyncio.to_thread(forget, host.paths, entry.name)
