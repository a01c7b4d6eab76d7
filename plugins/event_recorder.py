"""Example plugin: record every lifecycle event as one JSON line.

Enable it by naming the file: ``OPENCONTAINER_EVENT_LOG=/path/events.jsonl``. Log lines are left
out unless ``OPENCONTAINER_EVENT_LOG_LINES=1``. Plugins are loaded only when named: e.g.
``OPENCONTAINER_PLUGINS=/path/to/plugins/event_recorder.py``, ``plugins = [...]`` in
``~/.config/opencontainer/config.toml``, ``--plugin-dir``, or the ``opencontainer.plugins``
entry point of an installed package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread

from opencontainer.engine.events import Event, LogLine


class EventRecorder:
    subscriptions = (Event,)

    def __init__(self, path: Path, include_logs: bool = False) -> None:
        self.path = path
        self.include_logs = include_logs
        path.parent.mkdir(parents=True, exist_ok=True)

    async def handle(self, event: Event) -> None:
        if isinstance(event, LogLine) and not self.include_logs:
            return
        line = json.dumps(event.to_dict(), sort_keys=True) + "\n"
        await anyio.to_thread.run_sync(self._append, line)  # off the event loop

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


def make_plugin(env: Mapping[str, str]) -> EventRecorder | None:
    path = env.get("OPENCONTAINER_EVENT_LOG")
    if not path:
        return None
    return EventRecorder(Path(path), env.get("OPENCONTAINER_EVENT_LOG_LINES") == "1")
