"""Runtime steps started ahead of need (runtime/zygote.py), for the engine service.

A container of the native backend starts with ``python step.py native``, a build step under
an old proot with ``python seccomp.py`` in front of proot: ~10-20 ms of interpreter start-up
on every start, which the engine service, a long-lived process, can pay before it is asked.
:class:`ZygotePool` keeps one such process started (its stdout and stderr pipes, its own
session, like any container process); :meth:`ZygotePool.take` hands it out, and
:meth:`ZygotePool.fill` starts the next one once the request is answered (a run) or while
the step runs (a build). Only for a command that begins with one of those steps and runs
without a terminal or an attached stdin: anything else is started as before.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from ..runtime.overlay import step_argv

STEP_SCRIPTS = ("/runtime/step.py", "/runtime/seccomp.py")


def useful(argv: Sequence[str]) -> bool:
    """Whether ``argv`` starts one of our Python steps (after ``env -i NAME=VALUE...``)."""
    head = list(argv[:64])
    return sys.executable in head and any(a.endswith(STEP_SCRIPTS) for a in head)


class ZygotePool:
    """One started step waiting, refilled after each :meth:`take` (in ``tg``)."""

    def __init__(self, tg: anyio.abc.TaskGroup, env: Mapping[str, str], cwd: Path) -> None:
        self._tg = tg
        self._env = dict(env)
        self._cwd = cwd
        self._ready: list[anyio.abc.Process] = []
        self._starting = False
        self._closed = False
        self.failed = False  # a step could not be started: the pool gives up

    def take(self, argv: Sequence[str]) -> anyio.abc.Process | None:
        """A started step for ``argv`` (None: none ready, or not a step's command). The next
        one is started by :meth:`fill`, when the taker says (after its answer: starting a
        process from this one costs a few ms of the event loop)."""
        if self._closed or not useful(argv):
            return None
        proc = None
        while self._ready and proc is None:
            candidate = self._ready.pop(0)
            if candidate.returncode is None:
                proc = candidate
        return proc

    def fill(self) -> None:
        """Start a step in the background unless one is ready or starting."""
        if self._closed or self.failed or self._starting or self._ready:
            return
        self._starting = True
        self._tg.start_soon(self._start)

    async def _start(self) -> None:
        try:
            proc = await anyio.open_process(
                step_argv("zygote", isolated=True), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env,
                cwd=str(self._cwd), start_new_session=True)
        except OSError:
            self.failed = True
            return
        finally:
            self._starting = False
        if self._closed:
            await _discard(proc)
        else:
            self._ready.append(proc)

    async def close(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            while self._ready:
                await _discard(self._ready.pop())


async def launch(proc: anyio.abc.Process, argv: Sequence[str], env: Mapping[str, str],
                 cwd: Path | str) -> bool:
    """Tell a started step to run ``argv`` (with ``env``, in ``cwd``); False when it cannot
    be told (it ended): then it is gone, and the caller starts ``argv`` itself."""
    assert proc.stdin is not None
    body = json.dumps({"argv": list(argv), "env": dict(env), "cwd": str(cwd)}).encode()
    try:
        await proc.stdin.send(body)
        await proc.stdin.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await _discard(proc)
        return False
    return True


async def _discard(proc: anyio.abc.Process) -> None:
    """An unused step: its stdin closed, it ends by itself (killed if it does not)."""
    with anyio.CancelScope(shield=True):
        if proc.stdin is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError,
                                     OSError):
                await proc.stdin.aclose()
        with anyio.move_on_after(2):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await _close_streams(proc)


async def _close_streams(proc: Any) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            await stream.aclose()
