"""What containers use and housekeeping: ``top``, ``stats`` (one-shot and streamed),
``rename``, ``/containers/prune`` and ``/system/df``.

``stats`` samples ``/proc`` as the ``stats`` command does (:mod:`opencontainer.cli.stats`):
CPU time of the container's processes against the host's (``/proc/stat``), their PSS as the
memory used against the host's memory (there are no cgroup limits), no network of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...engine.filters import labels_match
from .common import (
    bad_request,
    conflict,
    flag,
    json_response,
    parse_filters,
    state_of,
)
from .containers import RUNNING, find

_NS = 1_000_000_000


# -- top ---------------------------------------------------------------------------------------
def _pids(entry: Any) -> list[int]:
    from ...engine.state import group_members
    from ...runtime import procfs

    st = entry.state
    pids: list[int] = list(group_members(st.pgid)) if st.pgid else []
    if st.pid and procfs.same_process(st.pid, st.pid_start):
        pids += [st.pid, *procfs.traced_by(st.pid), *procfs.descendants(st.pid)]
    return sorted(set(pids))


def _top(entry: Any) -> dict[str, Any]:
    from pathlib import Path

    rows = []
    for pid in _pids(entry):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
            uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        except (OSError, IndexError):
            continue
        rows.append([uid, str(pid), stat[1], cmd])
    return {"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": rows}


async def top(request: web.Request) -> web.Response:
    entry = await find(request)
    if entry.summary.status not in RUNNING and entry.summary.status != "paused":
        raise conflict(f"Container {entry.id} is not running")
    return json_response(await asyncio.to_thread(_top, entry))


# -- stats -------------------------------------------------------------------------------------
def _host_cpu_ns() -> int:
    from ...cli.stats import TICKS

    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return 0
    return sum(int(f) for f in fields[:8]) * _NS // TICKS


def _stamp(t: float | None) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _cpu(ticks: int | None, system: int | None) -> dict[str, Any]:
    from ...cli.stats import TICKS

    total = 0 if ticks is None else ticks * _NS // TICKS
    return {"cpu_usage": {"total_usage": total, "usage_in_kernelmode": 0,
                          "usage_in_usermode": total},
            "system_cpu_usage": system or 0, "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _sample(entry: Any) -> tuple[float, Any, int]:
    from ...cli.stats import container_pids, sample

    live = entry.summary.status in ("running", "paused", "restarting")
    pids = container_pids(entry.state.pid if live else None)
    return time.time(), sample(pids), _host_cpu_ns()


def _stats_doc(entry: Any, now: tuple[float, Any, int],
               before: tuple[float, Any, int] | None) -> dict[str, Any]:
    from ...cli.stats import mem_total

    t, s, system = now
    io = [{"major": 0, "minor": 0, "op": "read", "value": s.read},
          {"major": 0, "minor": 0, "op": "write", "value": s.write}]
    return {
        "read": _stamp(t), "preread": _stamp(before[0] if before else None),
        "id": entry.id, "name": "/" + entry.name,
        "pids_stats": {"current": s.pids},
        "cpu_stats": _cpu(s.cpu_ticks, system),
        "precpu_stats": _cpu(before[1].cpu_ticks, before[2]) if before else _cpu(None, None),
        "memory_stats": {"usage": s.mem, "limit": mem_total(), "stats": {}},
        "blkio_stats": {"io_service_bytes_recursive": io},
        "num_procs": 0, "storage_stats": {}, "networks": {},
    }


async def stats(request: web.Request) -> web.StreamResponse:
    """docker's stats: ``stream=false`` answers one document (CPU over a second, as docker;
    ``one-shot=true``: at once, without ``precpu_stats``), else one a second until the
    client goes or the container ends."""
    entry = await find(request)
    stream = flag(request, "stream", True)
    if not stream:
        before = None
        if not flag(request, "one-shot"):
            before = await asyncio.to_thread(_sample, entry)
            await asyncio.sleep(1.0)
        now = await asyncio.to_thread(_sample, entry)
        return json_response(_stats_doc(entry, now, before))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    before = None
    while True:
        now = await asyncio.to_thread(_sample, entry)
        await resp.write(json.dumps(_stats_doc(entry, now, before)).encode() + b"\n")
        if now[1].pids == 0 and before is not None:
            return resp
        before = now
        await asyncio.sleep(1.0)


# -- rename ------------------------------------------------------------------------------------
def _rename(host: Any, entry: Any, new: str) -> None:
    from ...cli.container_ops import _wait_supervisor_gone, rename_standalone
    from ...paths import validate_name

    new = validate_name("container", new)
    if entry.name == new:
        raise conflict(f"Renaming a container with the same name as its current name "
                       f"({new}) has no effect.")
    if entry.kind != "standalone":
        raise conflict(f"{entry.name} is a container of the compose project "
                       f"{entry.project.name}: its name comes from its service.")
    if entry.running:
        raise conflict(f"container {entry.name} is running: stop it first (renaming a "
                       "running container is not supported).")
    _wait_supervisor_gone(entry.project.state)
    rename_standalone(host, entry, new)


async def rename(request: web.Request) -> web.Response:
    new = (request.query.get("name") or "").lstrip("/")
    if not new:
        raise bad_request("the new name is missing (?name=).")
    entry = await find(request)
    await asyncio.to_thread(_rename, state_of(request).host, entry, new)
    return web.Response(status=204)


# -- prune / df --------------------------------------------------------------------------------
def _prune(host: Any, filters_text: str | None) -> dict[str, Any]:
    from ...cli.system import _container_size
    from ...engine import containers as ops
    from ...engine import index

    filters = parse_filters(filters_text)
    until = _until(filters.get("until"))
    deleted: list[str] = []
    reclaimed = 0
    for e in index.entries(host.paths):
        if e.summary.status not in ("created", "exited", "dead"):
            continue
        if not labels_match(dict(e.summary.labels), filters.get("label", [])):
            continue
        if any(labels_match(dict(e.summary.labels), [x]) for x in filters.get("label!", [])):
            continue
        if until is not None and e.summary.created >= until:
            continue
        size = _container_size(e)
        try:
            ops.remove(e, host.paths)
        except Exception:  # removed meanwhile, or busy: not pruned, as docker
            continue
        deleted.append(e.id)
        reclaimed += size
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}




def _until(values: list[str] | None) -> float | None:
    from ...cli.compose import parse_since

    if not values:
        return None
    try:
        return parse_since(values[0])
    except Exception:
        raise bad_request(f"invalid until filter {values[0]!r}.") from None


async def container_prune(request: web.Request) -> web.Response:
    host = state_of(request).host
    return json_response(await asyncio.to_thread(_prune, host, request.query.get("filters")))


def _df(host: Any) -> dict[str, Any]:
    from ...cli.system import _container_size, _image_users
    from ...engine import index
    from ...engine.inventory import tree_size, volumes
    from ...image.store import ImageStore
    from .containers import summary_dict
    from .images import summary_dict as image_summary
    from .resources import _volume_dict

    store = ImageStore(host.paths.store)
    projects, entries = index.projects(host.paths), index.entries(host.paths)
    images = []
    layers = 0
    seen: set[str] = set()
    for rec in store.list_images():
        item = image_summary(rec)
        item["Containers"] = len(_image_users(store, rec))
        item["SharedSize"] = 0
        images.append(item)
        if str(rec.rootfs) not in seen:
            seen.add(str(rec.rootfs))
            layers += rec.size
    containers = []
    for e in entries:
        item = summary_dict(e)
        item["SizeRw"] = _container_size(e)
        item["SizeRootFs"] = item["SizeRw"]
        containers.append(item)
    vols = []
    for v in volumes(host.paths, projects, entries):
        item = _volume_dict(v)
        item["UsageData"] = {"RefCount": len(v.users), "Size": tree_size(v.mountpoint)}
        vols.append(item)
    return {"LayersSize": layers, "Images": images, "Containers": containers,
            "Volumes": vols, "BuildCache": []}


async def system_df(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_df, state_of(request).host))


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/containers/{id}/top", top),
        ("GET", "/containers/{id}/stats", stats),
        ("POST", "/containers/{id}/rename", rename),
        ("POST", "/containers/prune", container_prune),
        ("GET", "/system/df", system_df),
    ]
