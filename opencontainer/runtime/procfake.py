"""Plausible stand-ins for the /proc files Android hides from apps.

On Android (Termux) SELinux makes ``/proc/stat``, ``/proc/loadavg``, ``/proc/uptime``,
``/proc/version`` and ``/proc/vmstat`` unreadable to apps. ``ps``, ``top``, ``free``,
``uptime``, node's ``os.cpus()`` and Python's ``multiprocessing`` then fail inside a container.
For each such file that the host will not let us read, we write a generated one into the
container's folder and proot binds it over the real path (proot-distro does the same).
Where the host's file is readable nothing is generated and the real one is seen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

FILES = ("stat", "loadavg", "uptime", "version", "vmstat")
SUBDIR = "proc"


def unreadable(proc: Path = Path("/proc")) -> list[str]:
    """Which of :data:`FILES` cannot be read here."""
    out = []
    for name in FILES:
        try:
            with open(proc / name, "rb") as fh:
                fh.read(1)
        except OSError:
            out.append(name)
    return out


def _uptime() -> float:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # pragma: no cover - CLOCK_BOOTTIME is Linux-only
        return time.monotonic()


def stat_text() -> str:
    cpus = os.cpu_count() or 1
    up = _uptime()
    ticks = int(up * 100)  # USER_HZ
    per_cpu = [f"cpu{i} {ticks // 10} 0 {ticks // 20} {ticks} 0 0 0 0 0 0" for i in range(cpus)]
    total = f"cpu  {ticks * cpus // 10} 0 {ticks * cpus // 20} {ticks * cpus} 0 0 0 0 0 0"
    lines = [total, *per_cpu, "intr 0", "ctxt 0", f"btime {int(time.time() - up)}",
             "processes 0", "procs_running 1", "procs_blocked 0", "softirq 0 0 0 0 0 0 0 0 0 0 0"]
    return "\n".join(lines) + "\n"


def loadavg_text() -> str:
    return "0.10 0.10 0.10 1/100 1\n"


def uptime_text() -> str:
    up = _uptime()
    return f"{up:.2f} {up * (os.cpu_count() or 1):.2f}\n"


def version_text() -> str:
    u = os.uname()
    return f"Linux version {u.release} (opencontainer@localhost) (gcc) {u.version}\n"


def vmstat_text() -> str:
    keys = ("nr_free_pages 100000", "nr_inactive_anon 10000", "nr_active_anon 10000",
            "nr_inactive_file 10000", "nr_active_file 10000", "nr_dirty 0", "nr_writeback 0",
            "pgpgin 0", "pgpgout 0", "pswpin 0", "pswpout 0", "pgfault 0", "pgmajfault 0")
    return "\n".join(keys) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "stat": stat_text, "loadavg": loadavg_text, "uptime": uptime_text,
    "version": version_text, "vmstat": vmstat_text,
}


def write(directory: Path, names: list[str] | None = None) -> list[Path]:
    """Generate the unreadable files (or ``names``) into ``directory/proc``; files from an
    earlier start that are no longer needed are removed. Returns the files written."""
    want = unreadable() if names is None else names
    target = Path(directory) / SUBDIR
    written = []
    for name in FILES:
        path = target / name
        if name in want:
            target.mkdir(exist_ok=True)
            path.write_text(GENERATORS[name]())
            written.append(path)
        elif path.exists():
            path.unlink()
    return written


def binds(directory: Path) -> list[tuple[Path, str]]:
    """``(generated file, /proc path)`` pairs for proot, from what :func:`write` left."""
    target = Path(directory) / SUBDIR
    return [(target / n, f"/proc/{n}") for n in FILES if (target / n).is_file()]
