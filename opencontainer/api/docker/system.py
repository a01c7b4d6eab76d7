"""``/_ping``, ``/version``, ``/info``: what clients ask first (the API version to speak)."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
from typing import Any

from aiohttp import web

from ..._version import __version__
from .common import API_VERSION, MIN_API_VERSION, json_response, state_of

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


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/_ping", ping),
        ("HEAD", "/_ping", ping),
        ("GET", "/version", version),
        ("GET", "/info", info),
    ]
