"""The container endpoints: create, start, stop, restart, kill, wait, remove, list, inspect,
logs, attach (hijacked), exec create/start/inspect.

Containers are found through :mod:`opencontainer.engine.index` (by name, ID or ID prefix,
wherever they were created); the operations are :mod:`opencontainer.engine.containers`'.
Output comes from the container's log (``log.jsonl``), which its supervisor writes whoever
started it: ``logs`` reads it, ``attach`` follows it until the container ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...engine import containers as ops
from ...engine.containers import Host
from .common import (
    ServerState,
    bad_request,
    body_json,
    conflict,
    flag,
    json_response,
    not_found,
    parse_filters,
    state_of,
)
from .streams import MULTIPLEXED_STREAM, RAW_STREAM, STDERR, STDOUT, frame, hijack

if TYPE_CHECKING:
    from .hosted import Hosted

RUNNING = ("running", "starting", "restarting", "stopping")


# -- finding -----------------------------------------------------------------------------------
def _entries(host: Host) -> list[Any]:
    from ...engine import index

    return index.entries(host.paths)


def _find(host: Host, ref: str) -> Any:
    from ...engine import index

    return index.find(_entries(host), ref)


async def find(request: web.Request, ref: str | None = None) -> Any:
    host = state_of(request).host
    return await asyncio.to_thread(_find, host, ref or request.match_info["id"])


def _read_state(entry: Any) -> Any:
    """The container's state record now (None: removed)."""
    try:
        return entry.project.state.read_container(entry.name)
    except (OSError, ValueError):
        return None


# -- create ------------------------------------------------------------------------------------
def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad_request(f"{what} must be a list of strings.")


DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def _free_port(proto: str) -> int:
    """An ephemeral host port nobody listens on now (docker's answer to an empty HostPort)."""
    import socket

    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _socket_source(src: str, docker_socket: Path | None) -> str:
    """A bind of the Docker socket that this host lacks (``/var/run/docker.sock``, as
    testcontainers' Ryuk, Portainer or Traefik ask for) binds the socket served here."""
    if docker_socket is not None and src in DOCKER_SOCKETS and not Path(src).exists():
        return str(docker_socket)
    return src


def _bind(spec: str, docker_socket: Path | None) -> str:
    src, sep, rest = spec.partition(":")
    return f"{_socket_source(src, docker_socket)}:{rest}" if sep else spec


def options_from(body: dict[str, Any], name: str | None, cwd: Path,
                 docker_socket: Path | None = None) -> Any:
    """docker's container config (``Config`` fields and ``HostConfig``) -> the options of
    ``opencontainer create``. An empty ``HostPort`` is a free ephemeral port, as docker's."""
    from ...engine.standalone import ContainerOptions

    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise bad_request("config cannot be empty in order to create a container")
    hc = body.get("HostConfig") or {}
    cmd = _strings(body.get("Cmd"), "Cmd")
    entrypoint: str | None = None
    raw_ep = body.get("Entrypoint")
    if raw_ep is not None:
        ep = _strings(raw_ep, "Entrypoint")
        entrypoint = ep[0] if ep else ""
        cmd = ep[1:] + cmd
    volumes = [_bind(b, docker_socket) for b in _strings(hc.get("Binds"), "HostConfig.Binds")]
    for m in hc.get("Mounts") or ():
        kind, target = m.get("Type", "volume"), m.get("Target", "")
        source = m.get("Source", "")
        if kind == "bind":
            source = _socket_source(source, docker_socket)
        ro = ":ro" if m.get("ReadOnly") else ""
        if kind in ("bind", "volume") and target:
            volumes.append(f"{source}:{target}{ro}" if source else target)
        elif kind != "tmpfs":
            raise bad_request(f"mount type {kind!r} is not supported.")
    ports: list[str] = []
    bindings = hc.get("PortBindings") or {}
    for key, binds in bindings.items():
        port, _, proto = str(key).partition("/")
        for b in binds or [{}]:
            host_port = str((b or {}).get("HostPort") or "")
            if host_port in ("", "0"):
                host_port = str(_free_port(proto or "tcp"))
            ip = (b or {}).get("HostIp") or ""
            ports.append(f"{ip + ':' if ip else ''}{host_port}:{port}/{proto or 'tcp'}")
    if hc.get("PublishAllPorts"):
        for key in body.get("ExposedPorts") or {}:
            if key not in bindings:
                port, _, proto = str(key).partition("/")
                ports.append(f"{_free_port(proto or 'tcp')}:{port}/{proto or 'tcp'}")
    rp = hc.get("RestartPolicy") or {}
    restart = str(rp.get("Name") or "no")
    if restart == "on-failure" and rp.get("MaximumRetryCount"):
        restart += f":{int(rp['MaximumRetryCount'])}"
    health: dict[str, Any] = {}
    hcheck = body.get("Healthcheck") or {}
    test = _strings(hcheck.get("Test"), "Healthcheck.Test")
    if test[:1] == ["NONE"]:
        health["no_healthcheck"] = True
    elif test[:1] == ["CMD-SHELL"] and len(test) > 1:
        health["health_cmd"] = test[1]
    elif test[:1] == ["CMD"] and len(test) > 1:
        health["health_cmd"] = shlex.join(test[1:])
    if "health_cmd" in health:
        for key, field in (("Interval", "health_interval"), ("Timeout", "health_timeout"),
                           ("StartPeriod", "health_start_period")):
            if hcheck.get(key):
                health[field] = float(hcheck[key]) / 1e9
        if hcheck.get("Retries"):
            health["health_retries"] = int(hcheck["Retries"])
    labels = body.get("Labels") or {}
    stop_timeout = body.get("StopTimeout")
    return ContainerOptions(
        image=image,
        command=tuple(cmd),
        name=name,
        entrypoint=entrypoint,
        env=tuple(_strings(body.get("Env"), "Env")),
        volumes=tuple(volumes),
        workdir=body.get("WorkingDir") or None,
        user=body.get("User") or None,
        ports=tuple(ports),
        hostname=body.get("Hostname") or None,
        add_hosts=tuple(_strings(hc.get("ExtraHosts"), "HostConfig.ExtraHosts")),
        dns=tuple(_strings(hc.get("Dns"), "HostConfig.Dns")),
        tty=bool(body.get("Tty")),
        interactive=bool(body.get("OpenStdin")),
        auto_remove=bool(hc.get("AutoRemove")),
        pull="never",
        stop_signal=body.get("StopSignal") or None,
        stop_timeout=float(stop_timeout) if stop_timeout is not None else None,
        labels=tuple(f"{k}={v}" for k, v in labels.items()),
        restart=restart,
        cwd=cwd,
        **health,
    )


def _familiar(image: str) -> str:
    from ...image.reference import parse_reference

    try:
        return str(parse_reference(image).familiar())
    except Exception:
        return image


async def create(request: web.Request) -> web.Response:
    from ...engine.engine import Engine
    from ...errors import ImageNotFound
    from ...image.store import ImageStore

    host = state_of(request).host
    body = await body_json(request)
    if not isinstance(body, dict):
        raise bad_request("the container config must be a JSON object.")
    name = request.query.get("name") or None
    if name:
        name = name.lstrip("/")
    opts = options_from(body, name, host.paths.containers, state_of(request).socket)
    try:
        await asyncio.to_thread(ImageStore(host.paths.store).resolve, opts.image)
    except ImageNotFound:
        raise not_found(f"No such image: {_familiar(opts.image)}") from None
    async with Engine(paths=host.paths, env=dict(host.env), pull_policy="never") as engine:
        _, c = await ops.create_standalone(engine, opts, host)
        cid = str(c.state.id)
    return json_response({"Id": cid, "Warnings": []}, status=201)


# -- start / stop / restart / kill / remove ----------------------------------------------------
async def _watch(server: ServerState, entry: Any) -> None:
    """Follow the supervisor's events for ``entry``: its exits are recorded (``wait``
    answers with them even when ``--rm`` removed the container at once)."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(entry.project.state.socket))
    except OSError:
        return
    try:
        writer.write(b'{"op": "events"}\n')
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                event = json.loads(line).get("event") or {}
            except ValueError:
                continue
            if event.get("container") != entry.name:
                continue
            if event.get("type") == "die":
                count, _ = server.exits.get(entry.id, (0, 0))
                server.exits[entry.id] = (count + 1, int(event.get("exit_code") or 0))
            elif event.get("type") == "destroy":
                return
    finally:
        writer.close()


def _start_blocking(entry: Any, host: Host) -> bool:
    """Start ``entry``'s supervisor if needed (True: a new one, not yet told to start)."""
    if entry.project.state.supervisor_alive():
        ops.start(entry, host)
        return False
    from ...cli.compose import ensure_supervisor

    ensure_supervisor(entry.project.state, host, entry.project.working_dir)
    return True


def _up_blocking(entry: Any) -> None:
    from ...api.control import ControlClient
    from ...errors import ContainerError

    client = ControlClient(entry.project.state.socket, timeout=None)
    final: dict[str, Any] = {}
    for msg in client.stream("up", options={"services": [entry.state.service],
                                            "no_recreate": True}):
        if "event" not in msg:
            final = msg
    if not final.get("ok"):
        raise ContainerError(str(final.get("error")))


async def start(request: web.Request) -> web.Response:
    server = state_of(request)
    entry = await find(request)
    if entry.state.status in RUNNING:
        return web.Response(status=304)
    if entry.state.one_off:
        raise conflict(f"{entry.name} is a one-off container of 'compose run': it cannot be "
                       "started again.")
    h = server.hosted.get(entry.id)
    if h is not None and h.task is None:  # its stdin is attached: supervised here
        await _start_hosted(server, h, entry)
        return web.Response(status=204)
    fresh = await asyncio.to_thread(_start_blocking, entry, server.host)
    if fresh:
        watcher = asyncio.ensure_future(_watch(server, entry))
        server.tasks.add(watcher)
        watcher.add_done_callback(server.tasks.discard)
        await asyncio.sleep(0.05)  # subscribed before the container starts
        await asyncio.to_thread(_up_blocking, entry)
    return web.Response(status=204)


async def _start_hosted(server: ServerState, h: Hosted, entry: Any) -> None:
    from .hosted import run_hosted

    h.started = asyncio.get_running_loop().create_future()
    task = h.task = asyncio.ensure_future(run_hosted(h, entry, server.host, server.exits))
    server.tasks.add(task)

    def done(task: asyncio.Future[Any]) -> None:
        server.tasks.discard(task)
        if server.hosted.get(h.id) is h:
            del server.hosted[h.id]

    task.add_done_callback(done)
    await asyncio.shield(h.started)


async def resize(request: web.Request) -> web.Response:
    """The terminal's size, for a container with a TTY supervised here (else ignored)."""
    from ...runtime.process import set_winsize

    server = state_of(request)
    entry = await find(request)
    try:
        h, w = int(request.query.get("h") or 0), int(request.query.get("w") or 0)
    except ValueError:
        raise bad_request("h and w must be numbers.") from None
    hosted = server.hosted.get(entry.id)
    master = hosted.tty_master if hosted is not None else None
    if master is not None and h and w:
        with contextlib.suppress(OSError):
            set_winsize(master, h, w)
    return web.Response(status=200)


async def stop(request: web.Request) -> web.Response:
    entry = await find(request)
    if not entry.running:
        return web.Response(status=304)
    t = request.query.get("t") or request.query.get("timeout")
    timeout = float(t) if t not in (None, "") else None
    if timeout is not None and timeout < 0:
        timeout = None
    await asyncio.to_thread(ops.stop, entry, timeout, request.query.get("signal") or None)
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    server = state_of(request)
    entry = await find(request)
    t = request.query.get("t")
    timeout = float(t) if t not in (None, "") else None
    if entry.project.state.supervisor_alive():
        await asyncio.to_thread(ops.restart, entry, server.host, timeout)
    else:
        await asyncio.to_thread(ops.stop, entry, timeout)
        fresh = await asyncio.to_thread(_start_blocking, entry, server.host)
        if fresh:
            watcher = asyncio.ensure_future(_watch(server, entry))
            server.tasks.add(watcher)
            watcher.add_done_callback(server.tasks.discard)
            await asyncio.sleep(0.05)
            await asyncio.to_thread(_up_blocking, entry)
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    entry = await find(request)
    if not entry.running:
        raise conflict(f"Container {entry.id} is not running")
    sig = request.query.get("signal") or "SIGKILL"
    if sig.isdigit():
        sig = str(int(sig))
    elif not sig.upper().startswith("SIG"):
        sig = "SIG" + sig.upper()
    await asyncio.to_thread(ops.kill, entry, sig)
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    server = state_of(request)
    entry = await find(request)
    force = flag(request, "force")
    if entry.running and not force:
        raise conflict(f"You cannot remove a running container {entry.id}. Stop the "
                       "container before attempting removal or force remove")
    await asyncio.to_thread(ops.remove, entry, server.host.paths, force=force)
    return web.Response(status=204)


# -- wait --------------------------------------------------------------------------------------
async def wait(request: web.Request) -> web.StreamResponse:
    """Headers at once, the body (``{"StatusCode": N}``) when the condition is met:
    ``not-running`` (default), ``next-exit`` or ``removed``."""
    server = state_of(request)
    entry = await find(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise bad_request(f"invalid condition {condition!r}: not-running, next-exit or "
                          "removed.")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"")
    code = await wait_for(server, entry, condition)
    await resp.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
    await resp.write_eof()
    return resp


async def wait_for(server: ServerState, entry: Any, condition: str) -> int:
    exits_before = server.exits.get(entry.id, (0, 0))[0]
    finished_before = entry.state.finished_at
    last = entry.state.exit_code or 0
    while True:
        st = await asyncio.to_thread(_read_state, entry)
        count, recorded = server.exits.get(entry.id, (0, 0))
        if count > exits_before:
            last = recorded
        elif st is not None and st.exit_code is not None:
            last = st.exit_code
        if st is None:  # removed
            if entry.kind == "standalone":
                await asyncio.to_thread(ops.forget, server.host.paths, entry.name)
            return int(last)
        if condition == "not-running" and st.status not in RUNNING:
            return int(last)
        if condition == "next-exit" and (count > exits_before or (
                st.status in ("exited", "dead") and st.finished_at != finished_before)):
            return int(last)
        await asyncio.sleep(0.05)


# -- list / inspect ----------------------------------------------------------------------------
def _filters_from(text: str | None) -> list[str]:
    """docker's JSON filters as ``ps --filter`` arguments (``key=value``)."""
    return [f"{key}={v}" for key, values in parse_filters(text).items() for v in values]


def _endpoints(networks: Any, existing: Any = None) -> dict[str, Any]:
    """``NetworkSettings.Networks``: every container shares the host's network, so its
    address and gateway are the loopback's (testcontainers connects through them); ``host``
    is always there (the ``NetworkMode``)."""
    out: dict[str, Any] = {}
    for n in dict.fromkeys(["host", *(networks or ())]):
        if n.startswith("container:"):
            continue
        base = dict((existing or {}).get(n) or {})
        for key, value in (("NetworkID", n), ("EndpointID", ""), ("Gateway", "127.0.0.1"),
                           ("IPAddress", "127.0.0.1"), ("IPPrefixLen", 8),
                           ("IPv6Gateway", ""), ("GlobalIPv6Address", ""),
                           ("GlobalIPv6PrefixLen", 0), ("MacAddress", ""),
                           ("Aliases", None), ("Links", None)):
            if not base.get(key):
                base[key] = value
        out[n] = base
    return out


def summary_dict(e: Any) -> dict[str, Any]:
    from ...cli.ps import _command_text

    s = e.summary
    ports = [{"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
              "PublicPort": p.host_port, "Type": p.protocol} for p in s.published]
    return {
        "Id": s.id,
        "Names": ["/" + s.name],
        "Image": s.image,
        "ImageID": s.image_id or "",
        "Command": _command_text(e.command, False).strip('"'),
        "Created": int(s.created),
        "Ports": ports,
        "Labels": dict(s.labels),
        "State": s.status,
        "Status": e.status_text,
        "HostConfig": {"NetworkMode": "host"},
        "NetworkSettings": {"Networks": _endpoints(s.networks)},
        "Mounts": [{"Name": m.name, "Source": m.source, "Destination": m.destination,
                    "Type": "volume" if m.name else "bind", "RW": True}
                   for m in s.mounts],
    }


def _list(host: Host, all_: bool, filters_text: str | None, limit: int) -> list[dict[str, Any]]:
    from ...cli.ps import _image_resolver
    from ...engine.filters import Filters

    filters = Filters.parse(_filters_from(filters_text))
    entries = _entries(host)
    show_all = all_ or filters.shows_all or limit > 0
    chosen = [e for e in entries if show_all or e.summary.status in ("running", "restarting",
                                                                     "paused")]
    if filters:
        kept = {id(s) for s in filters.select([e.summary for e in chosen],
                                              [e.summary for e in entries],
                                              _image_resolver(host))}
        chosen = [e for e in chosen if id(e.summary) in kept]
    if limit > 0:
        chosen = chosen[:limit]
    return [summary_dict(e) for e in chosen]


async def list_(request: web.Request) -> web.Response:
    host = state_of(request).host
    try:
        limit = int(request.query.get("limit") or 0)
    except ValueError:
        raise bad_request("limit must be a number.") from None
    return json_response(await asyncio.to_thread(
        _list, host, flag(request, "all"), request.query.get("filters"), limit))


async def inspect(request: web.Request) -> web.Response:
    from ...cli.containers import inspect_dict

    entry = await find(request)
    data = await asyncio.to_thread(inspect_dict, entry)
    cfg = data.setdefault("Config", {})
    if cfg.get("StopTimeout") is not None:  # Go reads an int
        cfg["StopTimeout"] = int(cfg["StopTimeout"])
    hc = data.setdefault("HostConfig", {})
    hc.setdefault("NetworkMode", "host")
    ns = data.setdefault("NetworkSettings", {})
    nets = ns.get("Networks") or {}
    mode = str(hc.get("NetworkMode") or "host")
    ns["Networks"] = _endpoints([*nets, "bridge" if mode == "default" else mode], nets)
    for key, value in (("Gateway", "127.0.0.1"), ("IPAddress", "127.0.0.1")):
        if not ns.get(key):
            ns[key] = value
    hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    data.setdefault("LogPath", str(entry.project.state.log_file(entry.name)))
    return json_response(data)


# -- logs / attach -----------------------------------------------------------------------------
def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _payload(stream: str, text: str, t: float | None, tty: bool, timestamps: bool) -> bytes:
    data = ((_stamp(t) + " ") if timestamps and t is not None else "") + text + "\n"
    raw = data.encode("utf-8", "replace")
    if tty:
        return raw.replace(b"\n", b"\r\n") if not raw.endswith(b"\r\n") else raw
    return frame(STDERR if stream == "stderr" else STDOUT, raw)


def _tty(entry: Any) -> bool:
    from ...cli.containers import _spec_and_root

    try:
        spec, _ = _spec_and_root(entry)
    except Exception:
        return False
    return bool(spec.tty)


def _tty_stdin(entry: Any) -> tuple[bool, bool]:
    from ...cli.containers import _spec_and_root

    try:
        spec, _ = _spec_and_root(entry)
    except Exception:
        return False, False
    return bool(spec.tty), bool(spec.stdin_open)


def _since(text: str | None) -> float | None:
    if not text or text == "0":
        return None
    try:
        return float(text)
    except ValueError:
        raise bad_request(f"invalid since {text!r}: a Unix timestamp.") from None


async def logs(request: web.Request) -> web.StreamResponse:
    from ...engine.state import read_logs

    entry = await find(request)
    want = {s for s in ("stdout", "stderr") if flag(request, s)}
    if not want:
        raise bad_request("you must choose at least one stream")
    tail_text = request.query.get("tail") or "all"
    try:
        tail = None if tail_text in ("all", "-1") else int(tail_text)
    except ValueError:
        raise bad_request(f"invalid tail {tail_text!r}: a number or 'all'.") from None
    since, until = _since(request.query.get("since")), _since(request.query.get("until"))
    timestamps = flag(request, "timestamps")
    tty = await asyncio.to_thread(_tty, entry)
    resp = web.StreamResponse(headers={"Content-Type": RAW_STREAM if tty else
                                       MULTIPLEXED_STREAM})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    state = entry.project.state
    path = state.log_file(entry.name)
    records = await asyncio.to_thread(read_logs, state, entry.name, entry.state.service,
                                      tail=tail, since=since)
    try:
        offset = path.stat().st_size
    except OSError:
        offset = 0
    for r in records:
        if (until is None or r.t <= until) and r.stream in want:
            await resp.write(_payload(r.stream, r.text, r.t, tty, timestamps))
    if flag(request, "follow"):
        await _follow(resp.write, entry, path, offset, want, tty, timestamps, None)
    await resp.write_eof()
    return resp


async def _follow(write: Any, entry: Any, path: Path, offset: int, want: set[str], tty: bool,
                  timestamps: bool, started: float | None,
                  server: ServerState | None = None) -> None:
    """Lines appended to the log from ``offset`` until the container has ended (``started``:
    for an attach before the start, end only after a run that began later)."""
    exits_before = server.exits.get(entry.id, (0, 0))[0] if server else 0
    idle = 0
    while True:
        got = False
        lines = await asyncio.to_thread(_appended, path, offset)
        for off, line in lines:
            offset = off
            try:
                d = json.loads(line)
            except ValueError:
                continue
            stream = str(d.get("s", "stdout"))
            if stream in want:
                await write(_payload(stream, str(d.get("l", "")), d.get("t"), tty,
                                     timestamps))
            got = True
        if got:
            idle = 0
            continue
        st = await asyncio.to_thread(_read_state, entry)
        exited = server is not None and server.exits.get(entry.id, (0, 0))[0] > exits_before
        if st is None or exited or (st.status not in RUNNING and st.status != "created" and (
                started is None or (st.started_at or 0) >= started or
                (st.finished_at or 0) >= started)):
            idle += 1
            if idle > 2:
                return
        await asyncio.sleep(0.05)


def _appended(path: Path, offset: int) -> list[tuple[int, str]]:
    from ...engine.state import follow_log

    return list(follow_log(path, offset))


async def attach(request: web.Request) -> web.StreamResponse:
    """``docker run``/``start -a``: the hijacked connection gets the container's output
    (multiplexed unless it has a TTY) from now until it ends."""
    server = state_of(request)
    entry = await find(request)
    want = {s for s in ("stdout", "stderr") if flag(request, s)}
    tty, stdin_open = await asyncio.to_thread(_tty_stdin, entry)
    h = server.hosted.get(entry.id)
    if h is None and (want or (stdin_open and flag(request, "stdin"))) and \
            flag(request, "stream", True) and await asyncio.to_thread(_hostable, entry):
        from .hosted import Hosted

        h = server.hosted[entry.id] = Hosted(id=entry.id, name=entry.name, tty=tty)
    if h is not None:
        return await _attach_hosted(request, h, want, flag(request, "stdin"))
    path = entry.project.state.log_file(entry.name)
    try:
        offset = path.stat().st_size
    except OSError:
        offset = 0
    started = None if entry.running else time.time()
    conn = await hijack(request, RAW_STREAM if tty else MULTIPLEXED_STREAM)
    if flag(request, "stream", True) and want:
        await _follow(conn.write, entry, path, offset, want, tty, False, started, server)
    conn.close()
    return conn.response


def _hostable(entry: Any) -> bool:
    """A stopped standalone container that no supervisor holds: a client attaching to it
    before its start gets its output (and gives its input) through the service, which then
    supervises it (hosted.py)."""
    return (entry.kind == "standalone" and not entry.running and not entry.state.one_off
            and not entry.project.state.supervisor_alive())


async def _attach_hosted(request: web.Request, h: Hosted, want: set[str],
                         stdin: bool) -> web.StreamResponse:
    """Attached to a container supervised here: its output as it comes, the connection's
    input to its stdin."""
    server = state_of(request)
    q = h.fanout.subscribe()
    ids = {STDOUT: "stdout", STDERR: "stderr"}
    conn = await hijack(request, RAW_STREAM if h.tty else MULTIPLEXED_STREAM)

    async def feed() -> None:
        while True:
            data = await conn.read()
            if not data:
                h.close_stdin()
                return
            await h.write_stdin(data)

    feeder = asyncio.ensure_future(feed()) if stdin else None
    try:
        while (item := await q.get()) is not None:
            sid, data = item
            if ids.get(sid) in want:
                await conn.write(data if h.tty else frame(sid, data))
    finally:
        h.fanout.unsubscribe(q)
        if feeder is not None:
            feeder.cancel()
        conn.close()
        if h.task is None and server.hosted.get(h.id) is h and not h.fanout.queues:
            del server.hosted[h.id]  # attached, never started
            h.close()
    return conn.response


# -- exec --------------------------------------------------------------------------------------
async def exec_create(request: web.Request) -> web.Response:
    from ...engine.standalone import new_id

    server = state_of(request)
    entry = await find(request)
    body = await body_json(request)
    if not entry.running:
        raise conflict(f"Container {entry.id} is not running")
    cmd = _strings(body.get("Cmd"), "Cmd")
    if not cmd:
        raise bad_request("No exec command specified")
    eid = new_id()
    server.execs[eid] = {
        "ID": eid, "Running": False, "ExitCode": None, "Pid": 0, "ContainerID": entry.id,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
        "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0],
                          "arguments": cmd[1:], "privileged": False,
                          "user": body.get("User") or ""},
        "_env": _strings(body.get("Env"), "Env"), "_workdir": body.get("WorkingDir") or None,
    }
    return json_response({"Id": eid}, status=201)


def _exec_of(request: web.Request) -> dict[str, Any]:
    found = state_of(request).execs.get(request.match_info["id"])
    if found is None:
        raise not_found(f"No such exec instance: {request.match_info['id']}")
    result: dict[str, Any] = found
    return result


async def exec_inspect(request: web.Request) -> web.Response:
    ex = _exec_of(request)
    return json_response({k: v for k, v in ex.items() if not k.startswith("_")})


async def exec_resize(request: web.Request) -> web.Response:
    from ...runtime.process import set_winsize

    ex = _exec_of(request)
    master = ex.get("_master")
    try:
        h, w = int(request.query.get("h") or 0), int(request.query.get("w") or 0)
    except ValueError:
        raise bad_request("h and w must be numbers.") from None
    if master is not None and h and w:
        with contextlib.suppress(OSError):
            set_winsize(master, h, w)
    return web.Response(status=200)


async def exec_start(request: web.Request) -> web.StreamResponse:
    from ...runtime.process import DEVNULL, PIPE, ContainerProcess

    server = state_of(request)
    ex = _exec_of(request)
    body = await body_json(request)
    if ex["Running"] or ex["ExitCode"] is not None:
        raise conflict(f"exec {ex['ID']} has already run")
    entry = await find(request, ex["ContainerID"])
    pc = ex["ProcessConfig"]
    tty = bool(body.get("Tty", pc["tty"]))
    script = await asyncio.to_thread(
        ops.exec_script, entry, server.host, [pc["entrypoint"], *pc["arguments"]],
        env=ex["_env"], user=pc["user"] or None, workdir=ex["_workdir"], tty=tty)
    detach = bool(body.get("Detach"))
    stdin = PIPE if ex["OpenStdin"] and not detach else DEVNULL
    try:
        proc = await ContainerProcess.start(script, stdin=stdin, tty=tty)
    except BaseException:
        script.unlink(missing_ok=True)
        raise
    ex.update(Running=True, Pid=proc.pid, _master=proc.tty_master)

    async def finish() -> None:
        code = await proc.wait()
        ex.update(Running=False, ExitCode=int(code))
        script.unlink(missing_ok=True)

    if detach:
        task = asyncio.ensure_future(_finish_then_close(finish, proc))
        server.tasks.add(task)
        task.add_done_callback(server.tasks.discard)
        return web.Response(status=200)
    conn = await hijack(request, RAW_STREAM if tty else MULTIPLEXED_STREAM)
    pumps: list[asyncio.Future[Any]] = []
    if tty:
        assert proc.tty_master is not None
        pumps.append(asyncio.ensure_future(_pump_fd(proc.tty_master, conn)))
        if ex["OpenStdin"]:
            pumps.append(asyncio.ensure_future(_input_to_fd(conn, proc.tty_master)))
    else:
        for src, sid in ((proc.stdout, STDOUT), (proc.stderr, STDERR)):
            if src is not None:
                pumps.append(asyncio.ensure_future(_pump(src, conn, sid)))
        if proc.stdin is not None:
            pumps.append(asyncio.ensure_future(_input_to_stream(conn, proc.stdin)))
    try:
        await finish()
        outputs = pumps[:2] if not tty else pumps[:1]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*outputs, return_exceptions=True), 2.0)
    finally:
        for p in pumps:
            p.cancel()
        await proc.aclose()
        conn.close()
    return conn.response


async def _finish_then_close(finish: Any, proc: Any) -> None:
    try:
        await finish()
    finally:
        await proc.aclose()


async def _pump(src: Any, conn: Any, sid: int) -> None:
    import anyio

    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError,
                             anyio.BrokenResourceError):
        async for chunk in src:
            await conn.write(frame(sid, chunk))


async def _pump_fd(fd: int, conn: Any) -> None:
    from ...engine.supervisor import read_fd

    async for chunk in read_fd(fd):
        await conn.write(chunk)


async def _input_to_stream(conn: Any, dst: Any) -> None:
    import anyio

    try:
        while True:
            data = await conn.read()
            if not data:
                break
            await dst.send(data)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        return
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        await dst.aclose()


async def _input_to_fd(conn: Any, fd: int) -> None:
    while True:
        data = await conn.read()
        if not data:
            with contextlib.suppress(OSError):
                os.write(fd, b"\x04")
            return
        with contextlib.suppress(OSError):
            os.write(fd, data)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/containers/create", create),
        ("GET", "/containers/json", list_),
        ("GET", "/containers/{id}/json", inspect),
        ("POST", "/containers/{id}/start", start),
        ("POST", "/containers/{id}/stop", stop),
        ("POST", "/containers/{id}/restart", restart),
        ("POST", "/containers/{id}/kill", kill),
        ("POST", "/containers/{id}/wait", wait),
        ("DELETE", "/containers/{id}", remove),
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/attach", attach),
        ("POST", "/containers/{id}/resize", resize),
        ("POST", "/containers/{id}/exec", exec_create),
        ("POST", "/exec/{id}/start", exec_start),
        ("POST", "/exec/{id}/resize", exec_resize),
        ("GET", "/exec/{id}/json", exec_inspect),
    ]
