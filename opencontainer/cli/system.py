"""``system df/prune/events/info``, ``events``, ``container prune`` and ``image prune``
(docker's).

``events`` merges the event streams of every running supervisor (each project's control
socket, ``events`` operation), attaching to supervisors that start meanwhile. There is no
journal of past events: ``--since`` only filters what comes (a time in the past replays
nothing) and ``--until`` ends the stream at that time.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .volumes import confirm, group_help, parse_filters, table, template, world

SUBCOMMANDS: dict[str, str] = {
    "df": "Show disk usage",
    "prune": "Remove unused data",
    "events": "Get real time events from the containers",
    "info": "Display system-wide information",
    "service": "Serve the Docker Engine API on a Unix socket",
}


def configure_system(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    p = sub.add_parser("df", help=SUBCOMMANDS["df"], allow_abbrev=False)
    p.add_argument("-v", "--verbose", action="store_true", help="show each item")
    p.add_argument("--format", default="table", help="table (default), json or a template")
    p = sub.add_parser("prune", help=SUBCOMMANDS["prune"], allow_abbrev=False)
    p.add_argument("-a", "--all", action="store_true",
                   help="remove every unused image, not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="prune anonymous volumes too")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="(label=... accepted)")
    p = sub.add_parser("events", help=SUBCOMMANDS["events"], allow_abbrev=False)
    configure_events(p)
    p = sub.add_parser("info", help=SUBCOMMANDS["info"], allow_abbrev=False)
    p.add_argument("-f", "--format", default=None)
    from .service import configure_service

    p = sub.add_parser("service", help=SUBCOMMANDS["service"], allow_abbrev=False,
                       description="Serve the Docker Engine API (1.24-1.45) on a Unix socket, "
                                   "in the foreground.")
    configure_service(p)


def run_system(args: argparse.Namespace, ctx: Any) -> int:
    name = args.subcommand
    if not name:
        ctx.out(group_help("opencontainer", "system", "Manage OpenContainer", SUBCOMMANDS))
        return 0
    if name == "info":
        return _info(args, ctx)
    if name == "service":
        from .service import run_service

        return run_service(args, ctx)
    runner: Callable[[argparse.Namespace, Any], int] = {
        "df": _df, "prune": _prune, "events": run_events}[name]
    return runner(args, ctx)


def _info(args: argparse.Namespace, ctx: Any) -> int:
    """``system info`` is ``info``."""
    from .version import run_info

    return run_info(args, ctx)


# -- df -------------------------------------------------------------------------------------------
def _images(ctx: Any) -> tuple[Any, list[Any]]:
    from ..image.store import ImageStore

    store = ImageStore(ctx.paths.store)
    return store, store.list_images()


def _image_users(store: Any, rec: Any) -> list[Any]:
    try:
        return list(store.rootfs_users(rec.rootfs))
    except (OSError, ValueError):
        return []


def _container_size(e: Any) -> int:
    from ..engine.inventory import tree_size

    cdir = e.project.state.container_dir(e.name)
    return tree_size(cdir) - sum(tree_size(d) for d in [cdir / "volumes"] if d.is_dir())


def _pct(part: int, whole: int) -> str:
    return f" ({part * 100 // whole}%)" if whole else ""


def _df(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import tree_size, volumes
    from ..humanize import human_size

    projects, entries = world(ctx)
    store, images = _images(ctx)
    seen_trees: set[str] = set()
    img_total = img_free = 0
    img_active = 0
    for rec in images:
        if str(rec.rootfs) in seen_trees:
            continue
        seen_trees.add(str(rec.rootfs))
        img_total += rec.size
        if _image_users(store, rec):
            img_active += 1
        else:
            img_free += rec.size
    sizes = {e.name: _container_size(e) for e in entries}
    c_total = sum(sizes.values())
    running = [e for e in entries if e.summary.status in ("running", "paused", "restarting")]
    c_free = c_total - sum(sizes[e.name] for e in running)
    vols = volumes(ctx.paths, projects, entries)
    vsizes = {v.name: tree_size(v.mountpoint) for v in vols}
    v_total = sum(vsizes.values())
    v_free = sum(vsizes[v.name] for v in vols if not v.in_use)
    data = [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(img_active),
         "Size": human_size(img_total), "Reclaimable": human_size(img_free) + _pct(
             img_free, img_total)},
        {"Type": "Containers", "TotalCount": str(len(entries)), "Active": str(len(running)),
         "Size": human_size(c_total), "Reclaimable": human_size(c_free) + _pct(c_free, c_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(vols)),
         "Active": str(sum(1 for v in vols if v.in_use)), "Size": human_size(v_total),
         "Reclaimable": human_size(v_free) + _pct(v_free, v_total)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
    ]
    if args.format == "json":
        for r in data:
            ctx.out(json.dumps(r))
        return 0
    if args.format not in ("table", ""):
        fmt = args.format[6:] if args.format.startswith("table ") else args.format
        for r in data:
            ctx.out(template(fmt, r))
        return 0
    table(ctx, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
          [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]]
           for r in data])
    if args.verbose:
        ctx.out("")
        ctx.out("Containers space usage:")
        ctx.out("")
        table(ctx, ["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"],
              [[e.id[:12], e.summary.image, human_size(sizes[e.name]), e.status_text, e.name]
               for e in entries])
        ctx.out("")
        ctx.out("Local Volumes space usage:")
        ctx.out("")
        table(ctx, ["VOLUME NAME", "LINKS", "SIZE"],
              [[v.name, str(len(v.users)), human_size(vsizes[v.name])] for v in vols])
    return 0


# -- prune ----------------------------------------------------------------------------------------
def prune_containers(ctx: Any) -> tuple[list[str], int]:
    """Remove every stopped container (docker's ``container prune``): (IDs, bytes)."""
    from ..errors import OpenContainerError
    from .containers import _rm
    from .ps import _entries

    removed, reclaimed = [], 0
    for e in _entries(ctx):
        if e.summary.status not in ("created", "exited", "dead"):
            continue
        size = _container_size(e)
        try:
            _rm(e, False, ctx)
        except OpenContainerError as exc:
            ctx.err(f"WARNING: container {e.name} not removed: {exc}")
            continue
        removed.append(e.id)
        reclaimed += size
    return removed, reclaimed


def prune_images(ctx: Any, *, all_: bool) -> tuple[list[str], int]:
    """Remove the images no container uses: the dangling (untagged) ones, or all (``all_``)."""
    from ..errors import OpenContainerError

    store, images = _images(ctx)
    done: list[str] = []
    reclaimed = 0
    for rec in images:
        if rec.repo_tags and not all_:
            continue
        if _image_users(store, rec):
            continue
        try:
            refs = list(rec.repo_tags) or [rec.id]
            for ref in refs:
                done += store.remove(ref)
        except OpenContainerError as exc:
            ctx.err(f"WARNING: image {rec.short_id} not removed: {exc}")
            continue
        reclaimed += rec.size
    store.gc()
    return done, reclaimed


def _prune(args: argparse.Namespace, ctx: Any) -> int:
    from ..humanize import human_size
    from .networks import prune_networks
    from .volumes import prune_volumes

    if not args.force:
        lines = ["WARNING! This will remove:", "  - all stopped containers",
                 "  - all networks not used by at least one container"]
        if args.volumes:
            lines.append("  - all anonymous volumes not used by at least one container")
        lines.append("  - all images without at least one container associated to them"
                     if args.all else "  - all dangling images")
        if not confirm(ctx, "\n".join(lines)):
            return 0
    containers, total = prune_containers(ctx)
    if containers:
        ctx.out("Deleted Containers:")
        for c in containers:
            ctx.out(c)
        ctx.out("")
    nets = prune_networks(ctx)
    if nets:
        ctx.out("Deleted Networks:")
        for n in nets:
            ctx.out(n)
        ctx.out("")
    if args.volumes:
        vols, size = prune_volumes(ctx, all_=False)
        total += size
        if vols:
            ctx.out("Deleted Volumes:")
            for v in vols:
                ctx.out(v)
            ctx.out("")
    done, size = prune_images(ctx, all_=args.all)
    total += size
    if done:
        ctx.out("Deleted Images:")
        for line in done:
            ctx.out(line[:1].lower() + line[1:])
        ctx.out("")
    ctx.out(f"Total reclaimed space: {human_size(total)}")
    return 0


def configure_container_prune(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt")
    parser.add_argument("--filter", action="append", default=[], help="(accepted)")


def run_container_prune(args: argparse.Namespace, ctx: Any) -> int:
    from ..humanize import human_size

    if not args.force and not confirm(
            ctx, "WARNING! This will remove all stopped containers."):
        return 0
    removed, size = prune_containers(ctx)
    if removed:
        ctx.out("Deleted Containers:")
        for c in removed:
            ctx.out(c)
        ctx.out("")
    ctx.out(f"Total reclaimed space: {human_size(size)}")
    return 0


# -- events ---------------------------------------------------------------------------------------
# our event kinds -> docker's actions (the others are ours alone and not shown)
ACTIONS = {"create": "create", "start": "start", "die": "die", "kill": "kill", "stop": "stop",
           "destroy": "destroy", "pause": "pause", "unpause": "unpause",
           "health_status": "health_status", "restart-scheduled": "restart",
           "pulled": "pull", "rename": "rename"}


def configure_events(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filter", action="append", default=[],
                        help="container=, type=container|image, event=, image=, label=, "
                             "project= (repeatable)")
    parser.add_argument("--since", default=None, help="only events from this time on")
    parser.add_argument("--until", default=None, help="stop at this time")
    parser.add_argument("--format", default=None, help="json or a template")


def _docker_event(e: dict[str, Any], names: dict[str, Any]) -> dict[str, Any] | None:
    kind = str(e.get("type", ""))
    action = ACTIONS.get(kind)
    if action is None:
        return None
    at = float(e.get("at") or time.time())
    if kind in ("pulled",):
        ref = str(e.get("ref", ""))
        attributes = {"name": ref}
        return {"Type": "image", "Action": action, "Actor": {"ID": ref,
                "Attributes": attributes}, "scope": "local", "time": int(at),
                "timeNano": int(at * 1e9), "status": action, "id": ref, "from": ""}
    name = str(e.get("container", ""))
    entry = names.get(name)
    cid = entry.id if entry is not None else name
    image = entry.summary.image if entry is not None else ""
    attributes = dict(entry.summary.labels) if entry is not None else {}
    attributes.update(name=name, image=image)
    if kind == "health_status":
        action = f"health_status: {e.get('status', '')}"
    if kind == "die":
        attributes["exitCode"] = str(e.get("exit_code", ""))
    if kind == "kill":
        attributes["signal"] = str(e.get("signal", ""))
    return {"Type": "container", "Action": action, "Actor": {"ID": cid,
            "Attributes": attributes}, "scope": "local", "time": int(at),
            "timeNano": int(at * 1e9), "status": action, "id": cid, "from": image}


def _matches(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    attrs_ = ev["Actor"]["Attributes"]
    for key, values in filters.items():
        if key == "type" and ev["Type"] not in values:
            return False
        if key == "event" and not any(ev["Action"] == v or ev["Action"].startswith(v + ":")
                                      for v in values):
            return False
        if key == "container" and not any(
                attrs_.get("name") == v or (v and ev["Actor"]["ID"].startswith(v))
                for v in values):
            return False
        if key == "image" and not any(attrs_.get("image") == v or ev["from"] == v
                                      for v in values):
            return False
        if key == "project" and attrs_.get("com.docker.compose.project") not in values:
            return False
        if key == "label":
            from ..engine.filters import labels_match

            if not labels_match({k: str(v) for k, v in attrs_.items()}, values):
                return False
    return True


def _text(ev: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    t = datetime.fromtimestamp(ev["timeNano"] / 1e9, UTC)
    when = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ev['timeNano'] % 1_000_000_000:09d}Z"
    attrs_ = ", ".join(f"{k}={v}" for k, v in sorted(ev["Actor"]["Attributes"].items()))
    return f"{when} {ev['Type']} {ev['Action']} {ev['Actor']['ID']} ({attrs_})"


def _watch(sock: Any, key: str, out: queue.Queue[tuple[str, dict[str, Any] | None]]) -> None:
    from ..api.control import ControlClient

    try:
        for msg in ControlClient(sock, timeout=None).stream("events"):
            if "event" in msg:
                out.put((key, msg["event"]))
    except Exception:  # the supervisor ended (or never answered): that project is done
        pass
    out.put((key, None))


def run_events(args: argparse.Namespace, ctx: Any) -> int:
    from .compose import parse_since

    filters = parse_filters(args.filter, ("container", "type", "event", "image", "label",
                                          "project"))
    since = parse_since(args.since)
    until = parse_since(args.until)
    events: queue.Queue[tuple[str, dict[str, Any] | None]] = queue.Queue()
    watching: set[str] = set()
    names: dict[str, Any] = {}
    next_scan = 0.0
    try:
        while True:
            now = time.time()
            if until is not None and now >= until:
                return 0
            if now >= next_scan:  # supervisors that started since
                projects, entries = world(ctx)
                names = {**names, **{e.name: e for e in entries}}  # removed ones stay known
                for p in projects:
                    key = str(p.state.root.absolute())
                    if key not in watching and p.state.supervisor_alive():
                        watching.add(key)
                        threading.Thread(target=_watch, args=(p.state.socket, key, events),
                                         daemon=True).start()
                next_scan = now + 1.0
            timeout = 0.2 if until is None else max(min(0.2, until - now), 0.0)
            try:
                key, raw = events.get(timeout=timeout)
            except queue.Empty:
                continue
            if raw is None:
                watching.discard(key)
                continue
            if raw.get("container") and raw.get("container") not in names:
                _, entries = world(ctx)
                names = {e.name: e for e in entries} | names
            ev = _docker_event(raw, names)
            if ev is None or not _matches(ev, filters):
                continue
            at = ev["timeNano"] / 1e9
            if (since is not None and at < since) or (until is not None and at > until):
                continue
            if args.format == "json" or (args.format and args.format.strip() in (
                    "{{json .}}", "{{ json . }}")):
                ctx.out(json.dumps(ev))
            elif args.format:
                ctx.out(template(args.format, ev))
            else:
                ctx.out(_text(ev))
    except KeyboardInterrupt:
        return 0
