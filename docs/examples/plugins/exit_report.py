"""Example plugin: append one line per container exit to the file ``EXIT_REPORT`` names.

Load it with ``--plugin-dir docs/examples/plugins`` (or ``OPENCONTAINER_PLUGIN_DIR``);
without ``EXIT_REPORT`` in the environment it is not loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread

from opencontainer import Event, Exited, Plugin


class ExitReport:
    """Writes ``<container> exited with code <n>`` (and `` (restarting)``) per exit."""

    subscriptions = (Exited,)  # delivery is by isinstance: only Exited events come here

    def __init__(self, path: Path) -> None:
        self.path = path

    async def handle(self, event: Event) -> None:
        if not isinstance(event, Exited):
            return
        again = " (restarting)" if event.restarting else ""
        line = f"{event.container} exited with code {event.exit_code}{again}\n"
        # file I/O in a worker thread: a slow disk must not stall the engine's event loop
        await anyio.to_thread.run_sync(self._append, line)

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


def make_plugin(env: Mapping[str, str]) -> Plugin | None:
    """Called by the engine with its environment; ``None``: not configured, not loaded."""
    path = env.get("EXIT_REPORT")
    return ExitReport(Path(path)) if path else None
