"""The engine facade, used by the CLI and by embedders.

::

    from opencontainer import Engine, load_project
    from opencontainer.compose.loader import LoadOptions
    from opencontainer.engine import events

    project = load_project(LoadOptions(files=["compose.yaml"]))
    async with Engine() as engine:
        result = await engine.up(project, wait=True)      # all started (and healthy)
        async for event in engine.events(events.HealthChanged, events.Exited):
            print(event.to_dict())
            break
        await engine.down(project)

``Engine.up`` runs the project's supervisor *in this process* (like ``up --foreground``): the
containers live as long as the ``async with`` block. The CLI's detached ``up`` runs the same
engine inside ``opencontainer supervise``. One project can be supervised by one process at a
time: the engine holds the project's ``lock`` (flock) while it supervises it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs
import structlog
from anyio.abc import TaskGroup

from ..paths import Paths, atomic_write, file_lock, project_state_dir
from . import events as ev
from .bus import EventBus
from .model import ProjectModel, from_compose
from .runner import ProotRunner, Runner, ShellRunner
from .state import ContainerState, ProjectState, register_project
from .supervisor import Supervisor, UpOptions, UpResult

log = structlog.get_logger()


def to_model(project: Any, env: Mapping[str, str] | None = None) -> ProjectModel:
    """A compose ``Project`` (or a :class:`ProjectModel`) as the engine's model."""
    if isinstance(project, ProjectModel):
        if project.state_dir:
            return project
        sd = project_state_dir(Path(project.working_dir), env)
        return attrs.evolve(project, state_dir=str(sd))
    model = from_compose(project)
    sd = project_state_dir(Path(model.working_dir), env)
    return attrs.evolve(model, state_dir=str(sd))


def default_runner(paths: Paths, env: Mapping[str, str], bus: EventBus,
                   pull_policy: str = "missing") -> Runner:
    if env.get("OPENCONTAINER_RUNNER") == "shell":
        return ShellRunner()
    return ProotRunner(paths=paths, env=dict(env), bus=bus, pull_policy=pull_policy)


class Engine:
    """Supervises compose projects in this process; see the module docstring."""

    def __init__(
        self,
        paths: Paths | None = None,
        *,
        env: Mapping[str, str] | None = None,
        runner: Runner | None = None,
        plugins: bool = True,
        plugin_dirs: tuple[Path, ...] = (),
        pull_policy: str = "missing",
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.paths = paths or Paths.from_env(self.env)
        self.bus = EventBus()
        self.runner = runner or default_runner(self.paths, self.env, self.bus, pull_policy)
        self._plugins = plugins and self.env.get("OPENCONTAINER_DISABLE_PLUGINS") not in (
            "1", "true", "yes")
        self._plugin_dirs = plugin_dirs
        self._supervisors: dict[str, Supervisor] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self.plugin_host: Any = None

    async def __aenter__(self) -> Engine:
        self._stack = contextlib.AsyncExitStack()
        await self._stack.__aenter__()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        if self._plugins:
            from .plugins import PluginHost, discover

            host = PluginHost(bus=self.bus, plugins=discover(self.env, self._plugin_dirs))
            self.plugin_host = host
            await self._tg.start(host.run)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._stack is not None and self._tg is not None
        if self.plugin_host is not None:
            with anyio.CancelScope(shield=True):
                await self.plugin_host.drain(timeout=1.0)
        self._tg.cancel_scope.cancel()
        await self._stack.__aexit__(None, None, None)

    # -- projects ---------------------------------------------------------------------------
    def supervisor(self, name: str) -> Supervisor | None:
        return self._supervisors.get(name)

    def port_map_supported(self) -> bool:
        if isinstance(self.runner, ProotRunner):
            return bool(self.runner.caps().port_map)
        return False

    def low_port_shift(self) -> bool:
        if isinstance(self.runner, ProotRunner):
            return bool(self.runner.caps().shifts_low_ports())
        return False

    async def open(self, project: Any, *, adopt: bool = True) -> Supervisor:
        """The supervisor of ``project`` (created, locked and cleaned up on first use)."""
        model = to_model(project, self.env)
        sup = self._supervisors.get(model.name)
        if sup is not None:
            sup.set_project(model)
            self._save(model, sup.state)
            return sup
        assert self._stack is not None
        state = ProjectState(Path(model.state_dir), self.paths.runtime)
        state.root.mkdir(parents=True, exist_ok=True)
        self._stack.enter_context(file_lock(state.lock_file, blocking=False))
        sup = Supervisor(project=model, state=state, runner=self.runner, bus=self.bus,
                         port_map_supported=self.port_map_supported(),
                         low_port_shift=self.low_port_shift())
        await self._stack.enter_async_context(sup)
        if adopt:
            cleaned = sup.adopt_leftovers()
            if cleaned:
                log.warning("killed processes left by a previous supervisor", containers=cleaned)
        self._save(model, state)
        self._supervisors[model.name] = sup
        return sup

    def _save(self, model: ProjectModel, state: ProjectState) -> None:
        atomic_write(state.project_json, model.to_json())
        with contextlib.suppress(OSError):
            register_project(self.paths, model.name, state.root, model.working_dir,
                             list(model.compose_files))

    async def up(self, project: Any, options: UpOptions | None = None,
                 **kwargs: Any) -> UpResult:
        """Create and start the project's services; returns when they are started
        (healthy too with ``wait=True``)."""
        opts = options or UpOptions(**kwargs)
        sup = await self.open(project)
        return await sup.up(opts)

    async def down(self, project: Any, *, timeout: float | None = None, volumes: bool = False,
                   remove_orphans: bool = False) -> list[str]:
        sup = await self.open(project)
        return await sup.down(timeout=timeout, volumes=volumes, remove_orphans=remove_orphans)

    def ps(self, project: Any) -> list[ContainerState]:
        name = project if isinstance(project, str) else to_model(project, self.env).name
        sup = self._supervisors.get(name)
        return sup.ps() if sup else []

    async def events(self, *classes: type[ev.Event],
                     buffer: int = 1024) -> AsyncIterator[ev.Event]:
        """A lossy stream of events (all of them, or instances of ``classes``)."""
        async with self.bus.subscribe(*classes, name="events", lossy=True,
                                      buffer=buffer) as stream:
            async for event in stream:
                yield event
