"""Example plugin: tell someone when a container turns unhealthy or exits with an error.

- ``OPENCONTAINER_WEBHOOK_URL=https://…``: POST the event as JSON (aiohttp);
- ``OPENCONTAINER_NOTIFY_DESKTOP=1``: a desktop notification with ``notify-send`` when present.

Without either setting the plugin does nothing. Plugins are loaded only when named: e.g.
``OPENCONTAINER_PLUGINS=/path/to/plugins/notifier.py``, ``plugins = ["/path/to/notifier.py"]``
in ``~/.config/opencontainer/config.toml``, ``--plugin-dir``, or the ``opencontainer.plugins``
entry point of an installed package.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

import anyio

from opencontainer.engine.events import Event, Exited, HealthChanged


def worth_telling(event: Event) -> bool:
    if isinstance(event, HealthChanged):
        return event.status == "unhealthy"
    if isinstance(event, Exited):
        return event.exit_code != 0
    return False


def message(event: Event) -> str:
    if isinstance(event, HealthChanged):
        return f"{event.container} is unhealthy"
    if isinstance(event, Exited):
        again = " (restarting)" if event.restarting else ""
        return f"{event.container} exited with code {event.exit_code}{again}"
    return event.kind


class Notifier:
    subscriptions = (HealthChanged, Exited)

    def __init__(self, url: str | None, desktop: bool) -> None:
        self.url = url
        self.desktop = desktop and shutil.which("notify-send") is not None
        self._session: Any = None

    async def handle(self, event: Event) -> None:
        if not worth_telling(event):
            return
        if self.url:
            import aiohttp

            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            payload = {**event.to_dict(), "message": message(event)}
            try:
                async with self._session.post(self.url, json=payload) as resp:
                    await resp.read()
            except aiohttp.ClientError:
                pass  # a notifier must not fail the stack; try again on the next event
        if self.desktop:
            await anyio.run_process(["notify-send", "OpenContainer", message(event)],
                                    check=False)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def make_plugin(env: Mapping[str, str]) -> Notifier | None:
    url = env.get("OPENCONTAINER_WEBHOOK_URL")
    desktop = env.get("OPENCONTAINER_NOTIFY_DESKTOP") == "1"
    if not url and not desktop:
        return None
    return Notifier(url, desktop)
