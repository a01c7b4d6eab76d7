"""A running container: proot started from ``run.sh``, its tracee, signals, stop, wait.

``run.sh`` execs (through the optional seccomp wrapper and ``env -i``) into proot, so the pid we
start *is* proot's; proot's child is the container's main process (the tracee). proot does not
forward SIGTERM, so signals go to the tracee. Docker's container lifetime is its main process:
when the tracee is gone but proot still waits for orphaned background processes (an old proot
without ``--kill-on-exit``), those are killed. ``stop`` is Docker's: stop signal, grace period,
then SIGKILL to every process of the container (descendants, the session, the process group —
tracees first, so that none is left running untraced).

Exit codes: proot exits with the last *normal* exit status of any of its processes and never
reports a signal death (255 when there is none). So: the main process's own ``exit N`` comes
through; after our SIGKILL we report 137; after a signal we sent that the main process neither
catches, ignores nor blocks (read from ``/proc/<pid>/status``) we report 128 + n. A main process
killed by a signal *we did not send* (e.g. ``kill -9 $$`` inside) shows proot's number (255 or
an earlier child's status) instead of Docker's 128 + n.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.abc

from ..errors import ContainerError
from ..logs import logger
from . import procfs
from .signals import parse_signal as parse_signal  # checked: 1..64 or a name

log = logger()

POLL_INTERVAL = 0.2
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


def exit_code_of(returncode: int) -> int:
    """Subprocess return code -> Docker's exit code (signal deaths are 128 + n)."""
    return 128 - returncode if returncode < 0 else returncode


class ContainerProcess:
    """One proot process tree. Create with :meth:`start`."""

    def __init__(self, process: anyio.abc.Process, tty_master: int | None = None) -> None:
        self._proc = process
        self._tracee: int | None = None
        self._exit: int | None = None
        self._signalled: int | None = None
        self._fatal_signal: int | None = None
        self._started = time.monotonic()
        self.tty_master = tty_master

    # -- start -------------------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        run_sh: Path | Sequence[str],
        *,
        stdin: int | None = DEVNULL,
        stdout: int | None = PIPE,
        stderr: int | None = PIPE,
        tty: bool = False,
        winsize: tuple[int, int] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ContainerProcess:
        """Start ``run.sh`` (or an explicit argv) in a new session.

        With ``tty=True`` the container gets a pty (its controlling terminal); the master end is
        ``tty_master`` and ``stdin``/``stdout``/``stderr`` are ignored.
        """
        argv = ["bash", str(run_sh)] if isinstance(run_sh, (str, Path)) else list(run_sh)
        master: int | None = None
        slave: int | None = None
        if tty:
            master, slave = os.openpty()
            if winsize:
                set_winsize(slave, *winsize)
            argv = [sys.executable, "-m", "opencontainer.runtime.ctty", "--", *argv]
            stdin = stdout = stderr = slave
        try:
            proc = await anyio.open_process(
                argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=dict(env) if env is not None else None,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
            )
        except OSError as exc:
            if master is not None:
                os.close(master)
            raise ContainerError(f"cannot start the container: {exc.strerror or exc}.") from exc
        finally:
            if slave is not None:
                os.close(slave)
        return cls(proc, master)

    # -- introspection -----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        """proot's pid (also the session and process-group id)."""
        return self._proc.pid

    @property
    def process(self) -> anyio.abc.Process:
        return self._proc

    @property
    def stdin(self) -> anyio.abc.ByteSendStream | None:
        return self._proc.stdin

    @property
    def stdout(self) -> anyio.abc.ByteReceiveStream | None:
        return self._proc.stdout

    @property
    def stderr(self) -> anyio.abc.ByteReceiveStream | None:
        return self._proc.stderr

    @property
    def returncode(self) -> int | None:
        return self._exit

    @property
    def tracee_pid(self) -> int | None:
        """The container's main process: proot's first child that proot traces, once proot
        has started it. Not just its first child: Termux's proot forks a short-lived helper
        before the tracee, and taking that for the main process made the container look gone
        (and killed it) as soon as the helper exited."""
        if self._tracee is None and self._exit is None:
            kids = [k for k in procfs.children(self.pid) if procfs.tracer_of(k) == self.pid]
            if kids:
                self._tracee = min(kids)
        return self._tracee

    async def wait_tracee(self, timeout: float = 5.0) -> int | None:
        with anyio.move_on_after(timeout):
            while self._exit is None and self._proc.returncode is None:
                t = self.tracee_pid
                if t is not None:
                    return t
                await anyio.sleep(0.02)
        return self.tracee_pid

    def all_pids(self) -> list[int]:
        """Every live process of this container (tracees first, proot last)."""
        procs = procfs.all_procs()
        pids = procfs.descendants(self.pid, procs)
        for p in procfs.traced_by(self.pid, procs) + procfs.session_members(self.pid, procs):
            if p not in pids and p != self.pid:
                pids.append(p)
        me = os.getpid()
        pids = [p for p in pids if p != me]
        if self._proc.returncode is None:
            pids.append(self.pid)
        return pids

    # -- signals -----------------------------------------------------------------------------
    def signal(self, sig: int | str) -> None:
        """Deliver ``sig`` to the container's main process (proot itself if not started yet)."""
        signo = parse_signal(sig)
        target = self.tracee_pid
        if target is not None and procfs.alive(target):
            self._signalled = signo
            if procfs.signal_is_fatal(target, signo):
                # proot does not report signal deaths (it keeps the last *exit* status of any
                # of its processes); we know this one will end the main process
                self._fatal_signal = signo
            procfs.kill_quietly(target, signo)
        elif self._proc.returncode is None:
            procfs.kill_quietly(self.pid, signo)

    def kill_all(self) -> None:
        """SIGKILL every process of the container, tracees before proot."""
        self._signalled = _signal.SIGKILL
        for _ in range(3):
            pids = self.all_pids()
            if not pids:
                break
            for p in pids:
                procfs.kill_quietly(p, _signal.SIGKILL)
            if self._proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, _signal.SIGKILL)

    def _kill_orphans(self) -> None:
        """The main process is gone: end whatever it left behind (not proot itself)."""
        procs = procfs.all_procs()
        pids = procfs.descendants(self.pid, procs)
        extra = procfs.traced_by(self.pid, procs) + procfs.session_members(self.pid, procs)
        pids += [p for p in extra if p not in pids]
        for p in pids:
            if p not in (self.pid, os.getpid()):
                procfs.kill_quietly(p, _signal.SIGKILL)

    # -- lifetime ----------------------------------------------------------------------------
    def _main_gone(self) -> bool:
        t = self.tracee_pid
        if t is not None:
            return not procfs.alive(t)
        # never saw it: proot forks it within milliseconds, so no child later means it is gone
        return time.monotonic() - self._started > 1.0 and not procfs.children(self.pid)

    async def wait(self, *, sweep: bool = True) -> int:
        """Wait for the container to end; its exit code (signal deaths: 128 + n).

        ``sweep=False``: no look through the whole machine's /proc for leftovers in our
        session (~3 ms) when proot ended by itself with nothing of it killed: proot exits
        after its last tracee, so there is nothing left (a build's RUN step)."""
        if self._exit is not None:
            return self._exit
        _ = self.tracee_pid
        orphans = False
        while True:
            with anyio.move_on_after(POLL_INTERVAL):
                rc = await self._proc.wait()
                break
            if self._main_gone():
                # Docker semantics: the container ends with its main process
                self._kill_orphans()
                orphans = True
        code = exit_code_of(rc)
        if self._signalled == _signal.SIGKILL:
            code = 128 + _signal.SIGKILL  # we killed it; proot's own status is meaningless then
        elif self._fatal_signal is not None:
            code = 128 + self._fatal_signal
        elif code == 255 and self._signalled is not None:
            # proot reports a tracee killed by a signal as 255; we know which signal we sent
            code = 128 + self._signalled
        self._exit = code
        if not sweep and rc >= 0 and not orphans and self._signalled is None:
            return code
        # leftovers that escaped proot's tree (setsid daemons keep our session only if they
        # did not call setsid themselves; those were killed while proot still knew them)
        for p in procfs.session_members(self.pid):
            if p != os.getpid():
                procfs.kill_quietly(p, _signal.SIGKILL)
        return code

    async def stop(self, sig: int | str = "SIGTERM", timeout: float = 10.0) -> int:
        """Docker's stop: ``sig`` to the main process, wait ``timeout``, then SIGKILL all."""
        if self._exit is not None:
            return self._exit
        code: int | None = None
        with anyio.CancelScope(shield=True):
            if await self.wait_tracee(timeout=min(2.0, timeout)) is None:
                if self._proc.returncode is None:
                    self.kill_all()
                code = await self.wait()
            else:
                self.signal(sig)
                with anyio.move_on_after(timeout):
                    code = await self.wait()
                if code is None:
                    log.debug("grace period over, killing", pid=self.pid)
                    self.kill_all()
                    code = await self.wait()
        assert code is not None
        return code

    async def kill(self, sig: int | str = "SIGKILL") -> None:
        """``docker kill``: SIGKILL ends everything; another signal goes to the main process."""
        signo = parse_signal(sig)
        if signo == _signal.SIGKILL:
            self.kill_all()
        else:
            self.signal(signo)

    async def aclose(self) -> None:
        if self._exit is None:
            with anyio.CancelScope(shield=True):
                self.kill_all()
                await self.wait()
        await self._proc.aclose()
        if self.tty_master is not None:
            with contextlib.suppress(OSError):
                os.close(self.tty_master)
            self.tty_master = None


def set_winsize(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int] | None:
    import fcntl
    import struct
    import termios

    try:
        data = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _, _ = struct.unpack("HHHH", data)
    return (rows, cols) if rows and cols else None
