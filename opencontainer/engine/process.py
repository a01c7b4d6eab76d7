"""A supervised child process: its own session, piped output, signals to the main process.

For proot the process we start (``run.sh``, which ``exec``s proot) is the tracer; PRoot does not
forward signals to its tracee, so the stop signal goes to proot's first child (the container's
main process), as Docker sends it to PID 1. SIGKILL goes to the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import attrs
from anyio.abc import ByteReceiveStream, Process

from .state import proc_start_time


def parse_signal(name: str | int) -> int:
    if isinstance(name, int):
        return name
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(_signal, text))
    except AttributeError:
        from ..errors import ConfigError

        raise ConfigError(f"unknown signal {name!r}.") from None


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _exe_name(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def main_process(pid: int, traced: bool) -> int:
    """The container's main process: for proot, its first child (the first tracee; proot >=
    5.2 shows it under its loader's name ``prooted-*``), else ``pid`` itself."""
    if not traced:
        return pid
    if os.path.basename(_exe_name(pid)).startswith("prooted"):
        return pid
    kids = children(pid)
    return kids[0] if kids else pid


@attrs.define(eq=False)
class ProcessHandle:
    process: Process
    traced: bool = False
    pid_start: int | None = None

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        traced: bool,
    ) -> ProcessHandle:
        proc = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(cwd),
            env=dict(env),
            start_new_session=True,
        )
        return cls(process=proc, traced=traced, pid_start=proc_start_time(proc.pid))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> ByteReceiveStream | None:
        return self.process.stdout

    @property
    def stderr(self) -> ByteReceiveStream | None:
        return self.process.stderr

    def main_pid(self) -> int:
        return main_process(self.pid, self.traced)

    def signal(self, sig: int) -> None:
        """Deliver ``sig`` to the container's main process (SIGKILL: the whole group)."""
        if sig == _signal.SIGKILL:
            self.kill_group()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.main_pid(), sig)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, _signal.SIGKILL)

    async def wait(self) -> int:
        code = await self.process.wait()
        return 128 - code if code < 0 else code

    async def aclose(self) -> None:
        self.kill_group()
        with anyio.CancelScope(shield=True):
            await self.process.aclose()
