"""``opencontainer engine-service``: the user's engine service (internal).

One process per ``OPENCONTAINER_HOME`` (per runtime directory) that keeps the engine imported
and warm, so that an attached ``run`` costs a thin client (cli/thin.py) instead of a whole
engine start. It listens on ``<runtime>/engine.sock`` (mode 0600, and a connection from
another uid is refused). Each request is one ``run`` with the client's arguments, working
directory, environment and standard streams (file descriptors passed with ``SCM_RIGHTS``):
the service creates the container in an :class:`~opencontainer.engine.engine.Engine` of that
environment, supervises it exactly as the in-process ``run`` does (restart policy, health,
log, events, the project's control socket for ``ps``/``stop``/``logs`` …), removes it with
``--rm``, and answers the exit code. The client's SIGINT is forwarded to the container
(docker's sig-proxy), SIGTERM/SIGHUP stop it. A client that goes away does not stop its
container (as with ``docker run``).

It ends after ``OPENCONTAINER_ENGINE_IDLE`` seconds (default 600) without a container or a
request, or as soon as its socket is removed (its home deleted). Started by the first client
in a new session with its output to ``<runtime>/engine.log``; a second service for the same
socket exits at once (the ``engine.lock`` flock).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gc
import json
import os
import queue
import signal
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs

from ..engine.netholder import NetHolder
from ..paths import remove_tree
from .thin import PROTOCOL, code_id, socket_path

IDLE_DEFAULT = 600.0
WATCH_EVERY = 1.0
MAX_REQUEST = 4 << 20


def configure_engine_service(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle", type=float, default=None,
                        help="seconds without containers or requests before it ends "
                             "(default: OPENCONTAINER_ENGINE_IDLE or 600)")


def run_engine_service(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..errors import StateError

    path = socket_path(ctx.env)
    if path is None:
        raise StateError("the engine service's socket path is too long; set a shorter "
                         "OPENCONTAINER_HOME or XDG_RUNTIME_DIR.")
    idle = args.idle
    if idle is None:
        try:
            idle = float(ctx.env.get("OPENCONTAINER_ENGINE_IDLE") or IDLE_DEFAULT)
        except ValueError:
            idle = IDLE_DEFAULT
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = os.open(path.parent / "engine.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return 0  # another service has this socket
    _warm()
    anyio.run(_serve, path, ctx, idle, lock, backend="asyncio")
    return 0


def _warm() -> None:
    """Import what every request needs, once, and keep it out of the collector's way."""
    from ..api import control  # noqa: F401
    from ..engine import engine, events, runner, standalone, supervisor  # noqa: F401
    from ..image import policy, store  # noqa: F401
    from ..runtime import create, process, rootfs  # noqa: F401
    from . import containers  # noqa: F401

    gc.collect()
    gc.freeze()


USERNS_FOR = 30.0  # seconds a user namespace probe of the service's stays good


class Warm:
    """What the service keeps ready between requests, off their start path: the runner's
    probes (proot's capabilities, whether user namespaces work: re-probed after each
    request) and one private network per network model, up before a container needs it
    (a new project adopts it instead of starting its own holder, ~50 ms)."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.runners: dict[tuple[str, ...], Any] = {}
        self.spares: dict[Any, Any] = {}  # NetworkChoice -> a running NetHolder
        self.wanted: set[Any] = set()
        self.starting: set[Any] = set()
        self.failed: set[Any] = set()
        self.count = 0
        self.tg: Any = None
        self.doomed: list[Path] = []
        self.deleting = False
        self.trash: set[Path] = set()
        self.swept: set[Path] = set()
        self.plugin_memo: dict[tuple[str, str], tuple[int, bool]] = {}
        self.zygotes: Any = None  # engine/zygotes.ZygotePool, once the service runs

    def prepare(self, engine: Any) -> None:
        """A request's engine: given what earlier ones found out."""
        from ..engine.runner import ProotRunner

        runner = engine.runner
        if isinstance(runner, ProotRunner):
            key = (str(runner.paths.cache), runner.env.get("OPENCONTAINER_PROOT", ""),
                   runner.env.get("PATH", ""))
            prev = self.runners.get(key)
            if prev is not None:
                runner.share_probes(prev, userns_for=USERNS_FOR)
            self.runners[key] = runner
            runner.defer_delete = self.delete
            runner.zygotes = self.zygotes
        engine.spare_network = self.take
        engine.plugin_memo = self.plugin_memo

    def delete(self, path: Path) -> None:
        """A removed container's files (already out of sight, in ``data/trash``): deleted
        after the answer, one at a time. Whatever a killed service leaves there goes with
        the next service's first request."""
        self.trash.add(path.parent)
        self.doomed.append(path)
        if self.tg is not None and not self.deleting:
            self.deleting = True
            self.tg.start_soon(self._delete_all)

    async def _delete_all(self) -> None:
        import anyio

        try:
            while self.doomed:
                path = self.doomed.pop(0)
                await anyio.to_thread.run_sync(
                    functools.partial(remove_tree, path, ignore_errors=True),
                    abandon_on_cancel=False)
        finally:
            self.deleting = False

    def sweep(self, trash: Path) -> None:
        """What an earlier service left in ``trash`` (once per trash folder)."""
        if trash in self.swept:
            return
        self.swept.add(trash)
        with contextlib.suppress(OSError):
            for p in trash.iterdir():
                if p not in self.doomed:
                    self.delete(p)

    def take(self, choice: Any) -> Any:
        self.wanted.add(choice)
        holder = self.spares.pop(choice, None)
        if holder is not None and not holder.running:
            self.tg.start_soon(holder.stop)
            holder = None
        return holder

    def after_request(self) -> None:
        """Refill what the request used, re-probe user namespaces: in the background."""
        if self.tg is None:
            return
        for choice in self.wanted - self.starting - self.failed - set(self.spares):
            self.starting.add(choice)
            self.tg.start_soon(self._spare, choice)
        if self.zygotes is not None:
            self.zygotes.fill()
        for runner in self.runners.values():
            self.tg.start_soon(_refresh, runner)
        for trash in list(self.trash):
            self.sweep(trash)

    async def _spare(self, choice: Any) -> None:
        self.count += 1
        holder = SpareHolder(directory=self.runtime / "net" / f"{os.getpid()}-{self.count}",
                             forwarder=choice.forwarder, binary=choice.binary, sub=choice.sub)
        try:
            await holder.ensure([])
        except Exception as exc:  # the projects make their own, as without the service
            print(f"engine service: no spare network ({exc})", flush=True)
            self.failed.add(choice)
            await holder.stop()
            return
        finally:
            self.starting.discard(choice)
        self.spares[choice] = holder

    async def close(self) -> None:
        import anyio

        with anyio.CancelScope(shield=True):
            if self.zygotes is not None:
                await self.zygotes.close()
            for holder in list(self.spares.values()):
                await holder.stop()
            self.spares.clear()
            while self.deleting or self.doomed:
                if not self.deleting:
                    await self._delete_all()
                else:
                    await anyio.sleep(0.05)


async def _refresh(runner: Any) -> None:
    import anyio

    await anyio.to_thread.run_sync(runner.refresh_userns)


@attrs.define(eq=False)
class SpareHolder(NetHolder):
    """A network started ahead in the service's runtime folder: its folder goes when it
    stops (whoever adopted it stops it)."""

    async def stop(self) -> None:
        await super().stop()
        remove_tree(self.directory, ignore_errors=True)


def newest_code() -> int:
    """The newest modification time of the package's Python files (~1 ms)."""
    root = Path(__file__).resolve().parents[1]
    newest = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with contextlib.suppress(OSError):
                    newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    return newest


class Service:
    """The requests and containers in flight, for the idle timer."""

    def __init__(self, idle: float, warm: Warm | None = None) -> None:
        self.stoppers: set[Any] = set()  # each request's signal stream
        self.code = code_id()
        self.stale = False  # a client of other code came: end (the socket is gone already)
        self.code_files = newest_code()
        self.path: Path | None = None
        self.ino = 0
        self.lock = -1  # engine.lock, flocked: who may bind the socket
        self.idle = idle
        self.active = 0
        self.last = time.monotonic()
        self.warm = warm or Warm(Path("."))
        self.parsers = Parsers()

    def release(self) -> None:
        """Remove our socket (not a successor's) and let a successor bind a new one, while
        we finish what we have."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self.ino:
                    self.path.unlink()
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self.last = time.monotonic()

    def idle_for(self) -> float:
        return 0.0 if self.active else time.monotonic() - self.last


async def _serve(path: Path, ctx: Any, idle: float, lock: int) -> None:
    import anyio

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    # spare networks' folders of a service that was killed (we hold the lock: none is ours)
    remove_tree(path.parent / "net", ignore_errors=True)
    listener = await anyio.create_unix_listener(path)
    os.chmod(path, 0o600)
    ino = path.stat().st_ino
    service = Service(idle, Warm(path.parent))
    service.path, service.ino, service.lock = path, ino, lock
    print(f"engine service {os.getpid()} listening on {path}", flush=True)
    async with listener, anyio.create_task_group() as tg:
        service.warm.tg = tg
        from ..engine.runner import host_env
        from ..engine.zygotes import ZygotePool

        service.warm.zygotes = ZygotePool(tg, host_env(), path.parent)
        service.warm.zygotes.fill()

        async def accept() -> None:
            while True:
                conn = await listener.accept()
                tg.start_soon(_connection, conn, ctx, service)

        tg.start_soon(accept)
        stop = anyio.Event()

        async def signals() -> None:
            import signal

            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT,
                                            signal.SIGHUP) as received:
                async for signum in received:
                    print(f"engine service: signal {signum}, ending (its containers stop)",
                          flush=True)
                    stop.set()
                    return

        tg.start_soon(signals)
        while not stop.is_set():
            with anyio.move_on_after(min(WATCH_EVERY, max(service.idle, 0.05))):
                await stop.wait()
            if stop.is_set():
                service.release()
                await _stop_all(service)
                break
            try:
                ours = path.stat().st_ino == ino
            except OSError:
                ours = False
            if not ours and not service.stale:  # removed (its home deleted?): end when idle
                print("engine service: socket gone, ending", flush=True)
                service.stale = True
            if not service.stale and service.code_files != await anyio.to_thread.run_sync(
                    newest_code):
                # our files changed in place (an edit, a reinstall over them): what we run
                # is not what a new client would import; the next one starts a new service
                print("engine service: its code changed, ending", flush=True)
                service.stale = True
            if service.idle_for() >= service.idle or service.stale:
                service.release()  # no new connection from here on
                await anyio.sleep(0.1)  # one queued before the unlink is served first
                if service.active == 0:
                    print("engine service: idle, ending", flush=True)
                    break
                # a late request: serve it, and a new service takes the next ones
                while service.active:
                    await anyio.sleep(0.1)
                break
        await service.warm.close()
        tg.cancel_scope.cancel()


STOP_WAIT = 20.0  # seconds the service's containers get to stop when it is told to end


async def _stop_all(service: Service) -> None:
    """Stop every container of the service as its client's SIGTERM would (``--rm`` ones are
    removed), then end: what is still running after :data:`STOP_WAIT` is killed."""
    import signal

    import anyio

    for stream in list(service.stoppers):
        with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError):
            stream.send_nowait(signal.SIGTERM)
    with anyio.move_on_after(STOP_WAIT):
        while service.active:
            await anyio.sleep(0.05)


def _peer_uid(conn: Any) -> int:
    import anyio.abc

    raw: socket.socket = conn.extra(anyio.abc.SocketAttribute.raw_socket)
    creds = raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


async def _connection(conn: Any, ctx: Any, service: Service) -> None:
    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    fds: list[int] = []
    with service.busy():
        async with conn:
            try:
                if _peer_uid(conn) != os.getuid():
                    return
                head, fds = await conn.receive_fds(len(PROTOCOL) + 8, 3)
                for fd in fds:
                    os.set_inheritable(fd, False)
                if len(head) != len(PROTOCOL) + 8 or not head.startswith(PROTOCOL) or \
                        len(fds) != 3:
                    return
                size = int(head[len(PROTOCOL):], 16)
                if size > MAX_REQUEST:
                    return
                reader = BufferedByteReceiveStream(conn)
                req = json.loads(await reader.receive_exactly(size))
            except (anyio.EndOfStream, anyio.BrokenResourceError, ValueError, OSError):
                _close(fds)
                return
            if req.get("code") != service.code:  # an upgrade: a new service takes over
                print("engine service: a client of other code, handing over", flush=True)
                service.stale = True
                service.release()
                await _send(conn, {"stale": True})
                _close(fds)
                return
            try:
                await _run_request(conn, reader, req, fds, service)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            finally:
                _close(fds)


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


async def _send(conn: Any, msg: dict[str, Any]) -> None:
    import anyio

    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await conn.send(json.dumps(msg).encode() + b"\n")


class FdText:
    """A client's stream as the CLI context's ``stdout``/``stderr`` (short messages: written
    at once)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = FdWriter(fd)

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            _write_all(self.fd, data)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def fileno(self) -> int:
        return self.fd


class FdWriter:
    """A container's output to a client's stream, written by a thread of its own: a reader
    that is slow (or never reads) holds up that container's output only, not the service."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> int:
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, daemon=True,
                                            name=f"client-fd-{self.fd}")
            self._thread.start()
        self._queue.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def _drain(self) -> None:
        broken = False
        while True:
            data = self._queue.get()
            if data is None:
                return
            if not broken:
                try:
                    _write_all(self.fd, data)
                except OSError:
                    broken = True  # the reader went away: the rest is dropped

    async def aclose(self) -> None:
        """Until everything written so far has reached the stream."""
        import anyio

        if self._thread is not None:
            self._queue.put(None)
            await anyio.to_thread.run_sync(self._thread.join)
            self._thread = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _absolute(args: argparse.Namespace, cwd: str) -> None:
    """The client's relative file names, from its working directory."""
    def fix(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(cwd, p)

    args.env_file = [fix(p) for p in args.env_file]
    args.label_file = [fix(p) for p in args.label_file]
    if args.cidfile:
        args.cidfile = fix(args.cidfile)


class Parsers:
    """The ``run`` and ``build`` parsers, each built once (argparse parsers are reusable)."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._made:
            from .main import CONTAINER_COMMANDS, IMAGE_COMMANDS, _build_command_parser

            module, helptext = {**CONTAINER_COMMANDS, **IMAGE_COMMANDS}[name]
            self._made[name], _ = _build_command_parser("opencontainer", name, module,
                                                        helptext, False)
        return self._made[name]

    def run(self) -> Any:
        return self.get("run")


async def _client_signals(reader: Any) -> AsyncIterator[int]:
    """The signals the client forwards (``{"signal": N}`` lines), until it goes away."""
    import anyio

    while True:
        try:
            line = await reader.receive_until(b"\n", 4096)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound,
                anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            signum = json.loads(line).get("signal")
            if isinstance(signum, int):
                yield signum


def _request_context(req: dict[str, Any], fds: list[int]) -> tuple[Any, str]:
    """The CLI context of a request (the client's environment and streams), its cwd."""
    from .main import CliContext

    env = {str(k): str(v) for k, v in dict(req.get("env") or {}).items()}
    cwd = str(req.get("cwd") or "/")
    env.setdefault("PWD", cwd)
    ctx = CliContext(env=env, stdout=FdText(fds[1]), stderr=FdText(fds[2]),  # type: ignore[arg-type]
                     verbose=int(req.get("verbose") or 0))
    return ctx, cwd


async def _parse(conn: Any, req: dict[str, Any], ctx: Any, service: Service,
                 command: str) -> argparse.Namespace | None:
    """The request's command line; None when it was a usage error (or help), answered.
    The client does not parse it (cli/thin.fast): argparse's usage error or help goes to its
    streams, with docker's exit status for a usage error."""
    try:
        with contextlib.redirect_stderr(ctx.stderr), contextlib.redirect_stdout(ctx.stdout):
            args = service.parsers.get(command).parse_args(
                [str(a) for a in req.get("argv") or ()])
    except SystemExit as exc:
        code = int(exc.code or 0)
        await _send(conn, {"taken": True, "exit": 125 if code == 2 else code})
        return None
    assert isinstance(args, argparse.Namespace)
    return args


async def _run_request(conn: Any, reader: Any, req: dict[str, Any], fds: list[int],
                       service: Service) -> None:
    if req.get("op") == "build":
        await _build_request(conn, reader, req, fds, service)
        return
    import anyio

    from ..engine.runner import Attachment
    from ..errors import OpenContainerError
    from . import containers

    stdin_fd, out_fd, err_fd = fds
    ctx, cwd = _request_context(req, fds)
    args = await _parse(conn, req, ctx, service, "run")
    if args is None:
        return
    if args.detach or args.tty:  # not attached, or a terminal: the client's own process
        await _send(conn, {"inline": True})
        return
    _absolute(args, cwd)
    chosen = {s.lower() for s in args.attach}
    interactive = args.interactive or "stdin" in chosen
    out = FdWriter(out_fd) if not chosen or "stdout" in chosen else None
    err = FdWriter(err_fd) if not chosen or "stderr" in chosen else None
    attach = Attachment(stdout=out, stderr=err,  # type: ignore[arg-type]
                        stdin=stdin_fd if interactive else None)
    await _send(conn, {"taken": True})

    warm = service.warm
    # the signals for the container: the client's, and the service's own stop (SIGTERM)
    sig_in, sig_out = anyio.create_memory_object_stream[int](16)

    async def client_signals() -> None:
        async for signum in _client_signals(reader):
            with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError):
                sig_in.send_nowait(signum)

    @contextlib.contextmanager
    def signals() -> Iterator[AsyncIterator[int]]:
        yield sig_out

    answered = False

    async def answer(msg: dict[str, Any]) -> None:
        nonlocal answered
        for w in (out, err):
            if w is not None:
                await w.aclose()
        _close(fds)  # before the answer: the client's readers see the end when it exits
        await _send(conn, msg)
        answered = True
        warm.after_request()

    async def done(code: int) -> None:
        await answer({"exit": code})

    service.stoppers.add(sig_in)
    try:
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(client_signals)
            try:  # raised out of the task group as itself, not as an exception group
                with containers._DaemonErrors():
                    await containers.run_attached(args, ctx, attach, signals=signals,
                                                  on_done=done, prepare=warm.prepare)
            except Exception as exc:
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
    except OpenContainerError as exc:
        if not answered:
            await answer({"exit": exc.exit_code, "error": str(exc)})
    except Exception as exc:  # a bug: logged here, one sentence there
        import traceback

        traceback.print_exc()
        if not answered:
            await answer({"exit": 125, "error": f"internal error in the engine service "
                                                f"({type(exc).__name__}: {exc}); please "
                                                "report it."})
    finally:
        service.stoppers.discard(sig_in)
        if not answered:
            with anyio.CancelScope(shield=True):
                await answer({"exit": 125, "error": "the engine service was stopped."})


async def _build_request(conn: Any, reader: Any, req: dict[str, Any], fds: list[int],
                         service: Service) -> None:
    """``build``: the build in this process, its progress to the client's stderr, its
    result to its stdout. A signal the client forwards (Ctrl-C), the client going away or
    the service being told to end cancels it, as it would cancel an in-process build."""
    import anyio

    from ..errors import OpenContainerError
    from . import build

    ctx, cwd = _request_context(req, fds)
    args = await _parse(conn, req, ctx, service, "build")
    if args is None:
        return
    if not build.for_service(args, cwd):
        await _send(conn, {"inline": True})
        return
    await _send(conn, {"taken": True})
    sig_in, sig_out = anyio.create_memory_object_stream[int](16)
    stopped: list[int] = []
    result: dict[str, Any] = {}

    async def watch(tg: Any) -> None:
        async def client() -> None:
            async for signum in _client_signals(reader):
                stopped.append(signum)
                break
            else:
                stopped.append(0)  # the client went away
            tg.cancel_scope.cancel()

        async def service_stop() -> None:
            async for signum in sig_out:
                stopped.append(signum)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as inner:
            inner.start_soon(client)
            inner.start_soon(service_stop)

    async def work(tg: Any) -> None:
        try:
            rec, progress = await build.build_image(args, ctx, None, filter_here=False,
                                                    zygotes=service.warm.zygotes)
            result["exit"] = build.finish(args, ctx, rec, progress)
        except OpenContainerError as exc:
            result.update(exit=exc.exit_code, error=str(exc))
        except Exception as exc:  # a bug: logged here, one sentence there
            import traceback

            traceback.print_exc()
            result.update(exit=125, error=f"internal error in the engine service "
                                          f"({type(exc).__name__}: {exc}); please report it.")
        tg.cancel_scope.cancel()

    service.stoppers.add(sig_in)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, tg)
            tg.start_soon(work, tg)
    finally:
        service.stoppers.discard(sig_in)
    if "exit" not in result:  # cancelled: Ctrl-C's "Interrupted.", a signal's status
        signum = stopped[0] if stopped and stopped[0] else signal.SIGTERM
        if signum == signal.SIGINT:
            ctx.err("Interrupted.")
        result = {"exit": 130 if signum == signal.SIGINT else 128 + signum}
    _close(fds)
    await _send(conn, result)
