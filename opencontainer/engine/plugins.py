"""Plugins: objects that receive events, each in its own task on a lossy stream.

A plugin has ``subscriptions`` (a tuple of event classes; ``isinstance`` delivery) and
``async def handle(event)``. An exception disables that plugin only, with one warning; a slow
plugin loses events (counted, reported as ``EventsDropped``) instead of slowing the engine.

Discovery:

- the entry-point group ``opencontainer.plugins``: the entry point names a plugin object, or a
  factory called with the environment mapping;
- ``*.py`` files in the plugin directories: ``--plugin-dir`` / ``OPENCONTAINER_PLUGIN_DIR``
  (``os.pathsep``-separated), else ``./plugins``. A file defines ``make_plugin(env)`` (returns
  a plugin or ``None`` when it is not configured) or a module-level ``plugin`` object.

``OPENCONTAINER_DISABLE_PLUGINS=1`` turns discovery off.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import attrs
import structlog
from anyio.abc import TaskStatus

from .bus import EventBus
from .events import Event

log = structlog.get_logger()

ENTRY_POINT_GROUP = "opencontainer.plugins"


@runtime_checkable
class Plugin(Protocol):
    """What a plugin is: the event classes it wants (``isinstance`` delivery; a class
    attribute such as ``subscriptions = (Exited,)`` does) and a coroutine that handles one
    event. It may also have ``async def aclose()``, awaited when the engine stops."""

    @property
    def subscriptions(self) -> tuple[type[Event], ...]: ...

    async def handle(self, event: Event) -> None: ...


@attrs.frozen
class Loaded:
    name: str
    plugin: Any


def _instantiate(obj: Any, env: Mapping[str, str]) -> Any:
    if hasattr(obj, "subscriptions") and hasattr(obj, "handle") and not inspect.isclass(obj):
        return obj
    if callable(obj):
        try:
            return obj(env)
        except TypeError:
            return obj()
    return None


def disabled(env: Mapping[str, str]) -> bool:
    return env.get("OPENCONTAINER_DISABLE_PLUGINS", "").lower() in ("1", "true", "yes")


def plugin_dirs(env: Mapping[str, str], extra: Sequence[Path] = ()) -> list[Path]:
    dirs = list(extra)
    named = env.get("OPENCONTAINER_PLUGIN_DIR")
    if named:
        dirs += [Path(p) for p in named.split(os.pathsep) if p]
    if not dirs:
        dirs = [Path.cwd() / "plugins"]
    return dirs


def _from_file(path: Path, env: Mapping[str, str]) -> Any:
    mod_name = f"opencontainer_plugin_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    if hasattr(module, "make_plugin"):
        return module.make_plugin(env)
    return getattr(module, "plugin", None)


def discover(env: Mapping[str, str], extra_dirs: Sequence[Path] = ()) -> list[Loaded]:
    if disabled(env):
        return []
    found: list[Loaded] = []
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = _instantiate(ep.load(), env)
            except Exception as exc:
                log.warning("plugin failed to load", plugin=ep.name, error=str(exc))
                continue
            if plugin is not None:
                found.append(Loaded(ep.name, plugin))
    except Exception as exc:  # a broken environment must not stop the engine
        log.warning("plugin entry points unreadable", error=str(exc))
    for d in plugin_dirs(env, extra_dirs):
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                plugin = _from_file(path, env)
            except Exception as exc:
                log.warning("plugin failed to load", plugin=str(path), error=str(exc))
                continue
            if plugin is not None:
                found.append(Loaded(path.stem, plugin))
    return found


@attrs.define(eq=False)
class PluginHost:
    bus: EventBus
    plugins: list[Loaded] = attrs.field(factory=list)
    buffer: int = 256
    disabled: dict[str, str] = attrs.field(factory=dict)
    _streams: list[Any] = attrs.field(factory=list)
    _busy: int = 0

    async def drain(self, timeout: float = 1.0) -> None:
        """Give the plugins up to ``timeout`` seconds to handle what is queued."""
        with anyio.move_on_after(timeout):
            while self._busy or any(s.statistics().current_buffer_used for s in self._streams):
                await anyio.sleep(0.01)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            for p in self.plugins:
                await tg.start(self._run_one, p)
            task_status.started()

    async def _run_one(self, loaded: Loaded, *,
                       task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        plugin = loaded.plugin
        subs = tuple(getattr(plugin, "subscriptions", ()) or (Event,))
        async with self.bus.subscribe(*subs, name=f"plugin:{loaded.name}", lossy=True,
                                      buffer=self.buffer) as stream:
            self._streams.append(stream)
            task_status.started()
            try:
                async for event in stream:
                    self._busy += 1
                    try:
                        await plugin.handle(event)
                    finally:
                        self._busy -= 1
            except Exception as exc:
                self.disabled[loaded.name] = f"{type(exc).__name__}: {exc}"
                log.warning("plugin raised an exception and is disabled",
                            plugin=loaded.name, error=self.disabled[loaded.name])
            finally:
                self._streams.remove(stream)
                closer = getattr(plugin, "aclose", None)
                if closer is not None:
                    with anyio.CancelScope(shield=True):
                        try:
                            await closer()
                        except Exception as exc:
                            log.warning("plugin failed to close", plugin=loaded.name,
                                        error=str(exc))
