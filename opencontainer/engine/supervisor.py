"""The supervisor: one anyio task group per project, one supervising task per container.

Every container — compose services, ``compose run`` one-offs, standalone ``run``/``create``
(a project of one, see :mod:`.standalone`) — is created, started, supervised, logged,
health-checked, restarted and removed here. Its status changes only through the transition
table of :mod:`.lifecycle`: :meth:`Container.transition` applies it, writes ``state.json``
atomically and publishes exactly one event. Health is a separate field
(``starting/healthy/unhealthy``) driven by :mod:`.health`.

Each container's supervising task (started with ``tg.start()``) holds a nested task group with
the process wait, the log pumps (and, when a terminal is attached, the copy of its input) and
the health loop; it decides its own restarts inline (:mod:`.restart`) and only reports them on
the bus. A container with ``auto_remove`` (``run --rm``) is removed when it exits for good.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal as _signal
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, BinaryIO

import anyio
import anyio.to_thread
import attrs
from anyio.abc import TaskGroup, TaskStatus

from ..errors import ContainerError, OpenContainerError
from ..logs import logger
from ..runtime.process import parse_signal
from ..runtime.relay import check_port_free, serve_relay
from . import events as ev
from .bus import EventBus
from .execute import walk
from .health import HEALTHY, UNHEALTHY, HealthState, apply_probe, probe_argv, probe_interval
from .lifecycle import Status, TransitionError, recovered, transition
from .model import HealthSpec, ProjectModel, ServiceConfig, as_dict
from .netholder import NetHolder, dns_for, join_existing, wait_gone
from .network import NetworkChoice, PortPlan, forwards, hosts_file, plan_ports, plan_private
from .planner import (
    Action,
    Observed,
    Plan,
    PlanOptions,
    Step,
    Wait,
    build_plan,
    check_graph,
    orphans,
    start_plan,
    teardown,
)
from .restart import next_delay, should_restart
from .runner import Attachment, ContainerContext, Runner, SupervisedProcess
from .standalone import new_id
from .state import ContainerState, ProjectState, kill_leftovers

log = logger()

MAX_LINE = 16 * 1024
_PROOT_SIGNAL = re.compile(r"proot info: pid (\d+): terminated with signal (\d+)")
DRAIN_AFTER_EXIT = 0.5


@attrs.define(eq=False)
class Container:
    """One container and its supervising task."""

    ctx: ContainerContext
    runner: Runner
    bus: EventBus
    state: ContainerState
    healthcheck: HealthSpec | None = None
    attach: Attachment | None = None
    hold: bool = False  # being restarted: not auto-removed meanwhile
    handle: SupervisedProcess | None = None
    health: HealthState = attrs.field(factory=HealthState)
    manually_stopped: bool = False
    _done: anyio.Event = attrs.field(factory=anyio.Event)
    _backoff: anyio.CancelScope | None = None
    _running_task: bool = False
    _log: BinaryIO | None = None
    _log_lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    _main_pid: int | None = None
    _term_signals: dict[int, int] = attrs.field(factory=dict)
    _sent_signal: int | None = None

    @property
    def name(self) -> str:
        return self.ctx.name

    @property
    def service(self) -> str:
        return self.ctx.service.name

    @property
    def project(self) -> str:
        return self.ctx.project.name

    @property
    def active(self) -> bool:
        return self._running_task

    def _base(self) -> dict[str, Any]:
        return {"project": self.project, "service": self.service, "container": self.name}

    def persist(self) -> None:
        self.state.health = self.health.status if self.healthcheck and self.state.status in (
            "running", "starting") else ("" if not self.healthcheck else self.state.health)
        self.state.health_log = [attrs.asdict(r) for r in self.health.log]
        self.ctx.state.write_container(self.state, durable=not self.ctx.service.auto_remove)

    async def transition(self, new: Status | str, **fields: Any) -> None:
        """Apply the lifecycle table (:func:`.lifecycle.transition`), persist, publish."""
        new = Status(new)
        transition(self.state, new, **fields)
        event: ev.ContainerEvent
        if new is Status.STARTING:
            event = ev.Starting(**self._base())
        elif new is Status.RUNNING and fields.get("unpaused"):
            event = ev.Unpaused(**self._base())
        elif new is Status.RUNNING:
            event = ev.Started(**self._base(), pid=int(fields["pid"]))
        elif new is Status.PAUSED:
            event = ev.Paused(**self._base())
        elif new is Status.STOPPING:
            event = ev.Stopping(**self._base(), signal=str(fields.get("signal", "SIGTERM")))
        elif new is Status.EXITED:
            event = ev.Exited(**self._base(), exit_code=int(fields["exit_code"]),
                              restarting=bool(fields.get("restarting", False)))
        elif new is Status.RESTARTING:
            event = ev.RestartScheduled(**self._base(), delay=float(fields["delay"]),
                                        attempt=int(fields["attempt"]))
        else:  # removing / dead: persisted; Removed is published once the folder is gone
            self.persist()
            return
        self.persist()
        await self.bus.publish(event)

    # -- the supervising task ------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the container and supervise it until it exits for good."""
        self._done = anyio.Event()
        self._running_task = True
        self.manually_stopped = False
        reported = False
        delay = 0.0
        try:
            while True:
                await self.transition("starting")
                try:
                    handle = await self.runner.start(self.ctx, self.attach)
                except (OSError, OpenContainerError) as exc:
                    code = exc.exit_code if isinstance(exc, ContainerError) and \
                        exc.exit_code in (126, 127) else 127
                    reason = str(exc).rstrip(".")
                    await self.transition("exited", exit_code=code, error=reason)
                    if not reported:
                        raise ContainerError(
                            f"container {self.name} failed to start: {reason}.",
                            exit_code=code) from exc
                    break
                self.handle = handle
                self.health = HealthState()
                await self.transition("running", pid=handle.pid, pid_start=handle.pid_start)
                if self.healthcheck and not self.healthcheck.disabled:
                    await self._set_health(HealthState(), force=True)
                if not reported:
                    reported = True
                    task_status.started()
                if self.manually_stopped:
                    handle.signal(parse_signal(self.ctx.service.stop_signal))
                code = await self._supervise(handle)
                started = self.state.started_at or time.time()
                duration = time.time() - started
                self.handle = None
                again = should_restart(self.ctx.service.restart, code, self.state.restart_count,
                                       self.manually_stopped)
                await self.transition("exited", exit_code=code, restarting=again)
                if not again:
                    break
                delay = next_delay(delay, duration)
                self.state.restart_count += 1
                await self.transition("restarting", delay=delay, attempt=self.state.restart_count)
                with anyio.CancelScope() as scope:
                    self._backoff = scope
                    await anyio.sleep(delay)
                self._backoff = None
                if scope.cancel_called or self.manually_stopped:
                    await self.transition("exited", exit_code=self.state.exit_code or 0)
                    break
        finally:
            with anyio.CancelScope(shield=True):
                if self.handle is not None:
                    await self.handle.aclose()
                    self.handle = None
                    if self.state.status not in ("exited", "created"):
                        with contextlib.suppress(TransitionError):
                            await self.transition("exited", exit_code=137)
                self._close_log()
            self._running_task = False
            self._done.set()

    async def _supervise(self, handle: SupervisedProcess) -> int:
        code = 0
        drained = anyio.Event()
        pending = [2]

        async def pump(stream: AsyncIterable[bytes] | None, name: str) -> None:
            try:
                if stream is not None:
                    await self._pump(stream, name)
            finally:
                pending[0] -= 1
                if pending[0] == 0:
                    drained.set()

        self._main_pid = None
        self._term_signals = {}
        self._sent_signal = None

        async def find_main() -> None:
            self._main_pid = await handle.wait_tracee()

        try:
            async with anyio.create_task_group() as tg:
                if handle.tty_master is not None:  # one stream: the terminal's
                    pending[0] = 1
                    tg.start_soon(pump, read_fd(handle.tty_master), "stdout")
                    if self.attach is not None and self.attach.stdin is not None and \
                            self.ctx.service.stdin_open:
                        tg.start_soon(copy_to_terminal, self.attach.stdin, handle.tty_master)
                else:
                    tg.start_soon(pump, handle.stdout, "stdout")
                    tg.start_soon(pump, handle.stderr, "stderr")
                tg.start_soon(find_main)
                if self.healthcheck and not self.healthcheck.disabled:
                    tg.start_soon(self._health_loop, self.healthcheck)
                code = await handle.wait()  # the runtime's: our signals' deaths are 128 + n
                with anyio.move_on_after(DRAIN_AFTER_EXIT):
                    await drained.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                # reaped even when cancelled; whatever the main process left behind dies too
                await handle.aclose()
        return self._docker_exit_code(code)

    def _docker_exit_code(self, code: int) -> int:
        """The runtime already reports the signals we sent as 128 + n; a 255 left is proot's
        number for a tracee killed by someone else (5.1 says which on stderr): 128 + that."""
        if code != 255:
            return code
        if self._sent_signal is not None and not self._term_signals:
            return 128 + self._sent_signal
        if not self._term_signals:
            return code
        if self._main_pid is not None and self._main_pid in self._term_signals:
            return 128 + self._term_signals[self._main_pid]
        if len(self._term_signals) == 1:
            return 128 + next(iter(self._term_signals.values()))
        return code

    async def _pump(self, stream: AsyncIterable[bytes], name: str) -> None:
        buf = b""
        echo = None
        if self.attach is not None:
            echo = self.attach.stderr if name == "stderr" else self.attach.stdout
        async for chunk in stream:
            if echo is not None:  # the attached terminal sees bytes as they come
                with contextlib.suppress(OSError, ValueError):
                    echo.write(chunk)
                    echo.flush()
            buf += chunk
            lines: list[bytes] = []
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE:
                        lines.append(buf)
                        buf = b""
                    break
                lines.append(buf[:nl])
                buf = buf[nl + 1 :]
            await self._lines(name, lines)
        if buf:
            await self._lines(name, [buf])

    async def _lines(self, stream: str, raws: Sequence[bytes]) -> None:
        """Append the lines of one read to ``log.jsonl`` (one write, in a worker thread),
        then publish them as :class:`LogLine` events."""
        if not raws:
            return
        texts = [raw.decode("utf-8", "replace").rstrip("\r") for raw in raws]
        if stream == "stderr":
            for text in texts:
                m = _PROOT_SIGNAL.match(text) if text.startswith("proot info: pid ") else None
                if m:
                    self._term_signals[int(m.group(1))] = int(m.group(2))
        now = time.time()
        blob = b"".join(json.dumps({"t": now, "s": stream, "l": text},
                                   ensure_ascii=False).encode() + b"\n" for text in texts)
        async with self._log_lock:  # stdout's and stderr's pumps share the file
            # not abandoned when cancelled: the line is written (and the file kept) whatever
            await anyio.to_thread.run_sync(self._append_log, blob)
        for text in texts:
            await self.bus.publish(ev.LogLine(**self._base(), stream=stream, text=text, at=now))

    def _append_log(self, blob: bytes) -> None:
        if self._log is None:
            self.ctx.dir.mkdir(parents=True, exist_ok=True)
            self._log = open(self.ctx.state.log_file(self.name), "ab")  # noqa: SIM115
        self._log.write(blob)
        self._log.flush()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _set_health(self, new: HealthState, *, force: bool = False) -> None:
        old = self.health
        self.health = new
        self.state.health = new.status
        self.persist()
        if force or new.status != old.status:
            output = new.log[-1].output if new.log else ""
            await self.bus.publish(ev.HealthChanged(**self._base(), status=new.status,
                                                    output=output))

    async def _health_loop(self, spec: HealthSpec) -> None:
        argv = probe_argv(spec.test)
        if argv is None:
            return
        started = self.state.started_at or time.time()
        while True:
            await anyio.sleep(probe_interval(self.health, spec, started, time.time()))
            result = await self.runner.probe(self.ctx, argv, spec.timeout)
            await self._set_health(apply_probe(self.health, result, spec, started))

    # -- commands ------------------------------------------------------------------------------
    def _signal_every(self, signo: int) -> None:
        """``signo`` to every process of the container: its tracees first, proot last
        (SIGCONT: proot first, then the tracees)."""
        from ..runtime.procfs import kill_quietly

        if self.handle is None:
            return
        pids = self.handle.all_pids()
        for p in (reversed(pids) if signo == _signal.SIGCONT else pids):
            kill_quietly(p, signo)

    async def pause(self) -> None:
        """``docker pause``: SIGSTOP to every process of the container."""
        if self.state.status == "paused":
            raise ContainerError(f"container {self.name} is already paused.")
        if self.state.status != "running" or self.handle is None:
            raise ContainerError(f"container {self.name} is not running.")
        self._signal_every(_signal.SIGSTOP)
        await self.transition(Status.PAUSED)

    async def unpause(self) -> None:
        """``docker unpause``: SIGCONT to every process of the paused container."""
        if self.state.status != "paused":
            raise ContainerError(f"container {self.name} is not paused.")
        self._signal_every(_signal.SIGCONT)
        await self.transition(Status.RUNNING, unpaused=True)

    async def _wake(self) -> None:
        """A paused container that is stopped or killed is continued first (its stop signal
        must be seen; docker does the same)."""
        if self.state.status == "paused":
            await self.unpause()

    async def stop(self, timeout: float | None = None, sig: str | None = None) -> None:
        """Docker's stop: the stop signal (or ``sig``), ``timeout`` seconds of grace, then
        SIGKILL."""
        self.manually_stopped = True
        await self._wake()
        if not self._running_task:
            return
        if self.state.status == "restarting" and self._backoff is not None:
            self._backoff.cancel()
        elif self.handle is not None and self.state.status in ("running", "starting"):
            sig = sig or self.ctx.service.stop_signal
            await self.transition("stopping", signal=sig)
            self._sent_signal = parse_signal(sig)
            self.handle.signal(self._sent_signal)
        grace = self.ctx.service.stop_grace_period if timeout is None else timeout
        with anyio.move_on_after(grace):
            await self._done.wait()
        if not self._done.is_set():
            if self.handle is not None:
                self._sent_signal = _signal.SIGKILL
                self.handle.kill_all()
            await self._done.wait()
        await self.bus.publish(ev.Stopped(**self._base()))

    async def kill(self, sig: str | int = "SIGKILL") -> None:
        self.manually_stopped = True
        if parse_signal(sig) != _signal.SIGKILL:
            await self._wake()
        if self.state.status == "restarting" and self._backoff is not None:
            self._backoff.cancel()
        if self.handle is not None:
            self._sent_signal = parse_signal(sig)
            await self.handle.kill(self._sent_signal)  # SIGKILL: every process of it

    async def wait_done(self) -> None:
        await self._done.wait()


@attrs.frozen(kw_only=True)
class UpOptions:
    """What ``up`` does (``docker compose up``'s options).

    ``services``: only these (and, unless ``no_deps``, what they depend on); default all;
    ``force_recreate`` / ``no_recreate``: recreate containers even when their configuration
    did not change / never; ``remove_orphans``: remove containers of services no longer in
    the project; ``scale``: service -> number of containers; ``wait``: return only when every
    service is running and healthy (a failure otherwise), within ``wait_timeout`` seconds;
    ``timeout``: stop grace for recreated containers; ``start``: false to create only."""

    services: tuple[str, ...] = ()
    force_recreate: bool = False
    no_recreate: bool = False
    no_deps: bool = False
    remove_orphans: bool = False
    scale: Mapping[str, int] = attrs.field(factory=dict, converter=as_dict, hash=False)
    wait: bool = False
    wait_timeout: float | None = None
    timeout: float | None = None  # stop timeout for recreate
    start: bool = True

    def plan_options(self) -> PlanOptions:
        return PlanOptions(force_recreate=self.force_recreate, no_recreate=self.no_recreate,
                           remove_orphans=self.remove_orphans, services=self.services,
                           no_deps=self.no_deps, scale=self.scale)


@attrs.define(kw_only=True)
class UpResult:
    """What ``up`` did: ``ok`` (false when a service failed to start or to get healthy),
    ``errors`` and ``warnings`` (one sentence each) and the planned ``actions``."""

    ok: bool = True
    errors: list[str] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    actions: list[Action] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings,
                "actions": [attrs.asdict(a) for a in self.actions]}


_OK = "ok"


async def read_fd(fd: int, size: int = 65536) -> AsyncIterator[bytes]:
    """What a file descriptor (a pty's master end) gives, until its end or an error (EIO:
    the terminal's other side is closed)."""
    while True:
        try:
            await anyio.wait_readable(fd)
            data = os.read(fd, size)
        except (OSError, anyio.ClosedResourceError):
            return
        if not data:
            return
        yield data


async def copy_to_terminal(src: int, master: int) -> None:
    """An attached terminal's input to the container's pty; its end becomes ^D."""
    async for data in read_fd(src):
        with contextlib.suppress(OSError):
            os.write(master, data)
    with contextlib.suppress(OSError):
        os.write(master, b"\x04")


class _Forward:
    """Report a cancel scope through a task status when the inner task has started."""

    def __init__(self, status: TaskStatus[anyio.CancelScope], scope: anyio.CancelScope) -> None:
        self.status = status
        self.scope = scope

    def started(self, value: object = None) -> None:
        self.status.started(self.scope)


@attrs.define(eq=False)
class Supervisor:
    """All containers of one project, supervised in one task group.

    Use as an async context manager; leaving it kills whatever still runs.
    """

    project: ProjectModel
    state: ProjectState
    runner: Runner
    bus: EventBus
    port_map_supported: bool = False
    low_port_shift: bool = False  # Termux's proot -p: ports < 1024 bound 2000 higher
    exclusive: bool = True  # False: a second supervisor of the project (one-offs only)
    # the network model (engine/network.py choose_network); None: the host's (shared loopback)
    network: NetworkChoice | None = None
    # where a private network already up can come from (the engine service keeps one ready,
    # cli/engined.py): called with ``network``, it hands over a running holder or None
    spare_net: Callable[[NetworkChoice], NetHolder | None] | None = None
    containers: dict[str, Container] = attrs.field(factory=dict)
    port_plan: PortPlan = attrs.field(factory=PortPlan)
    _net: NetHolder | None = None
    _net_joined: tuple[str, str, tuple[str, ...]] | None = None  # someone else's: pidfile, gw
    # a network start under way beside the container's creation (create_container), and
    # what it raised: the next start of a container waits for it (_net_settled)
    _net_pending: anyio.Event | None = None
    _net_error: Exception | None = None
    _tg: TaskGroup | None = None
    _relays: dict[tuple[str, int, int], anyio.CancelScope] = attrs.field(factory=dict)
    _exit_stack: contextlib.AsyncExitStack | None = None
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    async def __aenter__(self) -> Supervisor:
        self._exit_stack = contextlib.AsyncExitStack()
        self._tg = await self._exit_stack.enter_async_context(anyio.create_task_group())
        await self._tg.start(self._auto_remove)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._exit_stack is not None and self._tg is not None
        with anyio.CancelScope(shield=True):
            for c in self.containers.values():
                if c.handle is not None:
                    c.handle.kill_all()
            if self._net_pending is not None:  # a holder half-started is stopped below
                await self._net_pending.wait()
        self._tg.cancel_scope.cancel()
        try:
            await self._exit_stack.__aexit__(None, None, None)
        finally:  # also when that raises the cancellation of the engine's task group
            if self._net is not None:
                with anyio.CancelScope(shield=True):
                    await self._net.stop()

    @property
    def tg(self) -> TaskGroup:
        assert self._tg is not None, "use the Supervisor as an async context manager"
        return self._tg

    # -- observing -----------------------------------------------------------------------------
    def ps(self) -> list[ContainerState]:
        return [c.state for c in self.containers.values()]

    def service_containers(self, service: str) -> list[Container]:
        return [c for c in self.containers.values() if c.service == service]

    def observed(self) -> list[Observed]:
        seen: dict[str, Observed] = {}
        for st in self.state.containers():
            if st.one_off:
                continue
            seen[st.name] = Observed(name=st.name, service=st.service, number=st.number,
                                     config_hash=st.config_hash, status=st.status)
        for c in self.containers.values():
            if c.state.one_off:
                continue
            seen[c.name] = Observed(name=c.name, service=c.service, number=c.state.number,
                                    config_hash=c.state.config_hash, status=c.state.status)
        return list(seen.values())

    def adopt_leftovers(self) -> list[str]:
        """Clean up what a crashed supervisor left: kill its process groups, mark exited.

        Processes cannot be re-adopted (their pipes died with the old supervisor), so a new
        ``up`` kills them and starts the containers again, reusing their root filesystems.
        """
        return kill_leftovers(self.state)

    # -- up ------------------------------------------------------------------------------------
    def _context(self, svc: ServiceConfig, name: str, number: int,
                 one_off: bool = False) -> ContainerContext:
        netns, gateway, dns = self._net_info() if svc.network_mode != "host" else ("", "", ())
        hosts_text = hosts_file(self.project, svc.name, name, host_gateway=gateway)
        hosts: list[tuple[str, tuple[str, ...]]] = []
        for line in hosts_text.splitlines()[2:]:
            ip, _, names = line.partition("\t")
            hosts.append((ip, tuple(names.split())))
        return ContainerContext(project=self.project, service=svc, name=name, number=number,
                                state=self.state, port_map=self.port_plan.port_map,
                                hosts=tuple(hosts), one_off=one_off, netns=netns,
                                dns=() if svc.dns else dns)

    # -- the project's network -----------------------------------------------------------------
    @property
    def private_network(self) -> bool:
        """A network namespace of the project's own (unless every service says
        ``network_mode: host``, ``run --network host``)."""
        return self.network is not None and self.network.private and any(
            s.network_mode != "host" for s in self.project.services.values())

    def _net_info(self) -> tuple[str, str, tuple[str, ...]]:
        """The network pid file, host gateway and resolvers of new containers ("" / ())."""
        if self._net is not None and (self._net.running or self._net_pending is not None):
            # a network still starting: its pid file and gateway are known in advance
            return (str(self._net.pidfile), self._net.gateway or self._net.expected_gateway(),
                    dns_for(self._net.dns()))
        if self._net_joined is not None:
            return self._net_joined
        return "", "", ()

    def _plan(self, project: ProjectModel) -> PortPlan:
        if self.private_network:
            return plan_private(project, privileged=os.geteuid() == 0)
        return plan_ports(project, port_map=self.port_map_supported,
                          privileged=os.geteuid() == 0, low_port_shift=self.low_port_shift)

    async def _ensure_network(self, only: set[int] | None = None, *,
                              background: bool = False) -> None:
        """The project's network is up and forwards the plan's published ports (a second
        supervisor joins the project's network when it is up, else makes one of its own;
        ``only``: its container's published ports, which must be free). ``background``: a
        new network whose address is known in advance (slirp4netns) starts while the caller
        goes on creating the container (~50 ms: the holder's interpreter and the forwarder);
        the container's start waits for it, and fails with its error (:meth:`_net_settled`)."""
        if not self.private_network:
            return
        await self._net_settled()
        assert self.network is not None
        wanted = forwards(self.port_plan)
        if not self.exclusive:
            joined = join_existing(self.state.root / "network.pid")
            if joined is not None:
                self._net_joined = joined
                return
        if self._net is None and self.exclusive and self.spare_net is not None and \
                not wanted:
            self._net = self.spare_net(self.network)
        if self._net is None:
            name = "network.pid" if self.exclusive else f"network-{os.getpid()}.pid"
            # a holder of the project's that is ending (that of the `create` before this
            # start, or of a dead supervisor: its stdin is closed) still has the ports
            await wait_gone(self.state.root / name)
            self._net = NetHolder(directory=self.state.root, forwarder=self.network.forwarder,
                                  binary=self.network.binary, pidfile_name=name,
                                  sub=self.network.sub)
        mine = self._net.forwards
        for proto, ip, host, _cont in wanted:
            if proto == "tcp" and not any(f[2] == host for f in mine) and (
                    only is None or host in only):
                check_port_free(ip, host)
        busy = any(c.active for c in self.containers.values())
        if background and self.exclusive and not self._net.running and \
                self._net.expected_gateway():
            self._net_pending = anyio.Event()
            self.tg.start_soon(self._net_start, self._net, wanted, busy)
            return
        await self._net.ensure(wanted, busy=busy)

    async def _net_start(self, net: NetHolder, wanted: list[tuple[str, str, int, int]],
                         busy: bool) -> None:
        pending = self._net_pending
        try:
            # cancelled when the engine closes right after the creation (`run -d`,
            # `create`, a failed pull): NetHolder._start then ends the half-started holder
            await net.ensure(wanted, busy=busy)
        except Exception as exc:  # raised where the container starts
            self._net_error = exc
        finally:
            self._net_pending = None
            if pending is not None:
                pending.set()

    async def _net_settled(self) -> None:
        """Until a network start begun in the background has ended; raises its error."""
        if self._net_pending is not None:
            await self._net_pending.wait()
        error, self._net_error = self._net_error, None
        if error is not None:
            raise error

    async def _create(self, svc: ServiceConfig, name: str, number: int, *, fresh: bool,
                      one_off: bool = False, attach: Attachment | None = None) -> Container:
        ctx = self._context(svc, name, number, one_off)
        created = await self.runner.create(ctx, fresh=fresh)
        old = None if fresh else self.state.read_container(name)
        st = ContainerState(
            name=name, service=svc.name, number=number, project=self.project.name,
            id=new_id(), config_hash=svc.config_hash(), image=created.image,
            command=list(created.command),
            publishers=[list(p) for p in self.port_plan.published.get(svc.name, ())],
            one_off=one_off,
        )
        if old is not None:
            recovered(old, st)
        c = Container(ctx=ctx, runner=self.runner, bus=self.bus, state=st,
                      healthcheck=created.healthcheck if created.healthcheck and not
                      created.healthcheck.disabled else None, attach=attach)
        c.persist()
        self.containers[name] = c
        if fresh or old is None:
            await self.bus.publish(ev.Created(project=self.project.name, service=svc.name,
                                              container=name))
        return c

    def plan_with(self, svc: ServiceConfig) -> PortPlan:
        """The project's ports with ``svc`` added; its published ports that no relay of ours
        will serve must be free now (docker's "port is already allocated", before start)."""
        plan = self._plan(attrs.evolve(self.project, services={
            **self.project.services, svc.name: svc}))
        if self.private_network:
            return plan  # checked when the forwarder takes them (_ensure_network)
        relayed = {r.listen for r in plan.relays}
        for p in svc.ports:
            if p.protocol == "tcp" and p.published and p.published not in relayed:
                check_port_free(p.host_ip, p.published)
        return plan

    async def create_container(self, svc: ServiceConfig, name: str, *, one_off: bool = False,
                               attach: Attachment | None = None) -> Container:
        """A new container of ``svc`` outside the planned services: a standalone container
        (the one service of its project) or a ``compose run`` one-off; start it with
        :meth:`start` (``names=[name]``)."""
        self.port_plan = self.plan_with(svc)
        # a second supervisor relays only its container's ports (the project's own
        # supervisor serves the others')
        await self._update_relays(None if self.exclusive else
                                  {p.published for p in svc.ports if p.published})
        published = {p.published for p in svc.ports if p.published}
        # in the background only without published ports: a holder begun for a `create` whose
        # start comes from another process would still hold them there
        await self._ensure_network(published, background=not published)
        return await self._create(svc, name, 1, fresh=True, one_off=one_off, attach=attach)

    async def _remove(self, c: Container, timeout: float | None = None) -> None:
        if c.active:
            await c.stop(timeout)
        async with c._log_lock:
            c._close_log()
        await c.transition(Status.REMOVING)
        try:
            await self.runner.remove(c.ctx)
        except OSError as exc:
            await c.transition(Status.DEAD, error=f"removal failed: {exc}")
            raise ContainerError(f"could not remove container {c.name}: {exc}.") from exc
        self.containers.pop(c.name, None)
        await self.bus.publish(ev.Removed(project=self.project.name, service=c.service,
                                          container=c.name))

    async def _auto_remove(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                           ) -> None:
        """``run --rm``: a container whose service says ``auto_remove`` is removed when it
        exits for good (not when it is restarted, or stopped for a restart)."""
        async with self.bus.subscribe(ev.Exited, name="auto-remove") as exits:
            task_status.started()
            async for e in exits:
                assert isinstance(e, ev.Exited)
                c = self.containers.get(e.container)
                if e.restarting or c is None or not c.ctx.service.auto_remove:
                    continue
                self.tg.start_soon(self._remove_when_done, c)

    async def _remove_when_done(self, c: Container) -> None:
        await c.wait_done()
        await anyio.sleep(0)  # a restart in the same request takes the container back
        if not c.active and not c.hold and self.containers.get(c.name) is c:
            with contextlib.suppress(OpenContainerError):
                await self._remove(c)

    def set_project(self, project: ProjectModel) -> None:
        self.project = project

    async def up(self, options: UpOptions | None = None) -> UpResult:
        async with self._lock:
            return await self._up(options or UpOptions())

    async def _up(self, options: UpOptions) -> UpResult:
        result = UpResult()
        project = self.project
        check_graph(project.services)
        self.port_plan = self._plan(project)
        observed = self.observed()
        graph = build_plan(project, observed,
                           attrs.evolve(options.plan_options(), start=options.start))
        result.actions = list(graph.actions)
        strays = sorted(o.name for o in orphans(project, observed))
        if strays and not options.remove_orphans:
            result.warnings.append(
                f"Found orphan containers ({', '.join(strays)}) for this project; run with "
                "--remove-orphans to clean them up.")
        try:
            await self._update_relays()
            await self._ensure_network()
        except OpenContainerError as exc:
            result.ok = False
            result.errors.append(str(exc))
            return result
        errors: list[str] = []  # containers that could not be created: nothing starts

        async def run(step: Step) -> bool:
            if step.kind == "remove":
                await self._remove_planned(step, options.timeout)
            elif step.kind == "create":
                try:
                    await self._create_planned(step)
                except OpenContainerError as exc:
                    errors.append(str(exc))
                    return False
            elif step.kind == "start":
                return await self._start_step(step, result)
            return True

        await walk(graph, run, gate=self._start_gate(result),
                   blocked=self._start_blocked(result))
        if errors:
            result.ok = False
            result.errors = errors
            return result
        if result.errors:
            result.ok = False
        services = list(dict.fromkeys(a.service for a in graph.actions if a.kind != "remove"))
        if options.wait and result.ok:
            await self._wait_ready(services, result, options.wait_timeout)
        await self.bus.publish(ev.ProjectUp(project=project.name))
        return result

    async def _remove_planned(self, step: Step, timeout: float | None) -> None:
        """A remove step of ``up``: a container of this supervisor, or one left on disk."""
        c = self.containers.get(step.container)
        if c is not None:
            await self._remove(c, timeout)
        elif self.state.read_container(step.container) is not None:
            svc = self.project.services.get(step.service) or ServiceConfig(name=step.service)
            await self.runner.remove(self._context(svc, step.container, step.number))

    async def _create_planned(self, step: Step) -> None:
        """A create step of ``up``: a container kept running, or being started, is left alone."""
        existing = self.containers.get(step.container)
        if existing is not None and (existing.active or step.action == "keep"):
            return
        await self._create(self.project.services[step.service], step.container, step.number,
                           fresh=step.fresh)

    async def _update_relays(self, only: set[int] | None = None) -> None:
        wanted = {(r.host_ip, r.listen, r.target): r for r in self.port_plan.relays
                  if only is None or r.listen in only}
        for key in list(self._relays):
            if key not in wanted:
                self._relays.pop(key).cancel()
        for key, relay in wanted.items():
            if key in self._relays:
                continue

            async def run_relay(relay: Any = relay, *,
                                task_status: TaskStatus[anyio.CancelScope]) -> None:
                with anyio.CancelScope() as scope:
                    await serve_relay(relay.host_ip, relay.listen, relay.target,
                                      task_status=_Forward(task_status, scope))

            self._relays[key] = await self.tg.start(run_relay)

    async def _start_in_order(self, services: Sequence[str], result: UpResult) -> None:
        """Start ``services``, each once its dependencies meet their conditions."""
        await walk(start_plan(self.project.services, services), self._run_start(result),
                   gate=self._start_gate(result), blocked=self._start_blocked(result))
        if result.errors:
            result.ok = False

    def _run_start(self, result: UpResult) -> Callable[[Step], Awaitable[bool]]:
        async def run(step: Step) -> bool:
            return await self._start_step(step, result)
        return run

    async def _start_step(self, step: Step, result: UpResult) -> bool:
        """Start every container of the step's service that is not running yet."""
        try:
            await self._net_settled()
        except OpenContainerError as exc:
            result.errors.append(str(exc))
            return False
        for c in self.service_containers(step.service):
            if c.active or c.state.one_off:  # one-offs start alone (`compose run`)
                continue
            try:
                await self.tg.start(c.run)
            except OpenContainerError as exc:
                result.errors.append(str(exc))
                return False
        return True

    def _start_gate(self, result: UpResult) -> Callable[[Step, Wait], Awaitable[bool]]:
        """Between start steps: wait for the dependency's condition (a failed optional one
        only warns)."""
        async def gate(step: Step, w: Wait) -> bool:
            if not w.service:
                return True
            verdict = await self.wait_condition(w.service, w.condition)
            if verdict == _OK:
                return True
            if w.required:
                result.errors.append(f"dependency failed to start: {verdict}")
                return False
            result.warnings.append(
                f"optional dependency {w.service!r} of {step.service!r} is not ready: {verdict}")
            return True
        return gate

    def _start_blocked(self, result: UpResult) -> Callable[[Step, Wait], None]:
        def blocked(step: Step, w: Wait) -> None:
            if w.service:
                result.errors.append(
                    f"service {step.service!r} was not started: dependency {w.service!r} failed.")
        return blocked

    def _verdict(self, service: str, condition: str) -> str | None:
        cs = self.service_containers(service)
        if not cs:
            return f"service {service!r} has no container."
        if condition == "service_started":
            return _OK if all(c.state.status != "created" for c in cs) else None
        if condition == "service_healthy":
            for c in cs:
                if c.healthcheck is None:
                    return f"container {c.name} has no healthcheck."
                if c.state.status == "exited":
                    return f"container {c.name} exited ({c.state.exit_code})."
                if c.health.status == UNHEALTHY and c.state.status == "running":
                    return f"container {c.name} is unhealthy."
            ok = all(c.health.status == HEALTHY and c.state.status == "running" for c in cs)
            return _OK if ok else None
        if condition == "service_completed_successfully":
            for c in cs:
                if c.state.status == "exited" and not c.active:
                    if c.state.exit_code != 0:
                        return (f"service {service!r} didn't complete successfully: "
                                f"exit {c.state.exit_code}.")
                else:
                    return None
            return _OK
        return f"unknown dependency condition {condition!r}."

    async def wait_condition(self, service: str, condition: str) -> str:
        """Wait on the bus until ``condition`` holds for ``service`` (or fails at once)."""
        async with self.bus.subscribe(ev.Started, ev.Exited, ev.HealthChanged,
                                      ev.RestartScheduled, name=f"wait:{service}") as events:
            while True:
                verdict = self._verdict(service, condition)
                if verdict is not None:
                    return verdict
                await events.receive()

    async def _wait_ready(self, services: Sequence[str], result: UpResult,
                          timeout: float | None) -> None:
        async def one(c: Container) -> None:
            cond = "service_healthy" if c.healthcheck else "service_started"
            verdict = await self.wait_condition(c.service, cond)
            if verdict != _OK:
                if c.healthcheck is None and c.state.exit_code == 0:
                    return
                result.errors.append(verdict)
            elif c.healthcheck is None and c.state.status == "exited" and c.state.exit_code:
                result.errors.append(f"container {c.name} exited ({c.state.exit_code}).")

        with anyio.move_on_after(timeout if timeout else math.inf) as scope:
            async with anyio.create_task_group() as tg:
                for s in services:
                    for c in self.service_containers(s):
                        tg.start_soon(one, c)
        if scope.cancelled_caught:
            result.errors.append("timed out waiting for the services to be ready.")
        if result.errors:
            result.ok = False

    # -- other commands -------------------------------------------------------------------------
    def _select(self, services: Iterable[str] = (), names: Iterable[str] = ()) -> list[Container]:
        """The containers of ``services`` (all: none given), or only those named ``names``
        (one-offs included) when names are given."""
        wanted = set(services)
        for s in wanted:
            if s not in self.project.services:
                raise ContainerError(f"no such service: {s}.")
        named = set(names)
        for n in named:
            if n not in self.containers:
                raise ContainerError(f"no such container: {n}.")
        return [c for c in self.containers.values()
                if (not wanted or c.service in wanted)
                and (c.name in named if named else not c.state.one_off)]

    async def stop(self, services: Sequence[str] = (), timeout: float | None = None,
                   names: Sequence[str] = (), sig: str | None = None) -> list[str]:
        """Stop the chosen containers in reverse dependency order (independent ones together)."""
        graph = self._teardown(self._select(services, names), "stop")

        async def run(step: Step) -> bool:
            c = self.containers.get(step.container)
            if c is not None:
                await c.stop(timeout, sig)
            return True

        await walk(graph, run)
        return graph.order()

    def _teardown(self, chosen: Iterable[Container], kind: str) -> Plan:
        return teardown(self.project.services, [(c.name, c.service) for c in chosen], kind)

    async def start(self, services: Sequence[str] = (), names: Sequence[str] = ()) -> UpResult:
        chosen = self._select(services, names)
        result = UpResult()
        if self.private_network and any(not c.active for c in chosen):
            try:
                if not self.port_plan.published and self.project.services:
                    self.port_plan = self._plan(self.project)
                await self._ensure_network()
            except OpenContainerError as exc:
                result.ok = False
                result.errors.append(str(exc))
                return result
        # one-offs (`compose run`) start alone, without their service's other containers
        for c in chosen:
            if c.state.one_off and not c.active:
                try:
                    await self.tg.start(c.run)
                except OpenContainerError as exc:
                    result.ok = False
                    result.errors.append(str(exc))
        await self._start_in_order(sorted({c.service for c in chosen if not c.state.one_off}),
                                   result)
        return result

    async def restart(self, services: Sequence[str] = (),
                      timeout: float | None = None, names: Sequence[str] = ()) -> UpResult:
        chosen = self._select(services, names)
        for c in chosen:
            c.hold = True  # not auto-removed between its stop and its start
        try:
            await self.stop(services, timeout, names)
            return await self.start(services, names)
        finally:
            for c in chosen:
                c.hold = False

    async def kill(self, services: Sequence[str] = (), sig: str = "SIGKILL",
                   names: Sequence[str] = ()) -> list[str]:
        out = []
        for c in self._select(services, names):
            if c.handle is not None:
                await c.kill(sig)
                out.append(c.name)
        return out

    async def pause(self, names: Sequence[str], *, resume: bool = False) -> list[str]:
        """``pause`` (``resume``: ``unpause``) the named containers."""
        out = []
        for c in self._select(names=names):
            await (c.unpause() if resume else c.pause())
            out.append(c.name)
        return out

    async def rm(self, services: Sequence[str] = (), *, stopped_only: bool = True,
                 names: Sequence[str] = (), timeout: float | None = None) -> list[str]:
        """Remove the chosen containers (``stopped_only=False``: running ones too, stopped
        first with ``timeout``; docker's ``rm -f`` kills at once: 0)."""
        chosen = [c for c in self._select(services, names) if not (c.active and stopped_only)]
        graph = self._teardown(chosen, "remove")
        await walk(graph, self._run_remove(timeout))
        return graph.order()

    def _run_remove(self, timeout: float | None) -> Callable[[Step], Awaitable[bool]]:
        async def run(step: Step) -> bool:
            c = self.containers.get(step.container)
            if c is not None:
                await self._remove(c, timeout)
            return True
        return run

    async def down(self, *, timeout: float | None = None, volumes: bool = False,
                   remove_orphans: bool = False) -> list[str]:
        """Stop and remove every container in reverse dependency order (independent ones
        together), then what is left on disk."""
        async with self._lock:
            graph = self._teardown(list(self.containers.values()), "remove")
            await walk(graph, self._run_remove(timeout))
            removed = graph.order()
            # containers left on disk (orphans, a crashed supervisor's)
            kill_leftovers(self.state)
            left = {st.name: st for st in self.state.containers()
                    if st.service in self.project.services or remove_orphans or st.one_off}
            graph = teardown(self.project.services, [(n, st.service) for n, st in left.items()])

            async def remove_left(step: Step) -> bool:
                st = left[step.container]
                svc = self.project.services.get(st.service) or ServiceConfig(name=st.service)
                await self.runner.remove(self._context(svc, st.name, st.number))
                return True

            await walk(graph, remove_left)
            removed.extend(graph.order())
            if volumes:
                from .volumes import remove_volumes

                remove_volumes(self.state, self.project)
            await self.bus.publish(ev.ProjectDown(project=self.project.name))
            return removed

    def signal_all(self, sig: int = _signal.SIGKILL) -> None:
        for c in self.containers.values():
            if c.handle is not None:
                if sig == _signal.SIGKILL:
                    c.handle.kill_all()
                else:
                    c.handle.signal(sig)
