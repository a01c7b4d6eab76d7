"""Embedding OpenContainer: bring a compose project up, watch it, take it down.

Usage: ``python embed.py [compose.yaml]``. It needs what the CLI needs (proot, the images or a
registry to pull them from) and reads the same environment (``OPENCONTAINER_HOME``, ...).
"""

from __future__ import annotations

import sys

import anyio
from anyio.abc import TaskStatus

from opencontainer import (
    DownOptions,
    Engine,
    Exited,
    HealthChanged,
    LoadOptions,
    LogLine,
    OpenContainerError,
    UpOptions,
    load_project,
)


async def watch(engine: Engine, *,
                task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Print the containers' output, health changes and exits as they happen."""
    async with engine.subscribe(LogLine, HealthChanged, Exited) as events:
        task_status.started()  # subscribed: nothing `up` does is missed
        async for event in events:
            if isinstance(event, LogLine):
                print(f"{event.service} | {event.text}", flush=True)
            elif isinstance(event, HealthChanged):
                print(f"{event.container} is {event.status}", flush=True)
            elif isinstance(event, Exited):
                print(f"{event.container} exited with code {event.exit_code}", flush=True)


async def main(compose_file: str) -> int:
    project = load_project(LoadOptions(files=(compose_file,)))
    async with Engine() as engine, anyio.create_task_group() as tg:
        await tg.start(watch, engine)
        result = await engine.up(project, UpOptions(wait=True, wait_timeout=60))
        for error in result.errors:
            print(f"error: {error}", flush=True)
        for c in engine.ps(project):  # snapshots: they do not change under you
            print(f"{c.name}: {c.status} {c.health}".rstrip(), flush=True)
        removed = await engine.down(project, DownOptions(timeout=5))
        print("removed " + ", ".join(removed), flush=True)
        tg.cancel_scope.cancel()
    return 0 if result.ok else 1


if __name__ == "__main__":
    try:
        sys.exit(anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "compose.yaml"))
    except OpenContainerError as exc:
        sys.exit(f"error: {exc}")
