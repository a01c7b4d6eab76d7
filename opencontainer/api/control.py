"""The supervisor's control socket: JSON lines over a Unix socket.

Every request is one JSON object on one line, ``{"op": ..., ...}``. Request/reply operations
answer with one line ``{"ok": true, ...}`` or ``{"ok": false, "error": "<sentence>"}``; streams
(``events``, and ``up`` while it works) send ``{"event": {...}}`` lines first and end with the
reply line (``events`` never ends: the client closes).

Operations: ``ping``, ``ps``, ``up`` (reads ``project.json`` again; options as in
:class:`opencontainer.engine.supervisor.UpOptions`), ``stop``, ``start``, ``restart``, ``kill``,
``rm``, ``down``, ``events``, ``exec-info``, ``run`` (one-off container, detached), ``pause``
and ``unpause`` (``containers``: their names).

The client (:class:`ControlClient`) uses only the standard library so that ``ps`` stays fast;
the server side imports anyio lazily.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from ..engine.engine import Engine
    from ..engine.supervisor import Supervisor


class ControlError(Exception):
    pass


class ControlClient:
    """Blocking client for one request (or one stream) per connection."""

    def __init__(self, path: Path, timeout: float | None = 10.0,
                 connect_wait: float = 0.0) -> None:
        self.path = path
        self.timeout = timeout
        # a supervisor known to be alive (it holds the project's lock) may not listen yet:
        # an attached `run` opens its socket once the container has started
        self.connect_wait = connect_wait

    def _connect(self) -> socket.socket:
        import time

        deadline = time.monotonic() + self.connect_wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.path))
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise ControlError(
                        f"cannot reach the supervisor at {self.path}: {exc}") from exc
                time.sleep(0.01)
            except OSError as exc:
                sock.close()
                raise ControlError(f"cannot reach the supervisor at {self.path}: {exc}") from exc

    def alive(self) -> bool:
        try:
            return bool(self.request("ping").get("ok"))
        except (ControlError, OSError, ValueError):
            return False

    def stream(self, op: str, **args: Any) -> Iterator[dict[str, Any]]:
        sock = self._connect()
        try:
            sock.sendall((json.dumps({"op": op, **args}) + "\n").encode())
            fh = sock.makefile("rb")
            for line in fh:
                if not line.strip():
                    continue
                msg: dict[str, Any] = json.loads(line)
                yield msg
                if "ok" in msg:
                    return
        except TimeoutError as exc:
            raise ControlError("the supervisor did not answer in time") from exc
        finally:
            sock.close()

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        last: dict[str, Any] = {}
        for msg in self.stream(op, **args):
            last = msg
        if "ok" not in last:
            raise ControlError("the supervisor closed the connection without answering")
        return last


# -- server ---------------------------------------------------------------------------------------
class ControlServer:
    """Serves one project's supervisor on ``path`` until :meth:`run` is cancelled."""

    def __init__(self, engine: Engine, supervisor: Supervisor, path: Path) -> None:
        import anyio

        self.engine = engine
        self.sup = supervisor
        self.path = path
        self.down_requested = anyio.Event()
        self.inflight = 0  # requests being served (a standalone supervisor waits for none)

    async def run(self, *, task_status: Any = None) -> None:
        import contextlib

        import anyio

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = await anyio.create_unix_listener(self.path)
        try:
            async with listener:
                if task_status is not None:
                    task_status.started()
                await listener.serve(self._handle)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _send(self, stream: SocketStream, msg: dict[str, Any]) -> None:
        await stream.send((json.dumps(msg, default=str) + "\n").encode())

    async def _handle(self, stream: SocketStream) -> None:
        """One connection. Nothing a client sends may end the supervisor (and with it every
        container): whatever one request raises is logged and answered as an error."""
        import anyio

        self.inflight += 1
        try:
            async with stream:
                await self._serve(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the client went away before its answer
        except Exception as exc:  # whatever else: log it, keep serving
            _log_failure(exc)
        finally:
            self.inflight -= 1

    async def _serve(self, stream: SocketStream) -> None:
        import anyio
        from anyio.streams.buffered import BufferedByteReceiveStream

        from ..errors import OpenContainerError

        buffered = BufferedByteReceiveStream(stream)
        try:
            line = await buffered.receive_until(b"\n", 1 << 20)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                anyio.ClosedResourceError):
            return
        except anyio.DelimiterNotFound:
            await self._send(stream, {"ok": False, "error": "request too long."})
            return
        try:
            req = json.loads(line)
        except ValueError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("op", ""), str):
            await self._send(stream, {"ok": False, "error": "malformed request: expected one "
                                      "JSON object with an \"op\" per line."})
            return
        op = str(req.get("op", ""))
        try:
            if op == "events":  # a watcher, not work in progress
                self.inflight -= 1
                try:
                    await self._events(stream, req)
                finally:
                    self.inflight += 1
                return
            if op == "up":
                await self._up(stream, req)
                return
            reply = await self._dispatch(op, req)
            await self._send(stream, {"ok": True, **reply})
        except OpenContainerError as exc:
            await self._send(stream, {"ok": False, "error": str(exc)})
            return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        except Exception as exc:  # a bug, or a request we did not foresee: answer, go on
            _log_failure(exc, op)
            await self._send(stream, {"ok": False, "error": _internal(exc)})
            return
        if op == "down":
            self.down_requested.set()

    async def _events(self, stream: SocketStream, req: dict[str, Any]) -> None:
        import anyio

        from ..engine import events as ev

        classes: tuple[type[ev.Event], ...] = (ev.Event,)
        if not req.get("logs", True):
            pass
        try:
            async with self.engine.bus.subscribe(*classes, name="control:events",
                                                 lossy=True) as events:
                async for event in events:
                    if isinstance(event, ev.LogLine) and not req.get("logs", False):
                        continue
                    await self._send(stream, {"event": event.to_dict()})
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return

    async def _up(self, stream: SocketStream, req: dict[str, Any]) -> None:
        import contextlib

        import anyio

        from ..engine import events as ev
        from ..engine.model import ProjectModel
        from ..engine.supervisor import UpOptions

        opts = req.get("options") or {}
        options = UpOptions(
            services=tuple(opts.get("services") or ()),
            force_recreate=bool(opts.get("force_recreate")),
            no_recreate=bool(opts.get("no_recreate")),
            no_deps=bool(opts.get("no_deps")),
            remove_orphans=bool(opts.get("remove_orphans")),
            scale={k: int(v) for k, v in (opts.get("scale") or {}).items()},
            wait=bool(opts.get("wait")),
            wait_timeout=opts.get("wait_timeout"),
            timeout=opts.get("timeout"),
            start=bool(opts.get("start", True)),
        )
        if opts.get("pull") and hasattr(self.sup.runner, "pull_policy"):
            self.sup.runner.pull_policy = str(opts["pull"])
        model = ProjectModel.from_json(self.sup.state.project_json.read_text())
        self.sup.set_project(model)
        wanted = (ev.Created, ev.Started, ev.HealthChanged, ev.Exited, ev.Removed,
                  ev.Stopping, ev.ImageEvent)
        result_box: dict[str, Any] = {}
        async with self.engine.bus.subscribe(*wanted, name="control:up", lossy=True) as events:
            async def forward() -> None:
                async for event in events:
                    try:
                        await self._send(stream, {"event": event.to_dict()})
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return

            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                try:
                    result = await self.sup.up(options)
                    result_box = {"ok": result.ok, "result": result.to_dict()}
                    if not result.ok:
                        result_box["error"] = result.errors[0] if result.errors else "failed"
                except Exception as exc:  # reported to the waiting `up`, never swallowed
                    from ..errors import OpenContainerError

                    if not isinstance(exc, OpenContainerError):
                        _log_failure(exc, "up")
                    msg = str(exc) if isinstance(exc, OpenContainerError) else _internal(exc)
                    result_box = {"ok": False, "error": msg}
                await anyio.sleep(0.05)  # let the last events out first
                tg.cancel_scope.cancel()
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._send(stream, result_box)

    async def _dispatch(self, op: str, req: dict[str, Any]) -> dict[str, Any]:
        import os

        from ..errors import ConfigError

        services = req.get("services") or ()
        names = req.get("containers") or ()  # only these containers (any service)
        for key, value in (("services", services), ("containers", names)):
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(x, str) for x in value):
                raise ConfigError(f"malformed request: \"{key}\" must be a list of names.")
        services, names = tuple(services), tuple(names)
        timeout = req.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or
                                    not isinstance(timeout, (int, float))):
            raise ConfigError("malformed request: \"timeout\" must be a number of seconds.")
        sup = self.sup
        if op == "ping":
            return {"pid": os.getpid(), "project": sup.project.name}
        if op == "ps":
            return {"containers": [c.to_dict() for c in sup.ps()]}
        if op == "stop":
            sig = req.get("signal")
            if sig is not None:
                from ..runtime.signals import parse_signal

                if not isinstance(sig, (str, int)):
                    raise ConfigError(f"invalid signal {sig!r}.")
                parse_signal(sig)
            return {"containers": await sup.stop(services, timeout, names,
                                                 str(sig) if sig is not None else None)}
        if op == "start":
            r = await sup.start(services, names)
            return {"result": r.to_dict()}
        if op == "restart":
            r = await sup.restart(services, timeout, names)
            return {"result": r.to_dict()}
        if op == "kill":
            from ..runtime.signals import parse_signal

            sig = req.get("signal") or "SIGKILL"
            if not isinstance(sig, (str, int)):
                raise ConfigError(f"invalid signal {sig!r}.")
            parse_signal(sig)  # never an EINVAL from kill(2)
            return {"containers": await sup.kill(services, str(sig), names)}
        if op in ("pause", "unpause"):
            if not names:
                raise ConfigError(f"malformed request: \"{op}\" needs \"containers\".")
            return {"containers": await sup.pause(names, resume=op == "unpause")}
        if op == "rm":
            return {"containers": await sup.rm(services, stopped_only=not req.get("force"),
                                              names=names, timeout=timeout)}
        if op == "down":
            removed = await sup.down(timeout=timeout, volumes=bool(req.get("volumes")),
                                     remove_orphans=bool(req.get("remove_orphans")))
            return {"containers": removed}
        if op == "run":  # a `compose run -d` one-off, supervised here
            from ..engine.model import service_from_dict

            svc, name = req.get("service"), req.get("container")
            if not isinstance(svc, dict) or not isinstance(name, str) or not name:
                raise ConfigError("malformed request: \"run\" needs a service and a "
                                  "container name.")
            await sup.create_container(service_from_dict(svc), name, one_off=True)
            r = await sup.start(names=[name])
            return {"container": name, "result": r.to_dict()}
        if op == "exec-info":
            name = str(req.get("container"))
            c = sup.containers.get(name)
            if c is None or c.handle is None:
                from ..errors import ContainerError

                raise ContainerError(f"container {name} is not running.")
            return {"container": name, "pid": c.handle.main_pid()}
        raise ConfigError(f"unknown control operation {op!r}.")


def _internal(exc: BaseException) -> str:
    return (f"internal error ({type(exc).__name__}: {exc}); the supervisor keeps running, "
            "see its log.")


def _log_failure(exc: BaseException, op: str | None = None) -> None:
    import structlog

    structlog.get_logger().error("control request failed", op=op,
                                 error=f"{type(exc).__name__}: {exc}", exc_info=exc)
