"""The libc and ``/proc`` helpers the runtime's steps share (:mod:`nsexec`, :mod:`native`,
:mod:`netns`): calling libc with errno, writing a ``/proc`` file in one ``write``, and pid
files that name a process by pid *and* start time (a recycled pid is not taken for it).

The steps run at every container start, exec and health probe, from their cached bytecode
(:mod:`step`): standard library only, and as little of it as can be.
"""

from __future__ import annotations

import ctypes
import os


class StepError(OSError):
    """A step could not set something up: ``(errno, sentence)``, or just the sentence;
    ``str()`` is the sentence alone."""

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()


def default_signals() -> None:
    """SIGPIPE and SIGXFSZ back to their defaults, before a container's process is exec'd:
    Python ignores both at start-up, and an ignored signal stays ignored across ``exec``.
    Docker's containers start with none ignored (``yes | head -1`` ends quietly)."""
    import _signal

    for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(signum, _signal.SIG_DFL)


def libc() -> ctypes.CDLL:
    # NOT ctypes.util.find_library: it runs ldconfig/gcc as child processes, and the first
    # child of a container's pid is taken for its main process (process.tracee_pid): the
    # container was then "gone" as soon as ldconfig exited, and was killed.
    return ctypes.CDLL(None, use_errno=True)


def check(ret: int, what: str, error: type[StepError] = StepError) -> None:
    """Raise ``error`` ("WHAT: strerror") when a libc call returned non-zero."""
    if ret != 0:
        e = ctypes.get_errno()
        raise error(e, f"{what}: {os.strerror(e)}")


def write_file(path: str, text: str) -> None:
    """``text`` in one ``write`` (``uid_map`` and friends take nothing else)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def read_pidfile(path: str) -> tuple[int, int | None]:
    """A pid file's ``PID [START_TIME]``."""
    with open(path) as fh:
        parts = fh.read().split()
    return int(parts[0]), (int(parts[1]) if len(parts) > 1 else None)


def live_pid(path: str) -> int | None:
    """The pid in ``path`` if that very process (same start time) is still alive."""
    try:
        pid, started = read_pidfile(path)
    except (OSError, ValueError, IndexError):
        return None
    now = start_time(pid)
    if now is None or (started is not None and now != started):
        return None
    return pid


def write_pidfile(path: str, pid: int) -> None:
    """``PID START_TIME`` in ``path``, replaced atomically."""
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{pid} {start_time(pid) or 0}\n")
    os.replace(tmp, path)
