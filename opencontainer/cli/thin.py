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

import _signal
import _socket
import json
import os
import sys
import time

# typing.TYPE_CHECKING without importing typing, pathlib, socket or contextlib: this runs at
# every start of ``opencontainer run`` (together ~15 ms of imports on this machine)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any

SOCKET_NAME = "engine.sock"
LOG_NAME = "engine.log"
SOCKET_MAX = 100  # sun_path holds 108 bytes
START_WAIT = 10.0  # seconds for a new service to listen
PROTOCOL = b"OCR1"  # the first bytes of a request: protocol tag + 8 hex digits of length
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")
# ``run`` options that take no value (the rest take one, unless written --opt=value)
_FLAGS = frozenset(("--rm", "--interactive", "--init", "--privileged", "--read-only",
                    "--publish-all", "--quiet", "--no-healthcheck", "--oom-kill-disable",
                    "--disable-content-trust", "--sig-proxy"))
_SHORT_FLAGS = frozenset("iPq")


class NotTaken(Exception):
    """The service did not take the request: nothing was done, run it in-process."""


def _runtime(env: Mapping[str, str]) -> str:
    home = env.get("OPENCONTAINER_HOME")
    if home:
        return os.path.join(os.path.abspath(os.path.expanduser(home)), "run")
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return os.path.join(xdg, "opencontainer")
    state = env.get("XDG_STATE_HOME")
    base = state if state and os.path.isabs(state) else \
        os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "opencontainer", "run")


def runtime_dir(env: Mapping[str, str]) -> Path:
    """``Paths.from_env(env).runtime`` without importing attrs (checked equal in the tests)."""
    from pathlib import Path

    return Path(_runtime(env))


def _socket_str(env: Mapping[str, str]) -> str | None:
    path = os.path.join(_runtime(env), SOCKET_NAME)
    return path if len(os.fsencode(path)) < SOCKET_MAX else None


def socket_path(env: Mapping[str, str]) -> Path | None:
    """The engine service's socket; None when the path is too long for a unix socket."""
    from pathlib import Path

    path = _socket_str(env)
    return None if path is None else Path(path)


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


def _connect(path: str) -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(os.fsencode(path))
    except OSError:
        sock.close()
        return None
    return sock


def start_service(env: Mapping[str, str], path: str) -> _socket.socket | None:
    """Start the engine service (detached) and connect to it; None when it did not listen in
    time."""
    import subprocess

    run = os.path.dirname(path)
    os.makedirs(run, mode=0o700, exist_ok=True)
    with open(os.path.join(run, LOG_NAME), "ab") as log:
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


def worth_asking(argv: list[str]) -> bool:
    """Whether ``run ARGV``, not yet parsed, may be an attached run without a terminal (what
    the service takes): no ``-d``/``-t``/``--help`` among the options before the image. A
    guess on the safe side: the service parses the line itself and hands back what it does
    not take."""
    value_next = False
    for tok in argv:
        if value_next:
            value_next = False
            continue
        if tok == "--" or not tok.startswith("-") or tok == "-":
            return True  # the image: the container's own arguments follow
        name = tok.split("=", 1)[0]
        if name in ("--help", "--detach", "--tty"):
            return False
        if tok.startswith("--"):
            value_next = "=" not in tok and name not in _FLAGS
            continue
        letters = tok[1:]
        if "d" in letters or "t" in letters:
            return False
        value_next = not set(letters) <= _SHORT_FLAGS
    return False  # no image: the in-process parser says so


def build_worth_asking(argv: list[str]) -> bool:
    """Whether ``build ARGV`` may be one the service takes: not ``--help``, nothing read
    from stdin (``-f -``, context ``-``), no ``-o`` (see cli/build.for_service)."""
    for tok in argv:
        if tok in ("-h", "--help", "-", "-f-", "--file=-", "-o", "--output") or \
                tok.startswith(("--output=", "-o")):
            return False
    return True


def fast(command: str, argv: list[str]) -> int | None:
    """``opencontainer run|build ARGV`` as the whole program, before the CLI is imported:
    handed to the engine service, which parses it (usage errors and all); its exit code.
    None: not for the service (``run -d``, ``run -t``, ``build -f -``, no service): the
    caller runs the CLI as usual."""
    env = os.environ
    ask = worth_asking if command == "run" else build_worth_asking
    if not wanted(env) or not ask(argv):
        return None
    try:
        return run(argv, env, op=command)
    except NotTaken:
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


def run(argv: list[str], env: Mapping[str, str], verbose: int = 0, op: str = "run") -> int:
    """``run ARGV`` (the arguments after ``run``; ``op``: or ``build``) in the engine
    service; its exit code. Raises :class:`NotTaken` when the service cannot take it
    (nothing was done)."""
    path = _socket_str(env)
    if path is None:
        raise NotTaken("socket path too long")
    for _attempt in range(2):
        sock = _connect(path)
        if sock is None:
            sock = start_service(env, path)
            if sock is None:
                raise NotTaken("the engine service did not start")
        try:
            return _converse(sock, argv, env, verbose, op)
        except Stale:
            continue  # it gave up its socket: start ours
        finally:
            sock.close()
    raise NotTaken("the engine service runs other code")


class Stale(NotTaken):
    """The service runs other code than ours and ends: start a new one."""


def _lines(sock: _socket.socket) -> Iterator[bytes]:
    """The service's answer, line by line, until it closes (or the connection fails)."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line


def _converse(sock: _socket.socket, argv: list[str], env: Mapping[str, str],
              verbose: int, op: str) -> int:
    try:
        cwd = os.getcwd()
    except OSError:  # removed under us: as the in-process run would, refuse
        raise NotTaken("no working directory") from None
    body = json.dumps({"op": op, "argv": argv, "cwd": cwd, "env": dict(env),
                       "verbose": verbose, "code": code_id()}).encode()
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in _std_fds())
    received: list[int] = []
    sent: list[bool] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)  # the service reads them once the container runs
        if sent:  # never inside the request itself: sent after it
            try:  # noqa: SIM105 - no contextlib on the start path
                sock.sendall(b'{"signal": %d}\n' % signum)
            except OSError:
                pass

    # forwarded from before the request goes (a Ctrl-C then must not be lost either)
    previous = [(signum, _signal.getsignal(signum))
                for signum in (getattr(_signal, name) for name in FORWARDED)]
    for signum, _ in previous:
        _signal.signal(signum, forward)
    try:
        return _answer(sock, body, fds, received, sent)
    except NotTaken:  # the caller runs the command itself: with its usual signal handling
        for signum, handler in previous:
            _signal.signal(signum, handler)
        raise


def _answer(sock: _socket.socket, body: bytes, fds: bytes, received: list[int],
            sent: list[bool]) -> int:
    try:
        sock.sendmsg([PROTOCOL + b"%08x" % len(body)],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        sock.sendall(body)
        sent.append(True)
        for signum in list(received):  # arrived while the request was on its way
            sock.sendall(b'{"signal": %d}\n' % signum)
    except OSError as exc:
        raise NotTaken(str(exc)) from exc
    taken = False
    for line in _lines(sock):
        msg: dict[str, Any] = json.loads(line)
        if msg.get("stale"):
            raise Stale("the engine service runs other code")
        if msg.get("inline"):  # not for the service (-d, -t): nothing was done
            raise NotTaken("the service does not run this")
        if msg.get("taken"):
            taken = True
        if "error" in msg:
            sys.stderr.write(f"Error: {msg['error']}\n")
        if "exit" in msg:
            return int(msg["exit"])
    if not taken:
        if received:  # interrupted before anything was done
            return 128 + received[0]
        raise NotTaken("the engine service closed the connection")
    sys.stderr.write("Error: the engine service ended before the container did; "
                     "see 'opencontainer ps -a'.\n")
    return 125
