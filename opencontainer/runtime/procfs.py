"""Reading the process table from /proc: children, descendants, session members."""

from __future__ import annotations

import contextlib
import os
import signal

import attrs


@attrs.frozen
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    session: int
    state: str


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: field 3 (state) is index 0."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def proc_info(pid: int) -> ProcInfo | None:
    rest = _stat_fields(pid)
    if rest is None:
        return None
    try:
        return ProcInfo(pid, int(rest[1]), int(rest[2]), int(rest[3]), rest[0])
    except (IndexError, ValueError):
        return None


def all_procs() -> list[ProcInfo]:
    out: list[ProcInfo] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if name.isdigit():
            info = proc_info(int(name))
            if info is not None:
                out.append(info)
    return out


def children(pid: int) -> list[int]:
    """Direct children (``/proc/<pid>/task/*/children``; falls back to a scan)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    ok = False
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as fh:
                found += [int(x) for x in fh.read().split()]
            ok = True
        except (OSError, ValueError):
            continue
    if not ok:
        found = [p.pid for p in all_procs() if p.ppid == pid]
    return found


def descendants(pid: int, procs: list[ProcInfo] | None = None) -> list[int]:
    """Every process below ``pid`` (breadth first), from one snapshot of /proc."""
    procs = all_procs() if procs is None else procs
    kids: dict[int, list[int]] = {}
    for p in procs:
        kids.setdefault(p.ppid, []).append(p.pid)
    out: list[int] = []
    todo = [pid]
    while todo:
        cur = todo.pop(0)
        for c in kids.get(cur, ()):
            if c not in out and c != pid:
                out.append(c)
                todo.append(c)
    return out


def session_members(sid: int, procs: list[ProcInfo] | None = None) -> list[int]:
    procs = all_procs() if procs is None else procs
    return [p.pid for p in procs if p.session == sid and p.state != "Z"]


def alive(pid: int) -> bool:
    info = proc_info(pid)
    return info is not None and info.state not in ("Z", "X")


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def tracer_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def traced_by(tracer: int, procs: list[ProcInfo] | None = None) -> list[int]:
    """Processes ptrace-attached to ``tracer``: every process of a proot container, even
    daemons that double-forked and called setsid (they stay proot's tracees)."""
    procs = all_procs() if procs is None else procs
    return [p.pid for p in procs if p.state != "Z" and tracer_of(p.pid) == tracer]


def pid_namespace(pid: int) -> str | None:
    """``pid``'s PID namespace (``pid:[4026531836]``), None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def in_new_pid_namespace(pid: int) -> list[int]:
    """The children of ``pid`` in another PID namespace than its own: the container's pid 1
    when ``pid`` is the native backend's namespace step (its short-lived helpers stay in
    ``pid``'s namespace)."""
    mine = pid_namespace(pid)
    if mine is None:
        return []
    return [k for k in children(pid) if (ns := pid_namespace(k)) and ns != mine]


def container_main(pid: int) -> int | None:
    """The main process of the container whose recorded pid is ``pid``, for either backend:
    proot's first tracee, or the native backend's pid 1 (None: not started, or gone)."""
    native = in_new_pid_namespace(pid)
    if native:
        return min(native)
    traced = traced_by(pid)
    return min(traced) if traced else None


def start_time(pid: int) -> int | None:
    """The process start time (clock ticks since boot): tells a pid from its reuse."""
    rest = _stat_fields(pid)
    if rest is None:
        return None
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def same_process(pid: int | None, started: int | None) -> bool:
    """``pid`` is alive and is still the process that started at ``started``."""
    if not pid:
        return False
    if not alive(pid):
        return False
    return started is None or start_time(pid) == started


_FATAL_BY_DEFAULT = frozenset(
    int(s) for s in (
        signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP,
        signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGKILL, signal.SIGUSR1,
        signal.SIGSEGV, signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM,
        signal.SIGXCPU, signal.SIGXFSZ, signal.SIGVTALRM, signal.SIGPROF, signal.SIGSYS,
    )
)


def signal_is_fatal(pid: int, signo: int) -> bool:
    """Will ``signo`` kill ``pid`` (default action, neither caught, ignored nor blocked)?"""
    if signo == signal.SIGKILL:
        return True
    if signo not in _FATAL_BY_DEFAULT:
        return False
    masks: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                key, _, value = line.partition(b":")
                if key in (b"SigCgt", b"SigIgn", b"SigBlk"):
                    masks[key.decode()] = int(value.strip(), 16)
    except (OSError, ValueError):
        return False
    bit = 1 << (signo - 1)
    if any(masks.get(k, 0) & bit for k in ("SigCgt", "SigIgn", "SigBlk")):
        return False
    # waiting in sigtimedwait (an init such as tini): the kernel shows the waited signals as
    # unblocked meanwhile, yet they are taken synchronously, not fatal
    return not _in_sigwait(pid)


# rt_sigtimedwait's number per machine
_SIGTIMEDWAIT = {"x86_64": 128, "aarch64": 137, "riscv64": 137, "armv7l": 177, "armv8l": 177,
                 "i686": 177, "i386": 177}


def _in_sigwait(pid: int) -> bool:
    nr = _SIGTIMEDWAIT.get(os.uname().machine)
    try:
        with open(f"/proc/{pid}/syscall", "rb") as fh:
            first = fh.read().split(maxsplit=1)[:1]
    except OSError:
        return False
    return nr is not None and first == [str(nr).encode()]
