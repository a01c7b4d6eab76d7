"""``opencontainer supervise --state-dir DIR``: the detached per-project supervisor (internal).

Started by ``up`` in a new session with stdio to ``supervisor.log``. It reads ``project.json``,
takes the project's flock, kills whatever a crashed predecessor left, answers the control socket
and runs until ``down`` (or SIGTERM/SIGINT: stop all containers gracefully and exit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from ..errors import StateError


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

            tg.start_soon(on_signal)
            await tg.start(server.run)
            await server.down_requested.wait()
            tg.cancel_scope.cancel()
        with contextlib.suppress(FileNotFoundError):
            sup.state.pid_file.unlink()
        if not stopped_by_signal:
            unregister_project(engine.paths, model.name)
