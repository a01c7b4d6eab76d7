"""The Docker Engine API on a Unix socket (``opencontainer system service``).

One more client of the engine, not a second engine: the containers it creates are the
standalone containers (projects of one) that ``opencontainer ps`` lists, each under its own
detached supervisor, so they outlive the service. Every route answers with and without a
``/vX.Y`` prefix (API 1.24 up to :data:`~.common.API_VERSION`; clients negotiate down to it
through ``/_ping``). Errors are docker's: ``{"message": "..."}`` with 400, 404, 409 or 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from ...errors import (
    ConfigError,
    ContainerNotFound,
    ImageNotFound,
    OpenContainerError,
    ReferenceError_,
)
from .common import STATE_KEY, ApiError, ServerState

log = structlog.get_logger()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def default_socket(env: Mapping[str, str]) -> Path:
    """``$XDG_RUNTIME_DIR/opencontainer/docker.sock`` (or the runtime folder under
    ``OPENCONTAINER_HOME``)."""
    from ...paths import Paths

    return Paths.from_env(env).runtime / "docker.sock"


def parse_address(text: str | None, env: Mapping[str, str]) -> Path:
    """``unix:///path.sock`` (or a plain path) -> the socket's path."""
    from ...errors import ConfigError

    if not text:
        return default_socket(env)
    if text.startswith("unix://"):
        text = text[len("unix://"):]
    elif "://" in text:
        raise ConfigError(f"unsupported address {text!r}: only unix:///path/to.sock is served "
                          "(no TCP listener).")
    if not text:
        raise ConfigError("the socket address has no path: use unix:///path/to.sock.")
    return Path(text).absolute()


def _status_of(exc: OpenContainerError) -> int:
    if isinstance(exc, (ContainerNotFound, ImageNotFound)):
        return 404
    if isinstance(exc, (ConfigError, ReferenceError_)):
        return 400
    text = str(exc)
    if "already in use" in text or "is not running" in text or "cannot remove running" in text:
        return 409
    return 500


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=json.dumps({"message": message}).encode(),
                        content_type="application/json")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as docker answers it; nothing a client sends ends the service."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message)
    except ContainerNotFound as exc:
        return _error(404, "No such container: " + str(exc).removeprefix(
            "no such container: ").rstrip("."))
    except ImageNotFound as exc:
        return _error(404, f"No such image: {exc}")
    except OpenContainerError as exc:
        return _error(_status_of(exc), str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason if exc.status != 404 else "page not found")
        raise
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.error("API request failed", path=request.path, error=f"{type(exc).__name__}: {exc}",
                  exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}: {exc}).")


def make_app(env: Mapping[str, str], socket: Path | None = None) -> web.Application:
    from ...engine.containers import Host
    from . import archive, build, containers, images, resources, system, transfer, usage

    app = web.Application(middlewares=[errors], client_max_size=1 << 30,
                          handler_args={"auto_decompress": False})
    app[STATE_KEY] = ServerState(host=Host.from_env(env), socket=socket)
    app.on_shutdown.append(_stop_hosted)
    for module in (system, containers, usage, archive, images, transfer, resources,
                   build):
        for method, path, handler in module.routes():
            app.router.add_route(method, path, handler)
            app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, handler)
    return app


async def _stop_hosted(app: web.Application) -> None:
    """The containers supervised here (stdin attached) stop with the service."""
    tasks = [h.task for h in app[STATE_KEY].hosted.values() if h.task is not None]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=15)


class _Idle:
    """``--time N``: the service ends after N seconds without a request in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = 0
        self.last = time.monotonic()

    @web.middleware
    async def track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.active += 1
        try:
            return await handler(request)
        finally:
            self.active -= 1
            self.last = time.monotonic()

    async def wait(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, max(self.seconds / 4, 0.05)))
            if self.active == 0 and time.monotonic() - self.last >= self.seconds:
                return


def prepare_socket(path: Path) -> None:
    """The socket's folder is the user's alone (0700: a folder made here, or the default
    runtime folder; a folder the user named is left as it is, the socket itself is 0600); a
    stale socket is replaced, a live one (another service) refused."""
    import socket as _socket

    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=0o700)
    elif path.parent.name == "opencontainer" or path.parent.name == "run":
        os.chmod(path.parent, 0o700)  # ours (the default place): never a shared folder
    if path.exists() or path.is_symlink():
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise OpenContainerError(f"another service already listens on {path}.")
        finally:
            probe.close()


async def serve(path: Path, env: Mapping[str, str], *, idle: float = 0.0,
                ready: Callable[[], None] | None = None) -> None:
    """Serve the API on ``path`` until SIGINT/SIGTERM (or ``idle`` seconds without a
    request)."""
    app = make_app(env, path)
    tracker = _Idle(idle) if idle > 0 else None
    if tracker is not None:
        app.middlewares.insert(0, tracker.track)
    prepare_socket(path)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    old = os.umask(0o177)
    try:
        site = web.UnixSite(runner, str(path))
        await site.start()
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready()
    try:
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if tracker is not None:
            waiters.append(asyncio.ensure_future(tracker.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def version_of(request: web.Request) -> tuple[int, int]:
    """The API version the client asked for (its ``/vX.Y`` prefix), else the newest."""
    from .common import API_VERSION

    text = request.match_info.get("api_version") or API_VERSION
    major, _, minor = text.partition(".")
    try:
        return int(major), int(minor)
    except ValueError:
        return 1, 45


__all__ = ["default_socket", "make_app", "parse_address", "serve", "version_of"]
