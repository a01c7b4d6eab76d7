"""``opencontainer supervise --state-dir DIR``: the detached supervisor (internal).

Started by ``up`` (a compose project) or by ``run -d``/``start`` (a standalone container, a
project of one) in a new session with stdio to ``supervisor.log``. It reads ``project.json``,
takes the project's flock, kills whatever a crashed predecessor left, answers the control socket
and runs until ``down`` (or SIGTERM/SIGINT: stop all containers gracefully and exit). A
standalone container's supervisor also ends when its container has exited for good (or was
removed) and no request is being served: a stopped container costs no process, as in Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StateError

if TYPE_CHECKING:
    from ..api.control import ControlServer
    from ..engine.supervisor import Supervisor

IDLE_CHECK = 0.2


def configure_supervise(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", required=True, help="the project's .containers folder")
    parser.add_argument("--project-dir", default=None, help="(informational)")
    parser.add_argument("--plugin-dir", action="append", default=None)


def run_supervise(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    state_dir = Path(args.state_dir).absolute()
    if not (state_dir / "project.json").exists():
        raise StateError(f"{state_dir} has no project.json: run 'opencontainer up' instead.")
    dirs = tuple(Path(d) for d in (args.plugin_dir or ()))
    anyio.run(_supervise, state_dir, ctx, dirs, backend="asyncio")
    return 0


async def wait_idle(sup: Supervisor, server: ControlServer) -> None:
    """Until no container of ``sup`` is active (none running, starting or waiting for a
    restart) and no control request is being served."""
    import anyio

    from ..engine import events as ev

    async with sup.bus.subscribe(ev.Exited, ev.Removed, name="idle", lossy=True) as events:
        while True:
            if not any(c.active for c in sup.containers.values()) and server.inflight == 0:
                await anyio.sleep(IDLE_CHECK)  # a request may be about to start one again
                if not any(c.active for c in sup.containers.values()) and \
                        server.inflight == 0:
                    return
                continue
            with anyio.move_on_after(1.0):
                await events.receive()


async def _supervise(state_dir: Path, ctx: Any, plugin_dirs: tuple[Path, ...]) -> None:
    import anyio

    from ..api.control import ControlServer
    from ..engine.engine import Engine
    from ..engine.model import ProjectModel
    from ..engine.state import unregister_project
    from ..paths import atomic_write

    model = ProjectModel.from_json((state_dir / "project.json").read_text())
    async with Engine(paths=ctx.paths, env=ctx.env, plugin_dirs=plugin_dirs) as engine:
        sup = await engine.open(model)
        atomic_write(sup.state.pid_file, f"{os.getpid()}\n")
        server = ControlServer(engine, sup, sup.state.socket)
        stopped_by_signal = False
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                nonlocal stopped_by_signal
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        stopped_by_signal = True
                        with anyio.CancelScope(shield=True):
                            await sup.stop()
                        tg.cancel_scope.cancel()
                        return

            async def when_idle() -> None:
                # the first request (start/up) is on its way: wait for it to come and go
                with anyio.move_on_after(30):
                    while server.inflight == 0 and not any(
                            c.active for c in sup.containers.values()):
                        await anyio.sleep(0.02)
                await wait_idle(sup, server)
                server.down_requested.set()

            tg.start_soon(on_signal)
            await tg.start(server.run)
            if model.standalone:
                tg.start_soon(when_idle)
            await server.down_requested.wait()
            tg.cancel_scope.cancel()
        with contextlib.suppress(FileNotFoundError):
            sup.state.pid_file.unlink()
        if not stopped_by_signal and not model.standalone:
            unregister_project(engine.paths, model.name)
    if model.standalone and not any(p.is_dir() for p in state_dir.iterdir()):
        from ..paths import remove_tree  # removed (`run -d --rm`, `rm -f`): its folder goes too

        remove_tree(state_dir, ignore_errors=True)
