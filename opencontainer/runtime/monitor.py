"""The keeper of one standalone container: runs its ``run.sh``, logs, records state, stops it.

``opencontainer run -d`` starts ``python -m opencontainer.runtime.monitor <container dir>`` in
its own session (``posix_spawn`` with ``setsid``; no root, no daemon) and returns; the keeper
lives as long as the container. Foreground ``run``/``start -a`` run the same :func:`keep` in the
CLI process, echoing output. Either way:

- output lines are appended to ``log.jsonl`` as ``{"t", "stream", "line"}``;
- ``state.json`` (atomic writes) says ``running`` with the pids, then ``exited`` + exit code;
- SIGTERM to the keeper means "stop": it reads ``control.json`` (written by ``stop``/``kill``:
  ``{"action": "stop", "timeout": 10, "signal": "SIGTERM"}`` or ``{"action": "kill",
  "signal": "SIGKILL"}``; no file = stop with the container's defaults);
- published ports that proot cannot map are relayed (relay.py) while the container runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import anyio.abc
import structlog

from ..errors import OpenContainerError
from ..paths import remove_tree
from . import procfs
from .container import Container, ContainerStore, now_iso
from .process import DEVNULL, PIPE, ContainerProcess, get_winsize, set_winsize
from .proot import ProotCapabilities, relayed_ports
from .relay import serve_relay

log = structlog.get_logger()

STREAM_CHUNK = 65536


class LogWriter:
    """Appends ``{"t", "stream", "line"}`` JSON lines; one line per output line."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._partial: dict[str, bytes] = {}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        self._partial[stream] = rest
        for line in lines:
            self._write(stream, line)
        if lines:
            self._fh.flush()

    def _write(self, stream: str, line: bytes) -> None:
        rec = {"t": now_iso(), "stream": stream,
               "line": line.rstrip(b"\r").decode("utf-8", errors="replace")}
        self._fh.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._write(stream, rest)
        self._partial.clear()
        self._fh.flush()
        self._fh.close()


async def _pump(src: anyio.abc.ByteReceiveStream, stream: str, logw: LogWriter,
                echo: BinaryIO | None) -> None:
    try:
        async for chunk in src:
            logw.feed(stream, chunk)
            if echo is not None:
                with contextlib.suppress(OSError, ValueError):
                    echo.write(chunk)
                    echo.flush()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


async def _pump_tty_out(master: int, logw: LogWriter | None, echo: BinaryIO | None) -> None:
    while True:
        try:
            await anyio.wait_readable(master)
            data = os.read(master, STREAM_CHUNK)
        except (OSError, anyio.ClosedResourceError):
            return
        if not data:
            return
        if logw is not None:
            logw.feed("stdout", data)
        if echo is not None:
            with contextlib.suppress(OSError, ValueError):
                echo.write(data)
                echo.flush()


async def _pump_tty_in(master: int, fd: int) -> None:
    while True:
        try:
            await anyio.wait_readable(fd)
            data = os.read(fd, STREAM_CHUNK)
        except (OSError, anyio.ClosedResourceError):
            return
        if not data:
            with contextlib.suppress(OSError):
                os.write(master, b"\x04")
            return
        with contextlib.suppress(OSError):
            os.write(master, data)


def _reap_execs(c: Container) -> None:
    """``exec`` sessions die with the container (as in Docker)."""
    d = c.dir / "execs"
    try:
        files = list(d.iterdir())
    except FileNotFoundError:
        return
    for f in files:
        try:
            pid = int(f.name.split(".")[0])
        except ValueError:
            continue
        for p in [*procfs.traced_by(pid), pid]:
            procfs.kill_quietly(p)
        with contextlib.suppress(OSError):
            f.unlink()


async def keep(
    c: Container,
    caps: ProotCapabilities,
    *,
    echo_stdout: BinaryIO | None = None,
    echo_stderr: BinaryIO | None = None,
    stdin: int | None = DEVNULL,
    tty: bool = False,
    on_started: Callable[[ContainerProcess], None] | None = None,
    proxy_sigint: bool = False,
) -> int:
    """Run the container to its end; returns its exit code. State and logs are recorded."""
    spec = c.config.spec
    logw = LogWriter(c.log_path)
    me = os.getpid()
    code = 255
    term_fd: int | None = None
    saved_tty: Any = None
    try:
        async with anyio.create_task_group() as tg:
            for host_ip, host_port, cport in relayed_ports(spec, caps):
                await tg.start(serve_relay, host_ip, host_port, cport)
            winsize = None
            if tty:
                for fd in (1, 0):
                    if os.isatty(fd):
                        winsize = get_winsize(fd)
                        break
            c.clear_control()
            proc = await ContainerProcess.start(
                c.run_sh, stdin=stdin, stdout=PIPE, stderr=PIPE, tty=tty, winsize=winsize,
            )
            c.update_state(status="running", pid=proc.pid, pid_start=procfs.start_time(proc.pid),
                           monitor_pid=me, monitor_start=procfs.start_time(me),
                           started_at=now_iso(), finished_at=None, exit_code=None, error="")
            if on_started is not None:
                on_started(proc)
            pumps = anyio.create_task_group()
            async with pumps:
                if tty:
                    assert proc.tty_master is not None
                    pumps.start_soon(_pump_tty_out, proc.tty_master, logw, echo_stdout)
                    if stdin is not None and stdin != DEVNULL and stdin >= 0:
                        term_fd = stdin
                        if os.isatty(term_fd):
                            import termios
                            import tty as ttymod

                            saved_tty = termios.tcgetattr(term_fd)
                            ttymod.setraw(term_fd, termios.TCSANOW)
                        tg.start_soon(_pump_tty_in, proc.tty_master, term_fd)
                else:
                    assert proc.stdout is not None and proc.stderr is not None
                    pumps.start_soon(_pump, proc.stdout, "stdout", logw, echo_stdout)
                    pumps.start_soon(_pump, proc.stderr, "stderr", logw, echo_stderr)
                tg.start_soon(_signals, c, proc, proxy_sigint, tty)
                code = await proc.wait()
                if tty:
                    # the pty may stay open in a killed child for a moment: do not hang on it
                    with anyio.move_on_after(1):
                        await anyio.sleep(0.05)
                    pumps.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await proc.aclose()
            tg.cancel_scope.cancel()
    except OpenContainerError as exc:
        c.update_state(status="exited", exit_code=code, finished_at=now_iso(), error=str(exc))
        raise
    finally:
        if saved_tty is not None and term_fd is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(term_fd, termios.TCSADRAIN, saved_tty)
        logw.close()
        _reap_execs(c)
    c.update_state(status="exited", exit_code=code, finished_at=now_iso())
    c.clear_control()
    return code


async def _signals(c: Container, proc: ContainerProcess, proxy_sigint: bool, tty: bool) -> None:
    sigs = [signal.SIGTERM, signal.SIGHUP]
    if proxy_sigint:
        sigs.append(signal.SIGINT)
    if tty:
        sigs.append(signal.SIGWINCH)
    spec = c.config.spec
    with anyio.open_signal_receiver(*sigs) as received:
        async for signum in received:
            if signum == signal.SIGWINCH:
                if proc.tty_master is not None:
                    ws = get_winsize(0) or get_winsize(1)
                    if ws:
                        set_winsize(proc.tty_master, *ws)
                continue
            if signum == signal.SIGINT:
                proc.signal(signal.SIGINT)
                continue
            req = c.read_control()
            action = req.get("action", "stop")
            if action == "kill":
                await proc.kill(req.get("signal", "SIGKILL"))
                continue
            timeout = float(req.get("timeout", spec.stop_timeout))
            sig = req.get("signal") or spec.stop_signal
            c.update_state(status="running")
            await proc.stop(sig, timeout)


def spawn_monitor(c: Container, env: dict[str, str] | None = None) -> int:
    """Start the detached keeper for ``c`` (new session). Returns its pid."""
    err = os.open(c.dir / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        pid = os.posix_spawn(
            sys.executable,
            # -P: the user's current directory (inherited) must not shadow modules
            [sys.executable, "-P", "-m", "opencontainer.runtime.monitor", str(c.dir)],
            dict(env if env is not None else os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, null, 1),
                (os.POSIX_SPAWN_DUP2, err, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(err)
        os.close(null)
    return pid


async def wait_running(c: Container, monitor_pid: int, timeout: float = 60.0) -> str:
    """Wait until the keeper reports the container running (or already exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = c.raw_state()
        if st.status in ("running", "exited") and st.monitor_pid == monitor_pid:
            return st.status
        # the keeper is our child until we exit: reap it if it died early
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(monitor_pid, os.WNOHANG)
            if pid == monitor_pid:
                st = c.raw_state()
                if st.status == "exited":
                    return st.status
                tail = ""
                with contextlib.suppress(OSError):
                    tail = (c.dir / "monitor.log").read_text().strip().splitlines()[-1]
                from ..errors import ContainerError

                raise ContainerError(
                    f"the container {c.name} did not start" + (f": {tail}" if tail else ".")
                )
        await anyio.sleep(0.02)
    from ..errors import ContainerError

    raise ContainerError(f"the container {c.name} did not start within {timeout:.0f} seconds.")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m opencontainer.runtime.monitor CONTAINER_DIR\n")
        return 2
    d = Path(argv[0])
    c = ContainerStore(d.parent).load(d)
    from ..paths import Paths

    caps = ProotCapabilities.detect(c.config.proot, cache_dir=Paths.from_env().cache)
    try:
        code = anyio.run(lambda: keep(c, caps), backend="asyncio")
    except OpenContainerError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    if c.config.auto_remove:
        remove_container_files(c)
    return code


def remove_container_files(c: Container, volumes: bool = True) -> None:
    if volumes:
        for v in c.config.anonymous_volumes:
            with contextlib.suppress(OSError):
                remove_tree(Path(v))
    remove_tree(c.dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
