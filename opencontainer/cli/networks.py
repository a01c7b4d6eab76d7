"""``network ls/create/inspect/rm/prune`` (docker's), over the networks the engine has: ``host``
(every standalone container's), each compose project's (``<project>_default`` and those its
services name, while the project has containers) and the user-defined ones of
``network create`` (see :mod:`opencontainer.engine.inventory`)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from ..engine.filters import labels_match
from .volumes import confirm, group_help, parse_filters, table, template, world

SUBCOMMANDS: dict[str, str] = {
    "ls": "List networks",
    "create": "Create a network",
    "inspect": "Display detailed information on one or more networks",
    "rm": "Remove one or more networks",
    "prune": "Remove all unused networks",
}
ALIASES = {"list": "ls", "remove": "rm"}


def configure_network(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    p = sub.add_parser("ls", aliases=["list"], help=SUBCOMMANDS["ls"], allow_abbrev=False)
    p.add_argument("-q", "--quiet", action="store_true", help="only display network IDs")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the IDs")
    p.add_argument("--format", default="table", help="table (default), json or a template")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="name=, driver=, label=KEY[=VALUE], type=builtin|custom, dangling=")
    p = sub.add_parser("create", help=SUBCOMMANDS["create"], allow_abbrev=False)
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    p.add_argument("-o", "--opt", action="append", default=[], help="driver options")
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("name", metavar="NETWORK")
    p = sub.add_parser("inspect", help=SUBCOMMANDS["inspect"], allow_abbrev=False)
    p.add_argument("-f", "--format", default=None, help="format with a template")
    p.add_argument("-v", "--verbose", action="store_true", help="(accepted)")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p = sub.add_parser("rm", aliases=["remove"], help=SUBCOMMANDS["rm"], allow_abbrev=False)
    p.add_argument("-f", "--force", action="store_true",
                   help="no error for networks that do not exist")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p = sub.add_parser("prune", help=SUBCOMMANDS["prune"], allow_abbrev=False)
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE]")


def run_network(args: argparse.Namespace, ctx: Any) -> int:
    name = ALIASES.get(args.subcommand or "", args.subcommand)
    if not name:
        ctx.out(group_help("opencontainer", "network", "Manage networks", SUBCOMMANDS))
        return 0
    runner: Callable[[argparse.Namespace, Any], int] = globals()[f"_{name}"]
    return runner(args, ctx)


def all_networks(ctx: Any) -> tuple[list[Any], list[Any]]:
    from ..engine.inventory import networks

    projects, entries = world(ctx)
    return networks(ctx.paths, projects, entries), entries


def _row(n: Any, trunc: bool = True) -> dict[str, Any]:
    return {"ID": n.id[:12] if trunc else n.id, "Name": n.name, "Driver": n.driver,
            "Scope": "local", "IPv6": "false", "Internal": str(bool(
                n.options.get("internal"))).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(n.created))}


def _ls(args: argparse.Namespace, ctx: Any) -> int:
    from .volumes import truthy

    filters = parse_filters(args.filter, ("name", "driver", "label", "type", "dangling", "id"))
    nets, _ = all_networks(ctx)
    chosen = []
    for n in nets:
        if "name" in filters and not any(x in n.name for x in filters["name"]):
            continue
        if "id" in filters and not any(n.id.startswith(x) for x in filters["id"]):
            continue
        if "driver" in filters and n.driver not in filters["driver"]:
            continue
        if "type" in filters and ("builtin" if n.builtin else "custom") not in filters["type"]:
            continue
        if any(truthy(x) == bool(n.containers) for x in filters.get("dangling", ())):
            continue
        if not labels_match(n.labels, filters.get("label", ())):
            continue
        chosen.append(n)
    rows = [_row(n, not args.no_trunc) for n in chosen]
    if args.quiet:
        for r in rows:
            ctx.out(r["ID"])
    elif args.format == "json":
        for r in rows:
            ctx.out(json.dumps(r))
    elif args.format not in ("table", ""):
        fmt = args.format[6:] if args.format.startswith("table ") else args.format
        for r in rows:
            ctx.out(template(fmt, r))
    else:
        table(ctx, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
              [[r["ID"], r["Name"], r["Driver"], r["Scope"]] for r in rows])
    return 0


def _create(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import find_network, networks_dir
    from ..errors import ConfigError
    from ..paths import atomic_write, validate_name

    validate_name("network", args.name)
    if args.driver not in ("bridge", "host"):
        raise ConfigError(f"network driver {args.driver!r} is not supported: 'bridge' or "
                          "'host'.")
    nets, _ = all_networks(ctx)
    if any(n.name == args.name for n in nets):
        raise ConfigError(f"network with name {args.name} already exists.")
    labels = dict(item.partition("=")[::2] for item in args.label)
    opts = dict(item.partition("=")[::2] for item in args.opt)
    atomic_write(networks_dir(ctx.paths) / f"{args.name}.json", json.dumps({
        "name": args.name, "driver": args.driver, "labels": labels, "opts": opts,
        "internal": args.internal, "attachable": args.attachable, "created": time.time()}))
    nets, _ = all_networks(ctx)
    n = find_network(nets, args.name)
    ctx.out(n.id if n is not None else args.name)
    return 0


def _inspect(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import find_network
    from ..errors import ContainerError

    nets, entries = all_networks(ctx)
    out, missing = [], []
    for ref in args.names:
        n = find_network(nets, ref)
        if n is None:
            missing.append(ref)
        else:
            out.append(n.inspect(entries))
    if args.format:
        for item in out:
            ctx.out(template(args.format, item))
    else:
        ctx.out(json.dumps(out, indent=4))
    if missing:
        raise ContainerError(f"no such network: {', '.join(missing)}.")
    return 0


def _refusal(n: Any) -> str | None:
    if n.builtin:
        return f"{n.name} is a pre-defined network and cannot be removed."
    if n.project:
        return (f"network {n.name} belongs to the compose project {n.project}; it goes with "
                f"'compose down'.")
    if n.containers:
        return (f"network {n.name} has containers ({', '.join(n.containers)}); remove them "
                "first.")
    return None


def _rm(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.inventory import find_network, networks_dir

    nets, _ = all_networks(ctx)
    failed = 0
    for ref in args.names:
        n = find_network(nets, ref)
        if n is None:
            if not args.force:
                ctx.err(f"Error: no such network: {ref}.")
                failed = 1
            continue
        why = _refusal(n)
        if why:
            ctx.err(f"Error: {why}")
            failed = 1
            continue
        (networks_dir(ctx.paths) / f"{n.name}.json").unlink(missing_ok=True)
        ctx.out(ref)
    return failed


def prune_networks(ctx: Any, labels: list[str] | None = None) -> list[str]:
    """Remove the user-defined networks no container is on; their names."""
    from ..engine.inventory import networks_dir

    nets, _ = all_networks(ctx)
    removed = []
    for n in nets:
        if _refusal(n) is None and labels_match(n.labels, labels or ()):
            (networks_dir(ctx.paths) / f"{n.name}.json").unlink(missing_ok=True)
            removed.append(n.name)
    return removed


def _prune(args: argparse.Namespace, ctx: Any) -> int:
    labels = parse_filters(args.filter, ("label",)).get("label", [])
    if not args.force and not confirm(
            ctx, "WARNING! This will remove all custom networks not used by at least one "
            "container."):
        return 0
    removed = prune_networks(ctx, labels)
    if removed:
        ctx.out("Deleted Networks:")
        for name in removed:
            ctx.out(name)
    return 0
