"""What every endpoint module shares: the API's errors (docker's ``{"message": ...}``) and
the server's state (the caller's paths and environment, the exec instances)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from ...engine.containers import Host

if TYPE_CHECKING:
    from .hosted import Hosted

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"


class ApiError(Exception):
    """An answer other than success: an HTTP status and docker's one-sentence message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


@attrs.define
class ServerState:
    host: Host
    execs: dict[str, Any] = attrs.field(factory=dict)
    # container ID -> (exits seen, last exit code), from the supervisors' events
    exits: dict[str, tuple[int, int]] = attrs.field(factory=dict)
    tasks: set[asyncio.Future[Any]] = attrs.field(factory=set)
    # container ID -> a container supervised in the service (attached at start: hosted.py)
    hosted: dict[str, Hosted] = attrs.field(factory=dict)
    # the socket served: what a bind of the Docker socket (/var/run/docker.sock) stands for
    socket: Path | None = None


STATE_KEY = web.AppKey("opencontainer", ServerState)


def parse_filters(text: str | None) -> dict[str, list[str]]:
    """The ``filters`` query parameter (docker's JSON: ``{"key": ["v"]}`` or the older
    ``{"key": {"v": true}}``) as key -> values; bad JSON is a 400."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise bad_request(f"invalid filters {text!r}.") from None
    if not isinstance(data, dict):
        raise bad_request(f"invalid filters {text!r}.")
    out: dict[str, list[str]] = {}
    for key, values in data.items():
        items = [v for v, on in values.items() if on] if isinstance(values, dict) else \
            list(values or ())
        out[str(key)] = [str(v) for v in items]
    return out


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(),
                        content_type="application/json")


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as docker reads them (``1``, ``true``, ``True``)."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes")


async def body_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("the request body is not valid JSON.") from None
