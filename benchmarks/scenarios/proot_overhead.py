"""Scenario 6: proot overhead inside a container for syscall-heavy loops.

Workloads (busybox ``sh``, all commands are the image's static busybox):

- ``fork``: N x fork+exec ``busybox true`` (N = 1000; 200 with ``--quick``);
- ``stat``: M x ``busybox ls -la /bin`` (~400 symlinks: lstat + readlink each; M = 100 / 20).

Sides: native (``chroot ROOT`` as root, else the same busybox loop on the host against the
unpacked tree), raw ``proot -0 -r ROOT`` with 5.1.0 and 5.4.0, ``opencontainer run --rm`` with
each proot (``OPENCONTAINER_PROOT``), ``udocker run`` (proot 5.1.0 through the -k wrapper), and
``proot-distro login busybox -- /bin/sh -c LOOPS`` with each proot (``PD_PROOT_BIN``; the
container is installed once, before timing), and ``opencontainer run --rm`` on the native
backend (``OPENCONTAINER_RUNTIME=native``: no proot), as an unprivileged user (the harness's
own, or ``OPENCONTAINER_BENCH_USER``/``ocuser`` through ``runuser`` when it runs as root); that
one is compared with ``host``, the same loop with the image's static busybox run directly on
the host (target for the fork loop: <= 1.3x, issue 13), and with the proot sides.
A failing command ends the loop with exit 1 (the side is then reported as failed).
The loop times itself with ``/proc/uptime`` (10 ms resolution) where /proc is there, so a
container's start-up is not counted; otherwise (chroot without /proc) wall time is used.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from ..context import PROOT_51, BenchContext, as_user, bench_user, proot_54
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed
from ..ours import module_missing, oc, oc_as, run_cmd
from .base import Plan

SCENARIO = "6"
WORKLOADS = ("fork", "stat")

SCRIPT = """\
t() {{ read u _ < /proc/uptime 2>/dev/null && echo "$u"; }}
S=$(t); i=0; while [ $i -lt {n} ]; do {bb} true || exit 1; i=$((i+1)); done; E=$(t)
echo "BENCH fork $S $E"
S=$(t); i=0
while [ $i -lt {m} ]; do {bb} ls -la {dir} >{out} || exit 1; i=$((i+1)); done; E=$(t)
echo "BENCH stat $S $E"
"""

_LINE = re.compile(r"^BENCH (\w+) ([\d.]*) ([\d.]*)$", re.M)


def script(n: int, m: int, bb: str, directory: str) -> str:
    """The loops; output goes to a file in /tmp (images may have no /dev/null of their own)."""
    return SCRIPT.format(n=n, m=m, bb=bb, dir=directory, out="/tmp/.oc-bench-ls")


def parse_times(stdout: str) -> dict[str, float]:
    """``{"fork": s, "stat": s}`` from the loop's BENCH lines (empty if /proc was missing)."""
    out: dict[str, float] = {}
    for name, start, end in _LINE.findall(stdout):
        if start and end:
            out[name] = float(end) - float(start)
    return out


def _timed_loops(argv_for: Callable[[str], list[str]], env: dict[str, str], n: int, m: int,
                 bb: str, directory: str) -> Metrics:
    """Run the two loops as separate commands when /proc is missing (wall time each)."""
    proc = run_cmd(argv_for(script(n, m, bb, directory)), env, what="loop")
    times = parse_times(proc.stdout)
    if set(times) == set(WORKLOADS):
        return times
    walls: dict[str, float] = {}
    for name, (nn, mm) in {"fork": (n, 0), "stat": (0, m)}.items():
        start = time.perf_counter()
        run_cmd(argv_for(script(nn, mm, bb, directory)), env, what="loop")
        walls[name] = time.perf_counter() - start
    return walls


def plan(ctx: BenchContext) -> Plan:
    n, m = (200, 20) if ctx.quick else (1000, 100)
    root = ctx.unpacked("busybox")
    ref = ctx.ref("busybox")
    p54 = proot_54()
    env = ctx.oc_env(ctx.workdir / "s6-home")
    notes = [f"6: fork = {n} x fork+exec busybox true; stat = {m} x busybox ls -la /bin"]

    def native() -> Metrics:
        if os.geteuid() == 0:
            return _timed_loops(lambda s: ["chroot", str(root), "/bin/sh", "-c", s], env, n, m,
                                "/bin/busybox", "/bin")
        bb = str(root / "bin" / "busybox")
        return _timed_loops(lambda s: [bb, "sh", "-c", s], env, n, m, bb, str(root / "bin"))

    def host() -> Metrics:
        bb = str(root / "bin" / "busybox")
        return _timed_loops(lambda s: [bb, "sh", "-c", s], env, n, m, bb, str(root / "bin"))

    def raw(proot: Path | None) -> Callable[[], Metrics]:
        def measure() -> Metrics:
            if proot is None or not proot.exists():
                raise NotAvailable("proot binary not available")
            base = [str(proot), "-0", "-r", str(root), "-b", "/proc", "-b", "/dev", "-b", "/sys",
                    "-w", "/"]
            return _timed_loops(lambda s: [*base, "/bin/sh", "-c", s], env, n, m,
                                "/bin/busybox", "/bin")
        return measure

    ours_setup: list[Exception] = []
    reason = module_missing("opencontainer.cli.containers", "run_run")
    if reason:
        ours_setup.append(NotAvailable(reason))
    else:
        try:
            oc("pull", ref, env=env)
        except (SideFailed, NotAvailable) as exc:
            ours_setup.append(exc)

    def ours(proot: Path | None) -> Callable[[], Metrics]:
        def measure() -> Metrics:
            if ours_setup:
                raise ours_setup[0]
            if proot is None:
                raise NotAvailable("proot binary not available")
            oenv = dict(env, OPENCONTAINER_PROOT=str(proot))
            return _timed_loops(lambda s: [*_oc_run(ref), s], oenv, n, m, "/bin/busybox", "/bin")
        return measure

    user = bench_user()
    native_setup: list[Exception] = list(ours_setup)
    nenv: dict[str, str] = {}
    if not native_setup:
        try:
            nenv = ctx.user_env(ctx.user_dir("s6-native-home"), "native")
            oc_as(user, "pull", ref, env=nenv)
        except (SideFailed, NotAvailable) as exc:
            native_setup.append(exc)

    def ours_native() -> Metrics:
        if native_setup:
            raise native_setup[0]
        return _timed_loops(lambda s: as_user([*_oc_run(ref), s], user), nenv, n, m,
                            "/bin/busybox", "/bin")

    udir = ctx.workdir / "s6-udocker"
    udocker_setup: list[Exception] = []
    try:
        u = ctx.udocker()
        uenv = u.env(udir / "udocker", PROOT_51, ctx.registry_url, ctx.oc_env(udir))
        run_cmd(u.argv("pull", ctx.repo_tag("busybox")), uenv, what="udocker pull")
        run_cmd(u.argv("create", "--name=s6", ctx.repo_tag("busybox")), uenv,
                what="udocker create")
    except (SideFailed, NotAvailable) as exc:
        udocker_setup.append(exc)

    def udocker() -> Metrics:
        if udocker_setup:
            raise udocker_setup[0]
        return _timed_loops(lambda s: u.argv("run", "--nobanner", "s6", "/bin/sh", "-c", s),
                            uenv, n, m, "/bin/busybox", "/bin")

    pdir = ctx.workdir / "s6-proot-distro"
    pd_setup: list[Exception] = []
    try:
        pd = ctx.proot_distro()
        pbase = ctx.oc_env(pdir)
        run_cmd(pd.argv("install", "--allow-insecure", ref), pd.env(pdir, PROOT_51, pbase),
                what="proot-distro install")
    except (SideFailed, NotAvailable) as exc:
        pd_setup.append(exc)

    def proot_distro(proot: Path | None) -> Callable[[], Metrics]:
        def measure() -> Metrics:
            if pd_setup:
                raise pd_setup[0]
            if proot is None:
                raise NotAvailable("proot binary not available")
            penv = pd.env(pdir, proot, pbase)
            return _timed_loops(
                lambda s: pd.argv("login", "busybox", "--", "/bin/sh", "-c", s), penv, n, m,
                "/bin/busybox", "/bin")
        return measure

    sides = [
        Side("native", native),
        Side("host", host),
        Side("ours-native", ours_native),
        Side("proot-5.1.0", raw(PROOT_51)),
        Side("proot-5.4.0", raw(p54)),
        Side("ours-5.1.0", ours(PROOT_51)),
        Side("ours-5.4.0", ours(p54)),
        Side("udocker-5.1.0", udocker),
        Side("proot-distro-5.1.0", proot_distro(PROOT_51)),
        Side("proot-distro-5.4.0", proot_distro(p54)),
    ]
    native_label = "native (chroot)" if os.geteuid() == 0 else "native (host busybox)"
    notes.append("6: native backend as " + (f"user {user} (runuser)" if user else "this user")
                 + "; host = the image's static busybox run on the host")
    rows: list[RowSpec] = []
    for w in WORKLOADS:
        nat = ("ours-native", w)
        label = f"{w} loop: opencontainer run, native backend"
        rows += [
            RowSpec(SCENARIO, label, nat, ("host", w), "host (same loop)",
                    target_max=1.3 if w == "fork" else None, target_ratio=True),
            RowSpec(SCENARIO, label, nat, ("ours-5.1.0", w), "ours, proot 5.1.0"),
            RowSpec(SCENARIO, label, nat, ("ours-5.4.0", w), "ours, proot 5.4.0"),
            RowSpec(SCENARIO, label, nat, ("proot-distro-5.1.0", w),
                    "proot-distro login (5.1.0)"),
            RowSpec(SCENARIO, label, nat, ("proot-distro-5.4.0", w),
                    "proot-distro login (5.4.0)"),
        ]
        rows += [
            RowSpec(SCENARIO, f"{w} loop: raw proot 5.1.0", ("proot-5.1.0", w), ("native", w),
                    native_label),
            RowSpec(SCENARIO, f"{w} loop: raw proot 5.4.0", ("proot-5.4.0", w), ("native", w),
                    native_label),
            RowSpec(SCENARIO, f"{w} loop: opencontainer run, proot 5.1.0", ("ours-5.1.0", w),
                    ("native", w), native_label),
            RowSpec(SCENARIO, f"{w} loop: opencontainer run, proot 5.4.0", ("ours-5.4.0", w),
                    ("native", w), native_label),
            RowSpec(SCENARIO, f"{w} loop: opencontainer run, proot 5.1.0", ("ours-5.1.0", w),
                    ("udocker-5.1.0", w), "udocker run (5.1.0)"),
            RowSpec(SCENARIO, f"{w} loop: proot-distro login, proot 5.1.0",
                    ("proot-distro-5.1.0", w), ("native", w), native_label),
            RowSpec(SCENARIO, f"{w} loop: proot-distro login, proot 5.4.0",
                    ("proot-distro-5.4.0", w), ("native", w), native_label),
            RowSpec(SCENARIO, f"{w} loop: opencontainer run, proot 5.1.0", ("ours-5.1.0", w),
                    ("proot-distro-5.1.0", w), "proot-distro login (5.1.0)"),
            RowSpec(SCENARIO, f"{w} loop: opencontainer run, proot 5.4.0", ("ours-5.4.0", w),
                    ("proot-distro-5.4.0", w), "proot-distro login (5.4.0)"),
        ]

    return Plan(sides, rows, notes,
                teardown=lambda: ctx.discard(udir, pdir, ctx.workdir / "s6-home",
                                                ctx.workdir / "s6-native-home"))


def _oc_run(ref: str) -> list[str]:
    from ..ours import oc_argv

    return oc_argv("run", "--rm", ref, "/bin/sh", "-c")
