"""The engine facade, used by the CLI and by embedders (see docs/embedding.md).

::

    from opencontainer import Engine, LoadOptions, UpOptions, events, load_project

    project = load_project(LoadOptions(files=("compose.yaml",)))
    async with Engine() as engine:
        result = await engine.up(project, UpOptions(wait=True))  # started (and healthy)
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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, overload

import anyio
import attrs
from anyio.abc import TaskGroup, TaskStatus

from ..logs import logger
from ..paths import Paths, atomic_write, file_lock
from . import events as ev
from .bus import EventBus
from .model import ProjectModel
from .netholder import NetHolder
from .network import NetworkChoice, choose_network
from .runner import ProotRunner, Runner, ShellRunner
from .state import ContainerState, ProjectState, register_project
from .supervisor import Supervisor, UpOptions, UpResult

if TYPE_CHECKING:
    from ..compose.model import Project
    from .plugins import PluginHost


def to_model(project: Project | ProjectModel,
             env: Mapping[str, str] | None = None) -> ProjectModel:
    """:func:`.adapter.to_model`, imported on first use: the adapter imports the compose
    loader (jsonschema, ruamel.yaml: ~70 ms), which an engine given a ready
    :class:`ProjectModel` (a standalone container, the detached supervisor) never needs."""
    if isinstance(project, ProjectModel) and project.state_dir:
        return project
    from .adapter import to_model as convert

    return convert(project, env)

log = logger()


E = TypeVar("E", bound=ev.Event)


@attrs.frozen(kw_only=True)
class DownOptions:
    """What :meth:`Engine.down` does besides stopping and removing the containers.

    ``timeout``: seconds of grace after the stop signal (default: each service's
    ``stop_grace_period``); ``volumes``: remove the project's named volumes too;
    ``remove_orphans``: also remove containers of services no longer in the project."""

    timeout: float | None = None
    volumes: bool = False
    remove_orphans: bool = False


@attrs.frozen(kw_only=True)
class ContainerSnapshot:
    """One container as :meth:`Engine.ps` saw it: a copy, not updated afterwards.

    ``status``: created | starting | running | restarting | stopping | exited; ``health``:
    "" (no healthcheck) | starting | healthy | unhealthy; ``ports``: (host_ip, published,
    target, protocol) of each published port; times are Unix timestamps."""

    name: str
    service: str
    number: int
    project: str
    status: str
    health: str
    exit_code: int | None
    pid: int | None
    image: str
    command: tuple[str, ...]
    created_at: float
    started_at: float | None
    finished_at: float | None
    restart_count: int
    ports: tuple[tuple[str, int, int, str], ...]

    @classmethod
    def of(cls, st: ContainerState) -> ContainerSnapshot:
        """A snapshot of a container's live state."""
        return cls(
            name=st.name, service=st.service, number=st.number, project=st.project,
            status=st.status, health=st.health, exit_code=st.exit_code, pid=st.pid,
            image=st.image, command=tuple(st.command), created_at=st.created_at,
            started_at=st.started_at, finished_at=st.finished_at,
            restart_count=st.restart_count,
            ports=tuple((str(ip), int(pub), int(tgt), str(proto))
                        for ip, pub, tgt, proto in st.publishers),
        )

    @property
    def running(self) -> bool:
        """Its process is there (running, starting or stopping)."""
        return self.status in ("running", "starting", "stopping")


def default_runner(paths: Paths, env: Mapping[str, str], bus: EventBus,
                   pull_policy: str = "missing") -> Runner:
    """Real containers under proot, or (``OPENCONTAINER_RUNNER=shell``, for tests) shell
    scripts on the host."""
    if env.get("OPENCONTAINER_RUNNER") == "shell":
        return ShellRunner()
    return ProotRunner(paths=paths, env=dict(env), bus=bus, pull_policy=pull_policy)


class Engine:
    """Supervises compose projects in this process; use it as ``async with Engine() as e``.

    ``paths``: where images and state live (default: from ``env``, i.e. ``OPENCONTAINER_HOME``
    or the XDG directories); ``env``: the environment to read settings from (default:
    ``os.environ``); ``runner``: what runs containers (default: proot); ``plugins``: load the
    plugins named by ``plugin_dirs`` / ``OPENCONTAINER_PLUGIN_DIR`` and the
    ``opencontainer.plugins`` entry points; ``pull_policy``: always | missing | never.

    Leaving the ``async with`` block stops supervising: the containers of the projects this
    engine brought up stop with it (call :meth:`down` first to remove them)."""

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
        self._network: NetworkChoice | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self.plugin_host: PluginHost | None = None
        # a private network already up for a new project (the engine service's, kept ready
        # off the start path): see Supervisor.spare_net
        self.spare_network: Callable[[NetworkChoice], NetHolder | None] | None = None
        # the engine service's memo of where plugins may be declared (plugins.discover)
        self.plugin_memo: dict[tuple[str, str], tuple[int, bool]] | None = None

    async def __aenter__(self) -> Engine:
        self._stack = contextlib.AsyncExitStack()
        await self._stack.__aenter__()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        if self._plugins:
            from .plugins import PluginHost, discover

            host = PluginHost(bus=self.bus, plugins=discover(self.env, self._plugin_dirs,
                                                                 memo=self.plugin_memo))
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
        """The supervisor of the project called ``name``, if this engine has opened it."""
        return self._supervisors.get(name)

    def port_map_supported(self, project: ProjectModel | None = None) -> bool:
        """The proot in use maps ports itself (``-p``), so no relay is needed. Not when new
        containers may run on the native backend (no proot, so no ``-p``): their published
        ports are relayed, and so are those of the proot containers beside them; unless
        ``project`` has a container port below 1024, which only proot's port map can give
        unprivileged: then ``auto`` runs the project under proot (runner.py _proot_needs).
        OPENCONTAINER_RUNTIME=native refuses such a port in one sentence."""
        if isinstance(self.runner, ProotRunner):
            from ..errors import ContainerError
            from ..runtime import backend

            mode = backend.mode_from_env(self.env)
            # the other conditions first: the user namespace probe only where they hold
            if mode != "proot" and backend.native_possible("", self.env, userns=True)[0] \
                    and backend.native_possible("", self.env, userns=self._userns())[0]:
                choice = self.network_choice()
                low = _low_ports(project, host_only=choice is not None and choice.private)
                if low and mode == "native" and os.geteuid() != 0:
                    port, svc = low[0]
                    raise ContainerError(
                        f"service {svc!r} uses container port {port}, which the native "
                        "backend cannot bind in the host's network (below 1024): publish a "
                        "port of 1024 or more, or use OPENCONTAINER_RUNTIME=auto or proot.")
                if not low:
                    return False
            return bool(self.runner.caps().port_map)
        return False

    def low_port_shift(self) -> bool:
        """Published ports below 1024 are shifted (proot's port mapping cannot bind them)."""
        if isinstance(self.runner, ProotRunner):
            return bool(self.runner.caps().shifts_low_ports())
        return False

    def network_choice(self) -> NetworkChoice | None:
        """How this engine's containers are networked (engine/network.py): a private network
        per project where it can work, for runners that run containers (not host processes)."""
        if not getattr(self.runner, "private_networks", isinstance(self.runner, ProotRunner)):
            return None
        if self._network is None:
            self._network = _with_sub(choose_network(self.env, userns=self._userns()),
                                      self.env)
        return self._network

    def _userns(self) -> bool | None:
        """Whether user namespaces work, from the runner's probe (None: probe where asked)."""
        probe = getattr(self.runner, "userns_works", None)
        return bool(probe()) if probe is not None else None

    async def open(self, project: Project | ProjectModel, *, adopt: bool = True,
                   exclusive: bool = True) -> Supervisor:
        """The supervisor of ``project`` (created, locked and cleaned up on first use; its
        model is updated when it is already open). ``adopt``: kill the processes a crashed
        predecessor left behind. ``exclusive=False``: a separate supervisor that neither takes
        the project's lock nor adopts anything, for containers outside the project's plan
        while another process may supervise the project (``compose run`` one-offs)."""
        model = to_model(project, self.env)
        sup = self._supervisors.get(model.name) if exclusive else None
        if sup is not None:
            sup.set_project(model)
            self._save(model, sup.state)
            return sup
        assert self._tg is not None, "use the engine as 'async with Engine() as engine'"
        state = ProjectState(Path(model.state_dir), self.paths.runtime)
        state.root.mkdir(parents=True, exist_ok=True)
        sup = Supervisor(project=model, state=state, runner=self.runner, bus=self.bus,
                         port_map_supported=self.port_map_supported(model),
                         low_port_shift=self.low_port_shift(), exclusive=exclusive,
                         network=self.network_choice(), spare_net=self.spare_network)
        # in a task of the engine's own, not in the caller's cancel scopes: an embedder may
        # call up() from inside a task group that it leaves before the engine
        await self._tg.start(self._keep, sup, exclusive)
        if not exclusive:
            return sup
        if adopt:
            cleaned = sup.adopt_leftovers()
            if cleaned:
                log.warning("killed processes left by a previous supervisor", containers=cleaned)
        self._save(model, state)
        self._supervisors[model.name] = sup
        return sup

    @staticmethod
    async def _keep(sup: Supervisor, exclusive: bool, *, task_status: TaskStatus[None]) -> None:
        """Hold the project's lock (``exclusive``) and its supervisor until the engine
        closes."""
        with file_lock(sup.state.lock_file, blocking=False) if exclusive else \
                contextlib.nullcontext():
            async with sup:
                task_status.started()
                await anyio.sleep_forever()

    def _save(self, model: ProjectModel, state: ProjectState) -> None:
        # a standalone --rm container's project goes with it: atomic for readers, not fsynced
        transient = model.standalone and bool(model.services) and all(
            s.auto_remove for s in model.services.values())
        atomic_write(state.project_json, model.to_json(), durable=not transient)
        if model.standalone:  # found in paths.containers, not in the project index
            return
        with contextlib.suppress(OSError):
            register_project(self.paths, model.name, state.root, model.working_dir,
                             list(model.compose_files))

    async def up(self, project: Project | ProjectModel,
                 options: UpOptions | None = None) -> UpResult:
        """Create and start the project's services (pulling images as the pull policy says);
        returns when they are started, and healthy too with ``UpOptions(wait=True)``. A
        service that fails is reported in the result (``ok``, ``errors``), not raised."""
        sup = await self.open(project)
        return await sup.up(options or UpOptions())

    async def down(self, project: Project | ProjectModel,
                   options: DownOptions | None = None) -> list[str]:
        """Stop the project's containers (in reverse dependency order) and remove them;
        returns the names of what was removed."""
        opts = options or DownOptions()
        sup = await self.open(project)
        return await sup.down(timeout=opts.timeout, volumes=opts.volumes,
                              remove_orphans=opts.remove_orphans)

    def ps(self, project: Project | ProjectModel | str) -> list[ContainerSnapshot]:
        """Snapshots of the containers of ``project`` (or of the project of that name) that
        this engine supervises; empty when it has not opened the project."""
        name = project if isinstance(project, str) else project.name
        sup = self._supervisors.get(name)
        return [ContainerSnapshot.of(st) for st in sup.ps()] if sup else []

    @overload
    def subscribe(self, *, buffer: int = 1024,
                  name: str = "embedder") -> AbstractAsyncContextManager[AsyncIterator[ev.Event]]:
        ...

    @overload
    def subscribe(self, *classes: type[E], buffer: int = 1024,
                  name: str = "embedder") -> AbstractAsyncContextManager[AsyncIterator[E]]: ...

    def subscribe(self, *classes: type[ev.Event], buffer: int = 1024, name: str = "embedder",
                  ) -> AbstractAsyncContextManager[AsyncIterator[ev.Event]]:
        """``async with engine.subscribe(Exited) as exits: async for e in exits: ...``: the
        events (instances of ``classes``, default all) published while the block is open,
        in order. Subscribe before :meth:`up` to see everything it does. The stream is
        lossy: when the consumer falls more than ``buffer`` events behind, the excess is
        dropped and counted (one :class:`~opencontainer.engine.events.EventsDropped`)."""
        return self._subscribe(classes, buffer, name)

    @contextlib.asynccontextmanager
    async def _subscribe(self, classes: tuple[type[ev.Event], ...], buffer: int,
                         name: str) -> AsyncIterator[AsyncIterator[ev.Event]]:
        async with self.bus.subscribe(*classes, name=name, lossy=True,
                                      buffer=buffer) as stream:
            yield stream

    @overload
    def events(self, *, buffer: int = 1024) -> AsyncIterator[ev.Event]: ...

    @overload
    def events(self, *classes: type[E], buffer: int = 1024) -> AsyncIterator[E]: ...

    async def events(self, *classes: type[ev.Event],
                     buffer: int = 1024) -> AsyncIterator[ev.Event]:
        """Like :meth:`subscribe` as an iterator: it subscribes when first iterated, so
        events published before that are not seen."""
        async with self.subscribe(*classes, buffer=buffer, name="events") as stream:
            async for event in stream:
                yield event


__all__ = ["ContainerSnapshot", "DownOptions", "Engine", "UpOptions", "UpResult", "to_model"]


def _with_sub(choice: NetworkChoice, env: Mapping[str, str]) -> NetworkChoice:
    """``choice`` with the subordinate ids its holders map, when native-backend containers
    may use them (runtime/idmap.py choose)."""
    if not choice.private:
        return choice
    from ..errors import ContainerError
    from ..runtime import backend, idmap

    try:
        if backend.mode_from_env(env) == "proot" or idmap.mode_from_env(env) == "single":
            return choice
    except ContainerError:
        return choice
    sub = idmap.subordinate_range()
    if sub is None:
        return choice
    return attrs.evolve(choice, sub=f"{sub.uid_start}:{sub.gid_start}:{sub.count}")


def _low_ports(project: ProjectModel | None, *,
               host_only: bool = False) -> list[tuple[int, str]]:
    """(container port below 1024, service) of ``project``'s port list (``host_only``: of
    its services in the host's network; a private network binds any port)."""
    if project is None:
        return []
    return sorted((p.target, name) for name, svc in project.services.items()
                  for p in svc.ports if p.target < 1024
                  and (not host_only or svc.network_mode == "host"))
