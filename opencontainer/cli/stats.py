"""``stats`` (docker's): CPU and memory of each container, from /proc.

A container's processes are its supervisor-recorded process (``state.json`` ``pid``, a
session and process-group leader: ``run.sh``/proot), everything in its session and below it,
and proot's tracees (daemons that called ``setsid`` stay traced). CPU % is the CPU time they
used over the sampling interval (100 % = one core, as docker); memory is their proportional
set size (PSS, so that pages they share are counted once; RSS where PSS cannot be read) against
the host's memory. There is no per-container network (containers share the host's), so NET I/O
is ``0B / 0B``; BLOCK I/O is what ``/proc/<pid>/io`` says they read and wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs

from .volumes import table, template

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def configure_stats(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true",
                        help="show all containers (default: running ones)")
    parser.add_argument("--no-stream", action="store_true",
                        help="one sample, then exit")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("--format", default="table", help="table (default), json or a template")
    parser.add_argument("containers", nargs="*", metavar="CONTAINER")


@attrs.frozen(kw_only=True)
class Sample:
    cpu_ticks: int
    mem: int
    read: int
    write: int
    pids: int


def container_pids(pid: int | None) -> list[int]:
    from ..runtime import procfs

    if not pid or not procfs.alive(pid):
        return []
    procs = procfs.all_procs()
    found = [pid, *procfs.session_members(pid, procs), *procfs.descendants(pid, procs)]
    for p in list(found):
        found += procfs.traced_by(p, procs) if p != pid else []
    seen: list[int] = []
    for p in found:
        if p not in seen:
            seen.append(p)
    return seen


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def sample(pids: list[int]) -> Sample:
    ticks = mem = rd = wr = 0
    page = os.sysconf("SC_PAGE_SIZE")
    n = 0
    for p in pids:
        stat = _read(f"/proc/{p}/stat")
        if not stat:
            continue
        n += 1
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) > 12:
            ticks += int(rest[11]) + int(rest[12])  # utime + stime
        pss = None
        for line in _read(f"/proc/{p}/smaps_rollup").splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break
        if pss is None:
            statm = _read(f"/proc/{p}/statm").split()
            pss = int(statm[1]) * page if len(statm) > 1 else 0
        mem += pss
        for line in _read(f"/proc/{p}/io").splitlines():
            if line.startswith("read_bytes:"):
                rd += int(line.split()[1])
            elif line.startswith("write_bytes:"):
                wr += int(line.split()[1])
    return Sample(cpu_ticks=ticks, mem=mem, read=rd, write=wr, pids=n)


def mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _human(n: float) -> str:
    """docker's binary units for memory (``1.5MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n}B"


def _size(n: float) -> str:
    """docker's decimal units for I/O (``1.2MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def _chosen(args: argparse.Namespace, ctx: Any) -> list[Any]:
    from .containers import _resolve
    from .ps import _entries

    if args.containers:
        out = []
        for ref in args.containers:
            out += _resolve(ctx, ref)
        return out
    return [e for e in _entries(ctx)
            if args.all or e.summary.status in ("running", "paused", "restarting")]


def rows(entries: list[Any], interval: float, trunc: bool = True) -> list[dict[str, str]]:
    total = mem_total()
    pids = {e.name: container_pids(e.state.pid if e.summary.status in (
        "running", "paused", "restarting") else None) for e in entries}
    first = {n: sample(p) for n, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(interval)
    dt = max(time.monotonic() - t0, 1e-6)
    out = []
    for e in entries:
        a, b = first[e.name], sample(pids[e.name])
        cpu = max(b.cpu_ticks - a.cpu_ticks, 0) / TICKS / dt * 100
        mem_pct = b.mem / total * 100 if total else 0.0
        out.append({
            "ID": e.id[:12] if trunc else e.id, "Container": e.id[:12] if trunc else e.id,
            "Name": e.name, "CPUPerc": f"{cpu:.2f}%",
            "MemUsage": f"{_human(b.mem)} / {_human(total)}", "MemPerc": f"{mem_pct:.2f}%",
            "NetIO": "0B / 0B", "BlockIO": f"{_size(b.read)} / {_size(b.write)}",
            "PIDs": str(b.pids),
        })
    return out


def _print(ctx: Any, fmt: str, data: list[dict[str, str]]) -> None:
    if fmt == "json":
        for r in data:
            ctx.out(json.dumps(r))
    elif fmt not in ("table", ""):
        for r in data:
            ctx.out(template(fmt[6:] if fmt.startswith("table ") else fmt, r))
    else:
        table(ctx, ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                    "BLOCK I/O", "PIDS"],
              [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"],
                r["BlockIO"], r["PIDs"]] for r in data])


def run_stats(args: argparse.Namespace, ctx: Any) -> int:
    return show_stats(args, ctx, lambda: _chosen(args, ctx))


def show_stats(args: argparse.Namespace, ctx: Any, chosen: Callable[[], list[Any]]) -> int:
    """``stats`` of the containers ``chosen()`` (an index entry list, asked at each sample)."""
    if args.no_stream:
        _print(ctx, args.format, rows(chosen(), 0.5, not args.no_trunc))
        return 0
    tty = hasattr(ctx.stdout, "isatty") and ctx.stdout.isatty()
    try:
        while True:
            data = rows(chosen(), 1.0, not args.no_trunc)
            if tty:
                ctx.stdout.write("\033[2J\033[H")
            _print(ctx, args.format, data)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
