"""Volumes and networks, as :mod:`opencontainer.engine.inventory` finds them on disk (the
``volume`` and ``network`` commands' view): list, create, inspect, remove, prune; network
connect/disconnect are accepted (every container shares the host's network).

Besides ``host`` the API shows docker's other predefined networks, ``bridge`` (what a
container without ``--network`` is on for a docker client) and ``none``: clients look them up.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import web

from ...engine.containers import Host
from ...engine.filters import labels_match
from .common import (
    ApiError,
    bad_request,
    body_json,
    json_response,
    not_found,
    parse_filters,
    state_of,
)

_PREDEFINED = {"bridge": "bridge", "none": "null"}


def _world(host: Host) -> tuple[list[Any], list[Any]]:
    from ...engine import index

    return index.projects(host.paths), index.entries(host.paths)


def _filters(request: web.Request) -> dict[str, list[str]]:
    return parse_filters(request.query.get("filters"))


# -- volumes ---------------------------------------------------------------------------------------
def _volumes(host: Host) -> list[Any]:
    from ...engine.inventory import volumes

    projects, entries = _world(host)
    return volumes(host.paths, projects, entries)


def _volume_dict(v: Any) -> dict[str, Any]:
    d: dict[str, Any] = v.inspect()
    d["UsageData"] = {"RefCount": len(v.users), "Size": -1}
    return d


def _volume_list(host: Host, filters: dict[str, list[str]]) -> dict[str, Any]:
    out = []
    for v in _volumes(host):
        if filters.get("name") and not any(n in v.name for n in filters["name"]):
            continue
        if not labels_match(dict(v.labels), filters.get("label", [])):
            continue
        dangling = filters.get("dangling")
        if dangling and (dangling[0].lower() in ("1", "true")) == v.in_use:
            continue
        out.append(_volume_dict(v))
    return {"Volumes": out, "Warnings": []}


async def volume_list(request: web.Request) -> web.Response:
    host = state_of(request).host
    return json_response(await asyncio.to_thread(_volume_list, host, _filters(request)))


def _volume_create(host: Host, body: dict[str, Any]) -> dict[str, Any]:
    from ...engine.inventory import find_volume, global_volumes_dir, label_file
    from ...paths import atomic_write, validate_name

    driver = body.get("Driver") or "local"
    if driver != "local":
        raise bad_request(f"volume driver {driver!r} is not supported: only 'local'.")
    if body.get("DriverOpts"):
        raise bad_request("volume driver options are not supported: a volume is a folder.")
    name = str(body.get("Name") or secrets.token_hex(32))
    validate_name("volume", name)
    labels = {str(k): str(v) for k, v in (body.get("Labels") or {}).items()}
    existing = find_volume(_volumes(host), name)
    if existing is not None and (existing.project or existing.anonymous):
        raise ApiError(409, f"a volume named {name} already exists (of "
                            f"{existing.project or 'a container'}).")
    d = global_volumes_dir(host.paths) / name
    if not d.is_dir():  # docker: creating an existing volume is fine
        d.mkdir(parents=True, exist_ok=True)
        atomic_write(label_file(host.paths, name),
                     json.dumps({"labels": labels, "created": time.time()}))
    v = find_volume(_volumes(host), name)
    assert v is not None
    return _volume_dict(v)


async def volume_create(request: web.Request) -> web.Response:
    host = state_of(request).host
    body = await body_json(request)
    return json_response(await asyncio.to_thread(_volume_create, host, body), status=201)


def _volume_find(host: Host, name: str) -> Any:
    from ...engine.inventory import find_volume

    v = find_volume(_volumes(host), name)
    if v is None:
        raise not_found(f"get {name}: no such volume")
    return v


async def volume_inspect(request: web.Request) -> web.Response:
    host = state_of(request).host
    v = await asyncio.to_thread(_volume_find, host, request.match_info["name"])
    return json_response(_volume_dict(v))


def _volume_remove(host: Host, name: str, force: bool) -> None:
    from ...cli.volumes import remove_volume
    from ...engine.inventory import find_volume

    v = find_volume(_volumes(host), name)
    if v is None:
        if force:
            return
        raise not_found(f"get {name}: no such volume")
    if v.in_use:
        raise ApiError(409, f"remove {name}: volume is in use - "
                            f"[{', '.join(sorted(set(v.users)))}]")
    remove_volume(host, v)


async def volume_remove(request: web.Request) -> web.Response:
    from .common import flag

    host = state_of(request).host
    await asyncio.to_thread(_volume_remove, host, request.match_info["name"],
                            flag(request, "force"))
    return web.Response(status=204)


def _volume_prune(host: Host, filters: dict[str, list[str]], all_: bool) -> dict[str, Any]:
    from ...cli.volumes import remove_volume
    from ...engine.inventory import tree_size

    removed, reclaimed = [], 0
    for v in _volumes(host):
        if v.in_use or not (all_ or v.anonymous) or not labels_match(
                dict(v.labels), filters.get("label", [])):
            continue
        reclaimed += tree_size(v.mountpoint)
        remove_volume(host, v)
        removed.append(v.name)
    return {"VolumesDeleted": removed, "SpaceReclaimed": reclaimed}


async def volume_prune(request: web.Request) -> web.Response:
    from .server import version_of

    host = state_of(request).host
    filters = _filters(request)
    # API < 1.42 prunes every unused volume; later ones the anonymous ones unless all=true
    all_ = version_of(request) < (1, 42) or any(
        a.lower() in ("1", "true") for a in filters.get("all", []))
    return json_response(await asyncio.to_thread(_volume_prune, host, filters, all_))


# -- networks --------------------------------------------------------------------------------------
def _networks(host: Host) -> tuple[list[Any], list[Any]]:
    from ...engine.inventory import Network, networks

    projects, entries = _world(host)
    nets = networks(host.paths, projects, entries)
    extra = [Network(name=n, driver=d, builtin=True) for n, d in _PREDEFINED.items()
             if not any(x.name == n for x in nets)]
    return nets[:1] + extra + nets[1:], entries


def _network_dict(n: Any, entries: list[Any]) -> dict[str, Any]:
    d: dict[str, Any] = n.inspect(entries)
    d["Containers"] = {cid: {"Name": v["Name"], "EndpointID": "", "MacAddress": "",
                             "IPv4Address": "", "IPv6Address": ""}
                       for cid, v in d["Containers"].items()}
    return d


def _network_find(host: Host, ref: str) -> tuple[Any, list[Any]]:
    from ...engine.inventory import find_network

    nets, entries = _networks(host)
    n = find_network(nets, ref)
    if n is None:
        raise not_found(f"network {ref} not found")
    return n, entries


def _network_list(host: Host, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    nets, entries = _networks(host)
    out = []
    for n in nets:
        if filters.get("name") and not any(x in n.name for x in filters["name"]):
            continue
        if filters.get("id") and not any(n.id.startswith(x) for x in filters["id"]):
            continue
        if filters.get("driver") and n.driver not in filters["driver"]:
            continue
        if not labels_match(dict(n.labels), filters.get("label", [])):
            continue
        kind = filters.get("type")
        if kind and ("builtin" if n.builtin else "custom") not in kind:
            continue
        out.append(_network_dict(n, entries))
    return out


async def network_list(request: web.Request) -> web.Response:
    host = state_of(request).host
    return json_response(await asyncio.to_thread(_network_list, host, _filters(request)))


async def network_inspect(request: web.Request) -> web.Response:
    host = state_of(request).host
    n, entries = await asyncio.to_thread(_network_find, host, request.match_info["id"])
    return json_response(_network_dict(n, entries))


def _network_create(host: Host, body: dict[str, Any]) -> dict[str, Any]:
    from ...engine.inventory import find_network, networks_dir
    from ...paths import atomic_write, validate_name

    name = str(body.get("Name") or "")
    if not name:
        raise bad_request("a network needs a name.")
    validate_name("network", name)
    driver = str(body.get("Driver") or "bridge")
    if driver not in ("bridge", "host"):
        raise bad_request(f"network driver {driver!r} is not supported: 'bridge' or 'host'.")
    nets, _ = _networks(host)
    if any(n.name == name for n in nets):
        raise ApiError(409, f"network with name {name} already exists")
    atomic_write(networks_dir(host.paths) / f"{name}.json", json.dumps({
        "name": name, "driver": driver,
        "labels": {str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
        "opts": {str(k): str(v) for k, v in (body.get("Options") or {}).items()},
        "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
        "created": time.time()}))
    nets, _ = _networks(host)
    n = find_network(nets, name)
    return {"Id": n.id if n is not None else name, "Warning": ""}


async def network_create(request: web.Request) -> web.Response:
    host = state_of(request).host
    body = await body_json(request)
    return json_response(await asyncio.to_thread(_network_create, host, body), status=201)


def _refusal(n: Any) -> str | None:
    if n.builtin:
        return f"{n.name} is a pre-defined network and cannot be removed"
    if n.project:
        return (f"network {n.name} belongs to the compose project {n.project}: it goes with "
                "'compose down'")
    if n.containers:
        return f"error while removing network: network {n.name} id {n.id} has active endpoints"
    return None


def _network_remove(host: Host, ref: str) -> None:
    from ...engine.inventory import networks_dir

    n, _ = _network_find(host, ref)
    why = _refusal(n)
    if why:
        raise ApiError(403, why)
    (networks_dir(host.paths) / f"{n.name}.json").unlink(missing_ok=True)


async def network_remove(request: web.Request) -> web.Response:
    host = state_of(request).host
    await asyncio.to_thread(_network_remove, host, request.match_info["id"])
    return web.Response(status=204)


def _network_prune(host: Host, filters: dict[str, list[str]]) -> dict[str, Any]:
    from ...engine.inventory import networks_dir

    nets, _ = _networks(host)
    removed = []
    for n in nets:
        if _refusal(n) is None and labels_match(dict(n.labels), filters.get("label", [])):
            (networks_dir(host.paths) / f"{n.name}.json").unlink(missing_ok=True)
            removed.append(n.name)
    return {"NetworksDeleted": removed}


async def network_prune(request: web.Request) -> web.Response:
    host = state_of(request).host
    return json_response(await asyncio.to_thread(_network_prune, host, _filters(request)))


async def network_connect(request: web.Request) -> web.Response:
    """Accepted: every container is on the host's network already."""
    from .containers import find

    host = state_of(request).host
    await asyncio.to_thread(_network_find, host, request.match_info["id"])
    body = await body_json(request)
    ref = body.get("Container") if isinstance(body, dict) else None
    if not isinstance(ref, str) or not ref:
        raise bad_request("the container to connect is missing.")
    await find(request, ref)
    return web.Response(status=200)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/volumes", volume_list),
        ("POST", "/volumes/create", volume_create),
        ("POST", "/volumes/prune", volume_prune),
        ("GET", "/volumes/{name}", volume_inspect),
        ("DELETE", "/volumes/{name}", volume_remove),
        ("GET", "/networks", network_list),
        ("POST", "/networks/create", network_create),
        ("POST", "/networks/prune", network_prune),
        ("GET", "/networks/{id}", network_inspect),
        ("DELETE", "/networks/{id}", network_remove),
        ("POST", "/networks/{id}/connect", network_connect),
        ("POST", "/networks/{id}/disconnect", network_connect),
    ]
