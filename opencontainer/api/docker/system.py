"""``/_ping``, ``/version``, ``/info``: what clients ask first (the API version to speak)."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import time
from typing import Any

from aiohttp import web

from ..._version import __version__
from .common import API_VERSION, MIN_API_VERSION, json_response, parse_filters, state_of

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def ping_headers() -> dict[str, str]:
    return {"API-Version": API_VERSION, "Docker-Experimental": "false", "OSType": "linux",
            "Builder-Version": "1", "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache"}


async def ping(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(headers=ping_headers(), content_type="text/plain")
    return web.Response(text="OK", headers=ping_headers(), content_type="text/plain")


def version_dict() -> dict[str, Any]:
    arch = _ARCH.get(platform.machine(), platform.machine())
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
               "GitCommit": "", "GoVersion": f"python{platform.python_version()}",
               "Os": "linux", "Arch": arch, "KernelVersion": platform.release(),
               "BuildTime": "", "Experimental": "false"}
    return {
        "Platform": {"Name": f"OpenContainer {__version__}"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": platform.release(),
        "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    return json_response(version_dict())


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def info_dict(request: web.Request) -> dict[str, Any]:
    from ...engine import index
    from ...image.store import ImageStore

    host = state_of(request).host
    entries = index.entries(host.paths)
    running = sum(1 for e in entries if e.summary.status in ("running", "restarting"))
    paused = sum(1 for e in entries if e.summary.status == "paused")
    try:
        images = len(ImageStore(host.paths.store).list_images())
    except Exception:
        images = 0
    v = version_dict()
    return {
        "ID": "opencontainer", "Containers": len(entries), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(entries) - running - paused,
        "Images": images, "Driver": "proot", "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["host"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": False, "SwapLimit": False, "CpuCfsPeriod": False, "CpuCfsQuota": False,
        "CPUShares": False, "CPUSet": False, "PidsLimit": False, "IPv4Forwarding": False,
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0,
        "OomKillDisable": False, "NGoroutines": 0, "SystemTime": "",
        "LoggingDriver": "json-file", "CgroupDriver": "none", "CgroupVersion": "",
        "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": "OpenContainer (PRoot)", "OSVersion": "", "OSType": "linux",
        "Architecture": platform.machine(), "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": [], "IndexConfigs": {},
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(),
        "GenericResources": None, "DockerRootDir": str(host.paths.data),
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": socket.gethostname(),
        "Labels": [], "ExperimentalBuild": False, "ServerVersion": v["Version"],
        "Runtimes": {"proot": {"path": "proot"}}, "DefaultRuntime": "proot",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=rootless"], "Warnings": [],
    }


async def info(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(info_dict, request))




def _moment(text: str | None, what: str) -> float | None:
    from ...cli.compose import parse_since
    from .common import bad_request

    if not text:
        return None
    try:
        return parse_since(text)
    except Exception:
        raise bad_request(f"invalid {what} {text!r}: a Unix timestamp or a duration.") from None


async def events(request: web.Request) -> web.StreamResponse:
    """Container events, live: from the control socket of every supervisor that runs (a
    supervisor that starts later is picked up within a second). ``filters`` (container,
    event, image, label, type), ``since`` (older events are left out: nothing is replayed)
    and ``until`` (the stream ends then) as docker's."""
    import json

    from ...cli.system import _docker_event, _matches
    from ...engine import index

    host = state_of(request).host
    filters = parse_filters(request.query.get("filters"))
    since = _moment(request.query.get("since"), "since")
    until = _moment(request.query.get("until"), "until")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"")
    watched: dict[str, asyncio.Task[None]] = {}
    names: dict[str, Any] = {}
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    async def follow(sock: str) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock)
        except OSError:
            return
        try:
            writer.write(b'{"op": "events"}\n')
            await writer.drain()
            while line := await reader.readline():
                try:
                    raw = json.loads(line).get("event") or {}
                except ValueError:
                    continue
                if not raw.get("container"):
                    continue
                item = _docker_event(raw, names)
                if item is None or not _matches(item, filters):
                    continue
                at = float(raw.get("at") or 0)
                if since is not None and at and at < since:
                    continue
                lines.put_nowait(json.dumps(item).encode() + b"\n")
        finally:
            writer.close()

    async def discover() -> None:
        while True:
            entries = await asyncio.to_thread(index.entries, host.paths)
            names.update({e.name: e for e in entries})
            for e in entries:
                sock = str(e.project.state.socket)
                fresh = sock not in watched or watched[sock].done()
                if fresh and e.project.state.socket.exists():
                    watched[sock] = asyncio.ensure_future(follow(sock))
            await asyncio.sleep(1.0)

    finder = asyncio.ensure_future(discover())
    try:
        while True:
            if until is None:
                await resp.write(await lines.get())
                continue
            left = until - time.time()
            if left <= 0:
                break
            try:
                await resp.write(await asyncio.wait_for(lines.get(), left))
            except TimeoutError:
                break
    finally:
        finder.cancel()
        for task in watched.values():
            task.cancel()
    await resp.write_eof()
    return resp


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/_ping", ping),
        ("HEAD", "/_ping", ping),
        ("GET", "/version", version),
        ("GET", "/info", info),
        ("GET", "/events", events),
    ]
