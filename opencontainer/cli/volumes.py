"""``volume ls/create/inspect/rm/prune`` (docker's), over every volume of this user: the
standalone containers' and ``volume create``'s, every compose project's (``<project>_<name>``)
and the containers' anonymous ones (see :mod:`opencontainer.engine.inventory`)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.filters import labels_match

SUBCOMMANDS: dict[str, str] = {
    "ls": "List volumes",
    "create": "Create a volume",
    "inspect": "Display detailed information on one or more volumes",
    "rm": "Remove one or more volumes",
    "prune": "Remove unused local volumes",
}
ALIASES = {"list": "ls", "remove": "rm"}


def world(ctx: Any) -> tuple[list[Any], list[Any]]:
    """(projects, containers) of this user, the project beside the current directory too."""
    from ..engine import index
    from .ps import _cwd_project

    here = _cwd_project(ctx)
    extra = [index.Project(name=here.name, working_dir=here.working_dir, state=here.state)
             ] if here else []
    projects = index.projects(ctx.paths, extra)
    return projects, index.entries(ctx.paths, extra)


def all_volumes(ctx: Any) -> list[Any]:
    from ..engine.inventory import volumes

    projects, entries = world(ctx)
    return volumes(ctx.paths, projects, entries)


def template(fmt: str, row: dict[str, Any]) -> str:
    """One row through a Go template (the shared engine, cli/format.py)."""
    from .format import render_one

    return render_one(fmt, row).rstrip("\n")


def confirm(ctx: Any, warning: str) -> bool:
    """docker's ``Are you sure you want to continue? [y/N]`` on standard input."""
    import sys

    ctx.out(warning)  # on standard output, as docker's
    ctx.stdout.write("Are you sure you want to continue? [y/N] ")
    ctx.stdout.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    return answer.strip().lower() in ("y", "yes")


def table(ctx: Any, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for ln in [list(headers), *[list(r) for r in rows]]:
        ctx.out("   ".join(v.ljust(w) for v, w in zip(ln, widths, strict=True)).rstrip())


def parse_filters(items: Sequence[str], allowed: Sequence[str]) -> dict[str, list[str]]:
    from ..errors import ConfigError

    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"invalid filter {item!r}: use KEY=VALUE with KEY one of "
                              f"{', '.join(allowed)}.")
        out.setdefault(key, []).append(value)
    return out


def truthy(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


# -- the group ----------------------------------------------------------------------------------
def group_help(prog: str, group: str, title: str, subcommands: dict[str, str]) -> str:
    lines = [f"Usage:  {prog} {group} COMMAND", "", title, "", "Commands:"]
    lines += [f"  {n:<9} {h}" for n, h in subcommands.items()]
    lines += ["", f"Run '{prog} {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def configure_volume(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    p = sub.add_parser("ls", aliases=["list"], help=SUBCOMMANDS["ls"], allow_abbrev=False)
    p.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    p.add_argument("--format", default="table", help="table (default), json or a template")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="dangling=true|false, name=, label=KEY[=VALUE], driver=")
    p = sub.add_parser("create", help=SUBCOMMANDS["create"], allow_abbrev=False)
    p.add_argument("-d", "--driver", default="local", help="only 'local'")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    p.add_argument("-o", "--opt", action="append", default=[],
                   help="driver options (none is supported)")
    p.add_argument("name", nargs="?", default=None, metavar="VOLUME")
    p = sub.add_parser("inspect", help=SUBCOMMANDS["inspect"], allow_abbrev=False)
    p.add_argument("-f", "--format", default=None, help="format with a template")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = sub.add_parser("rm", aliases=["remove"], help=SUBCOMMANDS["rm"], allow_abbrev=False)
    p.add_argument("-f", "--force", action="store_true",
                   help="no error for volumes that do not exist")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = sub.add_parser("prune", help=SUBCOMMANDS["prune"], allow_abbrev=False)
    p.add_argument("-a", "--all", action="store_true",
                   help="remove every unused volume, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE]")


def run_volume(args: argparse.Namespace, ctx: Any) -> int:
    name = ALIASES.get(args.subcommand or "", args.subcommand)
    if not name:
        ctx.out(group_help("opencontainer", "volume", "Manage volumes", SUBCOMMANDS))
        return 0
    runner: Callable[[argparse.Namespace, Any], int] = globals()[f"_{name}"]
    return runner(args, ctx)


# -- ls -------------------------------------------------------------------------------------------
def _row(v: Any) -> dict[str, Any]:
    return {"Driver": "local", "Name": v.name, "Mountpoint": str(v.mountpoint),
            "Scope": "local", "Labels": ",".join(f"{k}={x}" for k, x in sorted(v.labels.items())),
            "Links": str(len(v.users)), "Size": "N/A",
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(v.created))}


def _ls(args: argparse.Namespace, ctx: Any) -> int:
    filters = parse_filters(args.filter, ("dangling", "name", "label", "driver"))
    chosen = []
    for v in all_volumes(ctx):
        if any(truthy(x) == v.in_use for x in filters.get("dangling", ())):
            continue
        if "name" in filters and not any(x in v.name for x in filters["name"]):
            continue
        if "driver" in filters and "local" not in filters["driver"]:
            continue
        if not labels_match(v.labels, filters.get("label", ())):
            continue
        chosen.append(v)
    if args.quiet:
        for v in chosen:
            ctx.out(v.name)
        return 0
    if args.format == "json":
        for v in chosen:
            ctx.out(json.dumps(_row(v)))
        return 0
    if args.format not in ("table", ""):
        fmt = args.format[6:] if args.format.startswith("table ") else args.format
        for v in chosen:
            ctx.out(template(fmt, _row(v)))
        return 0
    table(ctx, ["DRIVER", "VOLUME NAME"], [["local", v.name] for v in chosen])
    return 0


# -- create ---------------------------------------------------------------------------------------
def _create(args: argparse.Namespace, ctx: Any) -> int:
    import secrets

    from ..engine.inventory import global_volumes_dir, label_file
    from ..errors import ConfigError
    from ..paths import atomic_write, validate_name

    if args.driver != "local":
        raise ConfigError(f"volume driver {args.driver!r} is not supported: only 'local'.")
    if args.opt:
        raise ConfigError("volume driver options (-o) are not supported: a volume is a "
                          "folder.")
    name = args.name or secrets.token_hex(32)
    validate_name("volume", name)
    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    existing = next((v for v in all_volumes(ctx) if v.name == name), None)
    if existing is not None and (existing.project or existing.anonymous):
        raise ConfigError(f"a volume named {name} already exists (of "
                          f"{existing.project or 'a container'}).")
    d = global_volumes_dir(ctx.paths) / name
    if not d.is_dir():  # docker: creating an existing volume is fine
        d.mkdir(parents=True, exist_ok=True)
        atomic_write(label_file(ctx.paths, name),
                     json.dumps({"labels": labels, "created": time.time()}))
    ctx.out(name)
    return 0


# -- inspect --------------------------------------------------------------------------------------
def _inspect(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import find_volume
    from ..errors import ContainerError

    vols = all_volumes(ctx)
    out, missing = [], []
    for name in args.names:
        v = find_volume(vols, name)
        if v is None:
            missing.append(name)
        else:
            out.append(v.inspect())
    if args.format:
        for item in out:
            ctx.out(template(args.format, item))
    else:
        ctx.out(json.dumps(out, indent=4))
    if missing:
        raise ContainerError(f"no such volume: {', '.join(missing)}.")
    return 0


# -- rm / prune -----------------------------------------------------------------------------------
def remove_volume(ctx: Any, v: Any) -> None:
    from ..engine.inventory import label_file
    from ..paths import remove_tree

    remove_tree(v.mountpoint)
    if not v.project and not v.anonymous:
        label_file(ctx.paths, v.name).unlink(missing_ok=True)


def _rm(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import find_volume

    vols = all_volumes(ctx)
    failed = 0
    for name in args.names:
        v = find_volume(vols, name)
        if v is None:
            if not args.force:
                ctx.err(f"Error: no such volume: {name}.")
                failed = 1
            continue
        if v.in_use:
            ctx.err(f"Error: volume {name} is in use by container "
                    f"{', '.join(sorted(set(v.users)))}; remove the container first.")
            failed = 1
            continue
        remove_volume(ctx, v)
        ctx.out(name)
    return failed


def prune_volumes(ctx: Any, *, all_: bool, labels: Sequence[str] = ()) -> tuple[list[str], int]:
    """Remove the unused volumes (anonymous ones only, unless ``all_``): (names, bytes)."""
    from ..engine.inventory import tree_size

    removed, reclaimed = [], 0
    for v in all_volumes(ctx):
        if v.in_use or not (all_ or v.anonymous) or not labels_match(v.labels, labels):
            continue
        reclaimed += tree_size(v.mountpoint)
        remove_volume(ctx, v)
        removed.append(v.name)
    return removed, reclaimed


def _prune(args: argparse.Namespace, ctx: Any) -> int:
    from ..humanize import human_size

    labels = parse_filters(args.filter, ("label",)).get("label", [])
    what = "all local volumes" if args.all else "anonymous local volumes"
    if not args.force and not confirm(
            ctx, f"WARNING! This will remove {what} not used by at least one container."):
        return 0
    removed, reclaimed = prune_volumes(ctx, all_=args.all, labels=labels)
    if removed:
        ctx.out("Deleted Volumes:")
        for name in removed:
            ctx.out(name)
        ctx.out("")
    ctx.out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
