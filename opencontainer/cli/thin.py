"""The attached ``run`` as a thin client of the user's engine service (cli/engined.py).

``opencontainer run [--rm] IMAGE CMD`` without ``-d`` and ``-t`` parses its command line here
(a usage error is still one sentence and exit 125), then hands it to the engine service of
this user's ``OPENCONTAINER_HOME`` through its socket (``<runtime>/engine.sock``): the
arguments, the working directory, the environment and the standard input, output and error
file descriptors themselves (``SCM_RIGHTS``). The service creates, supervises and removes the
container, the client forwards SIGINT/SIGTERM/SIGHUP to it and exits with the container's exit
code. No service running: the client starts one (a new session, its output to
``<runtime>/engine.log``; it ends after ``OPENCONTAINER_ENGINE_IDLE`` seconds, default 600,
without containers or requests) and waits for its socket.

Whatever goes wrong before the service has taken the request (no service can be started, it
was ending, the socket path is too long) leaves nothing done: the caller then runs the
container in its own process as before. ``OPENCONTAINER_ENGINE=inline`` always does.

This module is on the start path of every ``run``: the standard library only, and little of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SOCKET_NAME = "engine.sock"
LOG_NAME = "engine.log"
SOCKET_MAX = 100  # sun_path holds 108 bytes
START_WAIT = 10.0  # seconds for a new service to listen
PROTOCOL = b"OCR1"  # the first bytes of a request: protocol tag + 8 hex digits of length
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")


class NotTaken(Exception):
    """The service did not take the request: nothing was done, run it in-process."""


def runtime_dir(env: Mapping[str, str]) -> Path:
    """``Paths.from_env(env).runtime`` without importing attrs (checked equal in the tests)."""
    home = env.get("OPENCONTAINER_HOME")
    if home:
        return Path(home).expanduser().absolute() / "run"
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / "opencontainer"
    state = env.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else \
        Path(env.get("HOME") or os.path.expanduser("~")) / ".local" / "state"
    return base / "opencontainer" / "run"


def socket_path(env: Mapping[str, str]) -> Path | None:
    """The engine service's socket; None when the path is too long for a unix socket."""
    path = runtime_dir(env) / SOCKET_NAME
    return path if len(os.fsencode(path)) < SOCKET_MAX else None


def wanted(env: Mapping[str, str]) -> bool:
    return env.get("OPENCONTAINER_ENGINE", "service").lower() not in ("inline", "0", "off",
                                                                      "no", "false")


def code_id() -> str:
    """Which code this is: a service started from other files (an upgrade since) hands its
    socket over to a new one instead of running requests with old code."""
    from .._version import __version__

    try:
        mtime = os.stat(__file__).st_mtime_ns
    except OSError:
        mtime = 0
    return f"{__version__}:{__file__}:{mtime}"


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fsencode(path))
    except OSError:
        sock.close()
        return None
    return sock


def start_service(env: Mapping[str, str], path: Path) -> socket.socket | None:
    """Start the engine service (detached) and connect to it; None when it did not listen in
    time."""
    import subprocess

    run = path.parent
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(run / LOG_NAME, "ab") as log:
        subprocess.Popen([sys.executable, "-m", "opencontainer", "engine-service"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                         env=dict(env), start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_WAIT
    delay = 0.005
    while time.monotonic() < deadline:
        sock = _connect(path)
        if sock is not None:
            return sock
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    return None


def _std_fds() -> list[int]:
    """Our stdin, stdout and stderr (``/dev/null`` for one that is closed)."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def run(argv: list[str], env: Mapping[str, str], verbose: int = 0) -> int:
    """``run ARGV`` (the arguments after ``run``) in the engine service; its exit code.
    Raises :class:`NotTaken` when the service cannot take it (nothing was done)."""
    path = socket_path(env)
    if path is None:
        raise NotTaken("socket path too long")
    for _attempt in range(2):
        sock = _connect(path)
        if sock is None:
            sock = start_service(env, path)
            if sock is None:
                raise NotTaken("the engine service did not start")
        with sock:
            try:
                return _converse(sock, argv, env, verbose)
            except Stale:
                continue  # it gave up its socket: start ours
    raise NotTaken("the engine service runs other code")


class Stale(NotTaken):
    """The service runs other code than ours and ends: start a new one."""


def _converse(sock: socket.socket, argv: list[str], env: Mapping[str, str],
              verbose: int) -> int:
    import signal

    try:
        cwd = os.getcwd()
    except OSError:  # removed under us: as the in-process run would, refuse
        raise NotTaken("no working directory") from None
    body = json.dumps({"op": "run", "argv": argv, "cwd": cwd, "env": dict(env),
                       "verbose": verbose, "code": code_id()}).encode()
    try:
        socket.send_fds(sock, [PROTOCOL + b"%08x" % len(body)], _std_fds())
        sock.sendall(body)
    except OSError as exc:
        raise NotTaken(str(exc)) from exc
    fh = sock.makefile("rb")
    taken = False
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)  # the service reads them once the container runs
        with contextlib.suppress(OSError):
            sock.sendall(b'{"signal": %d}\n' % signum)

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    while True:
        try:
            line = fh.readline()
        except OSError:
            line = b""
        if not line:
            if not taken:
                if received:  # interrupted before anything was done
                    return 128 + received[0]
                raise NotTaken("the engine service closed the connection")
            sys.stderr.write("Error: the engine service ended before the container did; "
                             "see 'opencontainer ps -a'.\n")
            return 125
        msg: dict[str, Any] = json.loads(line)
        if msg.get("stale"):
            raise Stale("the engine service runs other code")
        if msg.get("taken"):
            taken = True
        if "error" in msg:
            sys.stderr.write(f"Error: {msg['error']}\n")
        if "exit" in msg:
            return int(msg["exit"])
