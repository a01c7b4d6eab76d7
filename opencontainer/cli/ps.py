"""``ps``, and how every container command finds containers: the index of this user's
containers (:mod:`opencontainer.engine.index`) plus the compose project beside the current
directory.

Its own small module (the other container commands are in :mod:`.containers`), so that ``ps``
imports little: neither the compose commands nor the engine.
"""

from __future__ import annotations

import argparse
import functools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

SHORT = 12


# -- finding containers: standalone and compose, from anywhere -----------------------------------
def _cwd_project(ctx: Any) -> Any:
    """The compose project beside the current directory (``Located``), or None."""
    from ..errors import OpenContainerError
    from .locate import _locate

    try:
        return _locate(argparse.Namespace(), ctx)
    except OpenContainerError:
        return None


def _entries(ctx: Any, here: Any = None) -> list[Any]:
    """Every container of this user (see :mod:`opencontainer.engine.index`)."""
    from ..engine import index

    here = _cwd_project(ctx) if here is None else here
    extra = [index.Project(name=here.name, working_dir=here.working_dir, state=here.state)
             ] if here else []
    return index.entries(ctx.paths, extra)


# -- ps ----------------------------------------------------------------------------------------
def _command_text(argv: Iterable[str], trunc: bool) -> str:
    import shlex

    text = " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else shlex.quote(a) for a in argv)
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def _row(e: Any, now: float, trunc: bool = True) -> dict[str, Any]:
    """A ``docker ps`` row: its fields are what ``--format`` templates name (``.Label "k"``
    is a method, left out of ``json``)."""
    from datetime import UTC, datetime

    from ..humanize import human_ago

    summ = e.summary
    created = datetime.fromtimestamp(summ.created, UTC).isoformat(
        timespec="microseconds").replace("+00:00", "Z")
    labels = ",".join(f"{k}={v}" for k, v in sorted(summ.labels.items()))
    return {
        "ID": summ.id[:SHORT] if trunc else summ.id,
        "Image": summ.image,
        "Command": _command_text(e.command, trunc),
        "CreatedAt": created,
        "RunningFor": human_ago(created, now),
        "Status": e.status_text,
        "State": summ.status,
        "Ports": e.ports_text,
        "Names": summ.name,
        "Labels": labels,
        "Mounts": ",".join(m.name or m.source for m in summ.mounts),
        "Networks": ",".join(summ.networks),
        "ExitCode": "" if summ.exit_code is None else str(summ.exit_code),
        "LocalVolumes": str(sum(1 for m in summ.mounts if m.name)),
        "Size": "0B",
        "Label": functools.partial(_label, dict(summ.labels)),
    }


def _label(labels: dict[str, str], key: str) -> str:
    return labels.get(key, "")


def configure_ps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="show all containers")
    parser.add_argument("-q", "--quiet", action="store_true", help="only display IDs")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("--format", default="table", help="table (default), json or a template")
    parser.add_argument("-n", "--last", type=int, default=-1,
                        help="show the n last created containers (all states)")
    parser.add_argument("-l", "--latest", action="store_true",
                        help="show the latest created container (all states)")
    parser.add_argument("-s", "--size", action="store_true", help="(accepted, ignored)")
    parser.add_argument("-f", "--filter", action="append", default=[],
                        help="filter (KEY=VALUE, repeatable): id, name, label, status, exited, "
                             "health, ancestor, volume, publish, expose, network, before, since")


def _image_resolver(ctx: Any) -> Callable[[str], str | None]:
    def resolve(ref: str) -> str | None:
        from ..image.store import ImageStore

        return str(ImageStore(ctx.paths.store).resolve(ref).id)

    return resolve


PS_TABLE = ("{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
            "\t{{.Names}}")
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS",
              "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS",
              "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
              "LocalVolumes": "LOCAL VOLUMES", "ExitCode": "EXIT CODE"}


def run_ps(args: argparse.Namespace, ctx: Any) -> int:
    """Every container of this user — standalone and those of every compose project — as
    ``docker ps``, wherever it is run from (beside a compose file too: that project's
    containers are among them, named ``project-service-N`` and labelled as compose does)."""
    from ..engine.filters import Filters

    filters = Filters.parse(args.filter)  # refused before anything is listed
    now = time.time()
    entries = _entries(ctx)
    show_all = args.all or filters.shows_all or args.latest or args.last >= 0
    chosen = [e for e in entries if show_all or e.summary.status in ("running", "restarting",
                                                                     "paused")]
    if filters:
        kept = {id(s) for s in filters.select([e.summary for e in chosen],
                                              [e.summary for e in entries],
                                              _image_resolver(ctx))}
        chosen = [e for e in chosen if id(e.summary) in kept]
    if args.latest:
        chosen = chosen[:1]
    elif args.last >= 0:
        chosen = chosen[:args.last]
    rows = [_row(e, now, not args.no_trunc) for e in chosen]
    if args.quiet:
        for r in rows:
            ctx.out(r["ID"])
        return 0
    from .format import render

    ctx.stdout.write(render(args.format, rows, table=PS_TABLE, headers=PS_HEADERS,
                            type_name="ContainerContext"))
    ctx.stdout.flush()
    return 0
