"""Plugins: objects that receive events, each in its own task on a lossy stream.

A plugin has ``subscriptions`` (a tuple of event classes; ``isinstance`` delivery) and
``async def handle(event)``. An exception disables that plugin only, with one warning; a slow
plugin loses events (counted, reported as ``EventsDropped``) instead of slowing the engine.

Plugins are code that runs with the user's rights, so only the plugins the *user* names are
loaded -- never files that happen to be in a project (a ``plugins/`` folder in the project
directory is ignored: Airflow's layout has one, and ``up`` must not run it):

- installed packages: the entry-point group ``opencontainer.plugins`` (the entry point names a
  plugin object, or a factory called with the environment mapping);
- ``OPENCONTAINER_PLUGINS``: comma-separated module paths (``pkg.mod`` or ``pkg.mod:factory``)
  or ``.py`` files / directories of them (a relative path is relative to the current
  directory; the detached supervisor runs in the project directory);
- the configuration file ``$XDG_CONFIG_HOME/opencontainer/config.toml`` (with
  ``OPENCONTAINER_HOME``: ``$OPENCONTAINER_HOME/config/config.toml``), key ``plugins = [...]``
  with the same entries (a relative path is relative to the file);
- ``--plugin-dir DIR`` of ``up`` and ``OPENCONTAINER_PLUGIN_DIR`` (``os.pathsep``-separated):
  every ``*.py`` in those directories.

A module or file defines ``make_plugin(env)`` (returns a plugin, or ``None`` when it is not
configured) or a module-level ``plugin`` object. ``OPENCONTAINER_DISABLE_PLUGINS=1`` turns all
of it off.
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
from anyio.abc import TaskStatus

from ..logs import logger
from .bus import EventBus
from .events import Event

log = logger()

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
    """The directories the user named (``--plugin-dir``, ``OPENCONTAINER_PLUGIN_DIR``); none
    by default."""
    dirs = list(extra)
    named = env.get("OPENCONTAINER_PLUGIN_DIR")
    if named:
        dirs += [Path(p) for p in named.split(os.pathsep) if p]
    return dirs


def config_file(env: Mapping[str, str]) -> Path:
    """``config.toml`` in the configuration directory (see :class:`~opencontainer.paths.Paths`)."""
    from ..paths import Paths

    return Paths.from_env(env).config / "config.toml"


def configured(env: Mapping[str, str]) -> list[tuple[str, Path | None]]:
    """The plugins named in ``OPENCONTAINER_PLUGINS`` and the configuration file, each with
    the directory a relative path in it is relative to (None: the current directory)."""
    out: list[tuple[str, Path | None]] = [
        (item.strip(), None) for item in env.get("OPENCONTAINER_PLUGINS", "").split(",")
        if item.strip()]
    path = config_file(env)
    if not path.is_file():
        return out
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("configuration file unreadable, its plugins are not loaded",
                    file=str(path), error=str(exc))
        return out
    items = doc.get("plugins", [])
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        log.warning("'plugins' in the configuration file must be a list of strings",
                    file=str(path))
        return out
    return out + [(x.strip(), path.parent) for x in items if x.strip()]


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec or spec.startswith(("~", "."))


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


def _from_module(spec: str, env: Mapping[str, str]) -> Any:
    """``pkg.mod`` (its ``make_plugin(env)`` or ``plugin``) or ``pkg.mod:attr``."""
    mod_name, _, attr = spec.partition(":")
    module = importlib.import_module(mod_name)
    if attr:
        return _instantiate(getattr(module, attr), env)
    if hasattr(module, "make_plugin"):
        return module.make_plugin(env)
    return getattr(module, "plugin", None)


def _py_files(d: Path) -> list[Path]:
    return [p for p in sorted(d.glob("*.py")) if not p.name.startswith("_")]


def _named(spec: str, base: Path | None) -> list[tuple[str, str, Path | None]]:
    """``(key, name, file)`` for one named plugin: files of a directory, a file, or a module
    (file None)."""
    if not _is_path(spec):
        return [(f"module:{spec}", spec.partition(":")[0].rsplit(".", 1)[-1], None)]
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = path.absolute()
    files = _py_files(path) if path.is_dir() else [path]
    return [(f"file:{f}", f.stem, f) for f in files]


def _load(name: str, what: str, make: Any, found: list[Loaded]) -> None:
    try:
        plugin = make()
    except Exception as exc:
        log.warning("plugin failed to load", plugin=what, error=f"{type(exc).__name__}: {exc}")
        return
    if plugin is not None:
        found.append(Loaded(name, plugin))


def may_declare_entry_points(group: str, path: Sequence[str] | None = None,
                             memo: dict[tuple[str, str], tuple[int, bool]] | None = None,
                             ) -> bool:
    """Whether a distribution on ``path`` (``sys.path``) may declare entry points of
    ``group``: False only when no ``*.dist-info``/``*.egg-info`` folder's ``entry_points.txt``
    mentions it. Importing ``importlib.metadata`` (email, zipfile, csv, ...) and its scan cost
    ~20 ms at every engine start; this look costs ~1 ms, and anything it cannot tell apart
    (a zip or egg on the path, another finder that knows distributions) answers True.

    ``memo``: each folder's answer by its mtime (which changes when a distribution is
    installed or removed there), for a long-lived caller (the engine service)."""
    from importlib.machinery import PathFinder

    if any(hasattr(f, "find_distributions") and f is not PathFinder for f in sys.meta_path):
        return True
    for entry in sys.path if path is None else path:
        base = entry or "."
        if base.endswith(".egg"):
            return True
        mtime = -1
        if memo is not None:
            try:
                mtime = os.stat(base).st_mtime_ns
            except OSError:
                continue
            known = memo.get((base, group))
            if known is not None and known[0] == mtime:
                if known[1]:
                    return True
                continue
        try:
            declares = _folder_declares(base, group)
        except NotADirectoryError:  # a zip file on the path
            return True
        except OSError:
            continue
        if memo is not None:
            memo[(base, group)] = (mtime, declares)
        if declares:
            return True
    return False


def _folder_declares(base: str, group: str) -> bool:
    with os.scandir(base) as it:
        infos = [e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))]
    for info in infos:
        try:
            text = Path(base, info, "entry_points.txt").read_text(errors="replace")
        except OSError:
            continue
        if group in text:
            return True
    return False


def discover(env: Mapping[str, str], extra_dirs: Sequence[Path] = (), *,
             memo: dict[tuple[str, str], tuple[int, bool]] | None = None) -> list[Loaded]:
    """The plugins the user named (see the module docstring), loaded and configured
    (``memo``: see :func:`may_declare_entry_points`)."""
    if disabled(env):
        return []
    found: list[Loaded] = []
    try:
        eps: Any = ()
        if may_declare_entry_points(ENTRY_POINT_GROUP, memo=memo):
            from importlib.metadata import entry_points

            eps = entry_points(group=ENTRY_POINT_GROUP)
        for ep in eps:
            _load(ep.name, ep.name, lambda ep=ep: _instantiate(ep.load(), env), found)
    except Exception as exc:  # a broken environment must not stop the engine
        log.warning("plugin entry points unreadable", error=str(exc))
    seen: set[str] = set()
    named: list[tuple[str, str, Path | None]] = []
    for d in plugin_dirs(env, extra_dirs):
        named += [(f"file:{f.absolute()}", f.stem, f.absolute()) for f in
                  (_py_files(d) if d.is_dir() else [])]
    for spec, base in configured(env):
        named += _named(spec, base)
    for key, name, file in named:
        if key in seen:
            continue
        seen.add(key)
        if file is None:
            spec = key.removeprefix("module:")
            _load(name, spec, lambda spec=spec: _from_module(spec, env), found)
        elif not file.is_file():
            log.warning("plugin not found", plugin=str(file))
        else:
            _load(name, str(file), lambda file=file: _from_file(file, env), found)
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
