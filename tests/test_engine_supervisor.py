"""The supervisor with a runtime that runs /bin/sh scripts on the host (no mocks, no proot)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from opencontainer.engine import events as ev
from opencontainer.engine.bus import EventBus
from opencontainer.engine.model import DependencySpec, HealthSpec, ProjectModel, ServiceConfig
from opencontainer.engine.restart import RestartPolicy
from opencontainer.engine.runner import (
    Attachment,
    ContainerContext,
    Created,
    ShellRunner,
    SupervisedProcess,
)
from opencontainer.engine.state import ProjectState, group_members, read_logs
from opencontainer.engine.supervisor import Supervisor, TransitionError, UpOptions
from opencontainer.errors import ContainerError

pytestmark = pytest.mark.anyio

FOREVER = "trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done"
HEALTH = HealthSpec(test=("CMD-SHELL", "test -f ready"), interval=0.1, timeout=2, retries=2,
                    start_period=10, start_interval=0.1)


def sh(name: str, script: str, **kw: object) -> ServiceConfig:
    return ServiceConfig(name=name, image="sh", shell_script=script, **kw)  # type: ignore[arg-type]


def project(tmp: Path, *services: ServiceConfig) -> ProjectModel:
    return ProjectModel(name="t", working_dir=str(tmp), services={s.name: s for s in services})


class Recorder:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def of(self, cls: type[ev.Event], container: str | None = None) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, cls) and (
            container is None or getattr(e, "container", None) == container)]

    def kinds(self, container: str) -> list[str]:
        return [e.kind for e in self.events if getattr(e, "container", None) == container
                and not isinstance(e, ev.LogLine)]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[EventBus, Recorder, ProjectState]]:
    bus = EventBus()
    rec = Recorder()
    async with anyio.create_task_group() as tg:
        async def collect(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            async with bus.subscribe(name="rec", lossy=True, buffer=100000) as stream:
                task_status.started()
                async for e in stream:
                    rec.events.append(e)

        await tg.start(collect)
        yield bus, rec, ProjectState(tmp_path / ".containers")
        tg.cancel_scope.cancel()


async def wait_for(pred: object, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not pred():  # type: ignore[operator]
            await anyio.sleep(0.02)


def pids_alive(pids: list[int]) -> list[int]:
    return [p for p in pids if os.path.exists(f"/proc/{p}") and
            Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0] != "Z"]


async def test_dependency_conditions_and_order(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    p = project(
        tmp_path,
        sh("db", "echo db; sleep 0.3; touch ready; " + FOREVER, healthcheck=HEALTH),
        sh("init", "echo migrated; exit 0"),
        sh("app", "echo app; " + FOREVER, depends_on={
            "db": DependencySpec(condition="service_healthy"),
            "init": DependencySpec(condition="service_completed_successfully")}),
    )
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        result = await sup.up()
        assert result.ok, result.errors
        by = {c.name: c for c in sup.containers.values()}
        assert by["t-app-1"].state.status == "running"
        assert by["t-db-1"].health.status == "healthy"
        assert by["t-init-1"].state.exit_code == 0
        started = [e.container for e in rec.of(ev.Started)]
        assert started.index("t-app-1") > started.index("t-db-1")
        healthy = next(i for i, e in enumerate(rec.events) if isinstance(e, ev.HealthChanged)
                       and e.status == "healthy")
        app_start = next(i for i, e in enumerate(rec.events) if isinstance(e, ev.Starting)
                         and e.container == "t-app-1")
        assert app_start > healthy
        pids = [c.handle.pid for c in sup.containers.values() if c.handle]
        removed = await sup.down(timeout=5)
        assert set(removed) == {"t-app-1", "t-db-1", "t-init-1"}
    # reverse order: app stopped before db
    stops = [e.container for e in rec.of(ev.Stopping)]
    assert stops.index("t-app-1") < stops.index("t-db-1")
    assert pids_alive(pids) == []
    assert state.containers() == []


async def test_service_healthy_fails_at_once_when_the_dependency_exits(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("db", "echo boom; exit 3", healthcheck=HEALTH),
                sh("app", FOREVER, depends_on={"db": DependencySpec(condition="service_healthy")}))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        result = await sup.up()
        assert not result.ok
        assert "t-db-1 exited (3)" in result.errors[0]
        assert sup.containers["t-app-1"].state.status == "created"
        await sup.down()


async def test_completed_successfully_needs_exit_zero_and_optional_only_warns(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(
        tmp_path,
        sh("init", "exit 2"),
        sh("app", FOREVER, depends_on={
            "init": DependencySpec(condition="service_completed_successfully")}),
        sh("side", FOREVER, depends_on={
            "init": DependencySpec(condition="service_completed_successfully", required=False)}),
    )
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        result = await sup.up()
        assert not result.ok
        assert any("didn't complete successfully: exit 2" in e for e in result.errors)
        assert sup.containers["t-app-1"].state.status == "created"
        assert sup.containers["t-side-1"].state.status == "running"
        assert any("optional dependency" in w for w in result.warnings)
        await sup.down()


async def test_on_failure_3_restarts_exactly_three_times_with_growing_delays(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    p = project(tmp_path, sh("crash", "echo try; exit 4",
                             restart=RestartPolicy.parse("on-failure:3")))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        c = sup.containers["t-crash-1"]
        await c.wait_done()
        assert c.state.status == "exited" and c.state.exit_code == 4
        assert c.state.restart_count == 3
        delays = [e.delay for e in rec.of(ev.RestartScheduled)]  # type: ignore[attr-defined]
        assert len(delays) == 3 and delays == sorted(delays) and delays[0] < delays[-1]
        assert len(rec.of(ev.Started, "t-crash-1")) == 4
        exits = rec.of(ev.Exited, "t-crash-1")
        assert [e.restarting for e in exits] == [True, True, True, False]  # type: ignore[attr-defined]
        assert len(read_logs(state, "t-crash-1", "crash")) == 4
        await sup.down()


async def test_always_comes_back_after_kill_9_but_not_after_stop(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    p = project(tmp_path, sh("svc", FOREVER, restart=RestartPolicy.parse("always")))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        c = sup.containers["t-svc-1"]
        assert c.handle is not None
        first = c.handle.pid
        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: c.handle is not None and c.handle.pid != first
                       and c.state.status == "running")
        assert rec.of(ev.Exited, "t-svc-1")[0].exit_code == 137  # type: ignore[attr-defined]
        await sup.stop(["svc"])
        assert c.state.status == "exited"
        await anyio.sleep(0.3)
        assert c.state.status == "exited" and not c.active
        await sup.down()


async def test_stop_escalates_to_sigkill_after_the_grace_period(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("stubborn", "trap '' TERM; while :; do sleep 0.05; done",
                             stop_grace_period=0.3))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        c = sup.containers["t-stubborn-1"]
        assert c.handle is not None
        pgid = c.handle.pid
        await sup.stop()
        assert c.state.exit_code == 137
        assert pids_alive(group_members(pgid)) == []
        await sup.down()


async def test_stop_signal_goes_to_the_main_process_and_its_children_die(
        tmp_path: Path, stack: tuple) -> None:
    """The shell runner's process is its own main process: SIGTERM reaches the shell (not its
    running ``sleep``), its exit code is kept, and what it left in the background dies."""
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("svc", "sleep 300 & trap 'exit 5' TERM; echo up; "
                                    "while :; do sleep 0.05; done", stop_grace_period=30))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        c = sup.containers["t-svc-1"]
        assert c.handle is not None and c.handle.main_pid() == c.handle.pid
        pgid = c.handle.pid
        await wait_for(lambda: len(pids_alive(group_members(pgid))) >= 2)
        await sup.stop()
        assert (c.state.status, c.state.exit_code) == ("exited", 5)
        await wait_for(lambda: pids_alive(group_members(pgid)) == [])
        await sup.down()


async def test_kill_ends_every_process_with_137_and_a_signal_gives_128_plus_n(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("a", "sleep 300 & while :; do sleep 0.05; done"),
                sh("b", "while :; do sleep 0.05; done"))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        a, b = sup.containers["t-a-1"], sup.containers["t-b-1"]
        assert a.handle is not None
        pgid = a.handle.pid
        await wait_for(lambda: len(pids_alive(group_members(pgid))) >= 2)
        assert await sup.kill(["a"]) == ["t-a-1"]
        await a.wait_done()
        assert a.state.exit_code == 137
        await wait_for(lambda: pids_alive(group_members(pgid)) == [])
        await sup.kill(["b"], "SIGTERM")
        await b.wait_done()
        assert b.state.exit_code == 143
        await sup.down()


async def test_health_turns_unhealthy_and_is_persisted(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    spec = HealthSpec(test=("CMD", "false"), interval=0.05, timeout=1, retries=2)
    p = project(tmp_path, sh("sick", FOREVER, healthcheck=spec))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        c = sup.containers["t-sick-1"]
        await wait_for(lambda: c.health.status == "unhealthy")
        on_disk = state.read_container("t-sick-1")
        assert on_disk is not None and on_disk.health == "unhealthy"
        assert on_disk.health_log and on_disk.health_log[-1]["exit_code"] == 1
        statuses = [e.status for e in rec.of(ev.HealthChanged)]  # type: ignore[attr-defined]
        assert statuses == ["starting", "unhealthy"]
        await sup.down()


async def test_wait_fails_on_unhealthy(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    spec = HealthSpec(test=("CMD", "false"), interval=0.05, timeout=1, retries=1)
    p = project(tmp_path, sh("sick", FOREVER, healthcheck=spec))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        result = await sup.up(UpOptions(wait=True, wait_timeout=10))
        assert not result.ok and "unhealthy" in result.errors[0]
        await sup.down()


async def test_transition_asserts_allowed_sources(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("x", "exit 0"))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up(UpOptions(start=False))
        c = sup.containers["t-x-1"]
        with pytest.raises(TransitionError):
            await c.transition("running", pid=1)
        await sup.down()


async def test_logs_go_to_log_jsonl_and_the_bus(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    p = project(tmp_path, sh("talk", "echo one; echo two >&2; printf 'no newline'"))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        await sup.up()
        await sup.containers["t-talk-1"].wait_done()
        lines = read_logs(state, "t-talk-1", "talk")
        assert [(r.stream, r.text) for r in sorted(lines, key=lambda r: r.stream)] == [
            ("stderr", "two"), ("stdout", "one"), ("stdout", "no newline")]
        assert {e.text for e in rec.of(ev.LogLine)} == {"one", "two", "no newline"}  # type: ignore[attr-defined]
        await sup.down()


async def test_up_again_keeps_unchanged_and_recreates_changed(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    a, b = sh("a", FOREVER), sh("b", FOREVER)
    async with Supervisor(project=project(tmp_path, a, b), state=state, runner=ShellRunner(),
                          bus=bus) as sup:
        await sup.up()
        pid_a = sup.containers["t-a-1"].handle.pid  # type: ignore[union-attr]
        sup.set_project(project(tmp_path, a, sh("b", "echo changed; " + FOREVER)))
        result = await sup.up()
        kinds = {x.container: x.kind for x in result.actions}
        assert kinds == {"t-a-1": "keep", "t-b-1": "recreate"}
        assert sup.containers["t-a-1"].handle.pid == pid_a  # type: ignore[union-attr]
        await sup.down()


async def test_leftovers_of_a_dead_supervisor_are_killed(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("a", FOREVER))
    sup = Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus)
    async with sup:
        await sup.up()
        pgid = sup.containers["t-a-1"].handle.pid  # type: ignore[union-attr]
        # pretend the supervisor died: forget the process without stopping it
        c = sup.containers["t-a-1"]
        c.handle = None
        sup.containers.clear()
        assert pids_alive(group_members(pgid))
        fresh = Supervisor(project=p, state=state, runner=ShellRunner(), bus=EventBus())
        assert fresh.adopt_leftovers() == ["t-a-1"]
        await wait_for(lambda: not pids_alive(group_members(pgid)))
        st = state.read_container("t-a-1")
        assert st is not None and st.status == "exited" and st.pid is None


class Recording(ShellRunner):
    """A ShellRunner that notes when each container starts and is removed (and takes
    ``delay`` seconds for each), to see the order and the overlap of the steps."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, str, float, float]] = []  # (op, container, begin, end)

    async def start(self, ctx: ContainerContext,
                    attach: Attachment | None = None) -> SupervisedProcess:
        begin = time.monotonic()
        await anyio.sleep(self.delay)
        handle = await super().start(ctx, attach)
        self.calls.append(("start", ctx.name, begin, time.monotonic()))
        return handle

    async def remove(self, ctx: ContainerContext) -> None:
        begin = time.monotonic()
        await anyio.sleep(self.delay)
        await super().remove(ctx)
        self.calls.append(("remove", ctx.name, begin, time.monotonic()))

    def order(self, op: str) -> list[str]:
        return [c for o, c, _, _ in sorted(self.calls, key=lambda x: x[2]) if o == op]

    def span(self, op: str, container: str) -> tuple[float, float]:
        return next((b, e) for o, c, b, e in self.calls if o == op and c == container)


def on(*services: str) -> dict[str, DependencySpec]:
    return {s: DependencySpec() for s in services}


def diamond(tmp: Path) -> ProjectModel:
    return project(tmp, sh("base", FOREVER), sh("left", FOREVER, depends_on=on("base")),
                   sh("right", FOREVER, depends_on=on("base")),
                   sh("top", FOREVER, depends_on=on("left", "right")))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


async def test_down_removes_in_reverse_dependency_order_independent_ones_together(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    runner = Recording(delay=0.2)
    async with Supervisor(project=diamond(tmp_path), state=state, runner=runner,
                          bus=bus) as sup:
        assert (await sup.up()).ok
        removed = await sup.down(timeout=5)
    assert removed[0] == "t-top-1" and removed[-1] == "t-base-1"
    gone = [e.container for e in rec.of(ev.Removed)]
    assert gone[0] == "t-top-1" and set(gone[1:3]) == {"t-left-1", "t-right-1"}
    assert gone[3] == "t-base-1"
    assert overlap(runner.span("remove", "t-left-1"), runner.span("remove", "t-right-1"))
    assert runner.span("remove", "t-base-1")[0] >= runner.span("remove", "t-left-1")[1]
    assert state.containers() == []


async def test_independent_services_start_together_dependents_after(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    runner = Recording(delay=0.3)
    async with Supervisor(project=diamond(tmp_path), state=state, runner=runner,
                          bus=bus) as sup:
        assert (await sup.up()).ok
        assert overlap(runner.span("start", "t-left-1"), runner.span("start", "t-right-1"))
        assert runner.span("start", "t-left-1")[0] >= runner.span("start", "t-base-1")[1]
        assert runner.span("start", "t-top-1")[0] >= runner.span("start", "t-right-1")[1]
        await sup.down(timeout=5)


async def test_recreating_a_dependency_with_dependents(tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    runner = Recording()
    db, app = sh("db", FOREVER), sh("app", FOREVER, depends_on=on("db"))
    async with Supervisor(project=project(tmp_path, db, app), state=state, runner=runner,
                          bus=bus) as sup:
        await sup.up()
        pid_app = sup.containers["t-app-1"].handle.pid  # type: ignore[union-attr]
        # only the dependency changed: it is recreated, its dependent keeps running
        sup.set_project(project(tmp_path, sh("db", "echo v2; " + FOREVER), app))
        result = await sup.up()
        assert result.ok, result.errors
        assert {x.container: x.kind for x in result.actions} == {"t-db-1": "recreate",
                                                                "t-app-1": "keep"}
        assert [e.container for e in rec.of(ev.Removed)] == ["t-db-1"]
        assert sup.containers["t-app-1"].handle.pid == pid_app  # type: ignore[union-attr]
        assert sup.containers["t-db-1"].state.status == "running"
        # both recreated: the dependent goes first and comes back last
        rec.events.clear()
        runner.calls.clear()
        result = await sup.up(UpOptions(force_recreate=True))
        assert result.ok, result.errors
        assert [e.container for e in rec.of(ev.Removed)] == ["t-app-1", "t-db-1"]
        assert [e.container for e in rec.of(ev.Started)] == ["t-db-1", "t-app-1"]
        assert runner.order("start") == ["t-db-1", "t-app-1"]
        await sup.down(timeout=5)


async def test_stop_and_rm_of_several_go_in_reverse_dependency_order(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack
    async with Supervisor(project=diamond(tmp_path), state=state, runner=Recording(),
                          bus=bus) as sup:
        await sup.up()
        stopped = await sup.stop(["base", "top", "left"], timeout=5)
        assert stopped == ["t-top-1", "t-left-1", "t-base-1"]
        assert [e.container for e in rec.of(ev.Stopped)] == stopped
        assert sup.containers["t-right-1"].state.status == "running"
        removed = await sup.rm(["base", "left", "top", "right"])  # right runs: kept
        assert removed == ["t-top-1", "t-left-1", "t-base-1"]
        assert [e.container for e in rec.of(ev.Removed)] == removed
        assert set(sup.containers) == {"t-right-1"}
        await sup.down(timeout=5)


async def test_a_failing_dependency_fails_its_dependents_down_the_chain(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059
    p = project(tmp_path, sh("db", "echo boom; exit 3", healthcheck=HEALTH),
                sh("api", FOREVER, depends_on={"db": DependencySpec(condition="service_healthy")}),
                sh("web", FOREVER, depends_on=on("api")),
                sh("side", FOREVER))
    async with Supervisor(project=p, state=state, runner=ShellRunner(), bus=bus) as sup:
        result = await sup.up()
        assert not result.ok
        assert result.errors == ["dependency failed to start: container t-db-1 exited (3).",
                                 "service 'web' was not started: dependency 'api' failed."]
        assert sup.containers["t-api-1"].state.status == "created"
        assert sup.containers["t-web-1"].state.status == "created"
        assert sup.containers["t-side-1"].state.status == "running"
        await sup.down()


async def test_a_container_that_cannot_be_created_starts_nothing(
        tmp_path: Path, stack: tuple) -> None:
    bus, rec, state = stack  # noqa: RUF059

    class Failing(ShellRunner):
        async def create(self, ctx: ContainerContext, *, fresh: bool) -> Created:
            if ctx.service.name == "bad":
                raise ContainerError("no such image: bad.")
            return await super().create(ctx, fresh=fresh)

    p = project(tmp_path, sh("ok", FOREVER), sh("bad", FOREVER))
    async with Supervisor(project=p, state=state, runner=Failing(), bus=bus) as sup:
        result = await sup.up()
        assert not result.ok
        assert result.errors == ["no such image: bad."]
        assert sup.containers["t-ok-1"].state.status == "created"
        await sup.down()
