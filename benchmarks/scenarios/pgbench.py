"""Scenario 7: PostgreSQL inside a container, native backend vs proot backend.

The fixtures' postgres stand-in (``library/postgres:15``: Debian's PostgreSQL 15 behind the
official entry point: chown, ``gosu postgres``, initdb) runs detached on each backend
(``opencontainer run -d``, ``POSTGRES_HOST_AUTH_METHOD=trust``, ``-c listen_addresses=`` so
the two servers share no TCP port: pgbench talks to them over their own unix sockets). Each
round, per backend:

- ``init``: ``opencontainer exec NAME pgbench -i -s 5`` (500 000 rows of pgbench_accounts,
  rebuilt every round); pgbench's own ``done in X s``, else the command's wall time;
- ``tps``: ``opencontainer exec NAME pgbench -c 4 -j 2 -T 60`` (``-T 10`` with ``--quick``);
  pgbench's ``tps = N (without initial connection time)``. Higher is better: the ratio
  ours/peer above 1 means the native backend is faster.

Both sides run as the same unprivileged user (the harness's own, or ``OPENCONTAINER_BENCH_USER``
/ ``ocuser`` when it runs as root): the native backend needs its
subordinate ids, and the proot side then differs only in the backend. The proot side uses the
proot the product picks (``OPENCONTAINER_PROOT`` unset).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable

from ..context import BenchContext, bench_user
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, one_line, timed
from ..ours import module_missing, oc_as
from .base import Plan

SCENARIO = "7"
SCALE = 5
READY = "ready for start up"
_DONE = re.compile(r"done in ([\d.]+) s")
_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")


def parse_init(text: str) -> float | None:
    """Seconds from ``pgbench -i``'s ``done in X s`` line (None when it is missing)."""
    found = _DONE.findall(text)
    return float(found[-1]) if found else None


def parse_tps(text: str) -> float | None:
    found = _TPS.findall(text)
    return float(found[-1]) if found else None


def plan(ctx: BenchContext) -> Plan:
    seconds = 10 if ctx.quick else 60
    user = bench_user()
    notes = [f"7: pgbench -i -s {SCALE}, then pgbench -c 4 -j 2 -T {seconds} (TPS, higher is "
             "better), over the container's unix socket, inside the postgres stand-in; both "
             "backends as " + (f"user {user}" if user else "this user")]
    problem: list[Exception] = []
    reason = module_missing("opencontainer.cli.containers", "run_exec")
    if reason:
        problem.append(NotAvailable(reason))
    ref = ""
    if not problem:
        try:
            ref = ctx.ref("multi")
        except NotAvailable as exc:
            problem.append(exc)

    def side(runtime: str) -> tuple[Side, Callable[[], None]]:
        name = f"s7-{runtime}"
        state: dict[str, object] = {}

        def env() -> dict[str, str]:
            if "env" not in state:
                state["env"] = ctx.user_env(ctx.user_dir(f"{name}-home"), runtime)
            return state["env"]  # type: ignore[return-value]

        def start() -> None:
            if problem:
                raise problem[0]
            if state.get("error"):
                raise state["error"]  # type: ignore[misc]
            if state.get("up"):
                return
            try:
                e = env()
                oc_as(user, "pull", ref, env=e)
                oc_as(user, "run", "-d", "--name", name, "-e", "POSTGRES_HOST_AUTH_METHOD=trust",
                      "-e", "POSTGRES_PASSWORD=bench", ref, "postgres", "-c",
                      "listen_addresses=", env=e)
                state["up"] = True
                wait_ready(e)
            except (SideFailed, NotAvailable) as exc:
                state["error"] = exc
                raise

        def wait_ready(e: dict[str, str]) -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                logs = oc_as(user, "logs", name, env=e)
                if READY in logs.stdout + logs.stderr:
                    try:
                        oc_as(user, "exec", name, "pg_isready", "-U", "postgres", env=e,
                              timeout=30)
                        return
                    except SideFailed:
                        pass
                state_out = oc_as(user, "inspect", "-f", "{{.State.Status}}", name, env=e)
                if state_out.stdout.strip() in ("exited", "dead"):
                    raise SideFailed(f"postgres exited: {one_line(logs.stdout + logs.stderr)}")
                time.sleep(1)
            raise SideFailed("postgres was not ready after 300 s")

        def measure() -> Metrics:
            e = env()
            out: dict[str, float] = {}
            proc = None

            def init() -> None:
                nonlocal proc
                proc = oc_as(user, "exec", name, "pgbench", "-i", "-s", str(SCALE), "-U",
                             "postgres", "postgres", env=e)

            wall = timed(init)
            assert proc is not None
            out["init"] = parse_init(proc.stdout + proc.stderr) or wall
            run = oc_as(user, "exec", name, "pgbench", "-c", "4", "-j", "2", "-T", str(seconds),
                        "-U", "postgres", "postgres", env=e, timeout=seconds + 300)
            tps = parse_tps(run.stdout + run.stderr)
            if tps is None:
                raise SideFailed(f"no tps in pgbench's output: {one_line(run.stdout)}")
            out["tps"] = tps
            return out

        def stop() -> None:
            if state.get("up"):
                with contextlib.suppress(SideFailed, NotAvailable):
                    oc_as(user, "rm", "-f", "-v", name, env=env(), timeout=120)
            ctx.discard(ctx.workdir / f"{name}-home")

        return Side(runtime, measure, prepare=start), stop

    native, stop_native = side("native")
    proot, stop_proot = side("proot")
    rows = [
        RowSpec(SCENARIO, f"pgbench -i -s {SCALE}, native backend", ("native", "init"),
                ("proot", "init"), "ours, proot backend"),
        RowSpec(SCENARIO, f"pgbench -c 4 -T {seconds} TPS (higher: better), native backend",
                ("native", "tps"), ("proot", "tps"), "ours, proot backend", unit="tps"),
    ]

    def teardown() -> None:
        stop_native()
        stop_proot()

    return Plan([native, proot], rows, notes, teardown=teardown)
