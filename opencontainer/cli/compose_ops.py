"""``compose pause``, ``unpause``, ``attach``, ``stats`` and ``push`` (docker compose's).

Thin wrappers over the container commands: a project's SERVICE names are resolved to its
containers as the other compose commands do (:func:`.compose.locate`, :func:`.compose._containers`),
then

- ``pause``/``unpause`` ask the project's supervisor (control operations ``pause``/``unpause``)
  for the running (paused) containers of the services, printing ``✔ Container NAME  Paused``
  on stderr as docker compose does;
- ``attach SERVICE`` follows the output of the service's container ``--index`` (default 1), as
  ``attach`` does (:func:`.container_ops.attach_entry`);
- ``stats [SERVICE...]`` is ``stats`` for the project's containers (:mod:`.stats`);
- ``push [SERVICE...]`` pushes each service's ``image:`` (each image once) with
  :func:`opencontainer.image.push.push`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from .compose import DRY, _alive, _containers, _request, locate
from .locate import Located

ACTIVE = ("running", "restarting", "starting", "stopping", "paused")


def _entries(loc: Located, services: Sequence[str] = (), all_: bool = False) -> list[Any]:
    """The project's containers (index entries; one-offs left out), of ``services`` if given,
    only the active ones unless ``all_``, in service and number order."""
    from ..engine import index

    project = index.Project(name=loc.name, working_dir=loc.working_dir, state=loc.state)
    out = [e for e in index.project_entries(project, time.time())
           if not e.state.one_off and (not services or e.state.service in services)
           and (all_ or e.state.status in ACTIVE)]
    return sorted(out, key=lambda e: (e.state.service, e.state.number))


# -- pause / unpause ------------------------------------------------------------------------------
def configure_pause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def configure_unpause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def _pause(args: argparse.Namespace, ctx: Any, op: str) -> int:
    loc = locate(args, ctx, args.services)
    want = "running" if op == "pause" else "paused"
    names = [st.name for st in _containers(loc, args.services, all_=False) if st.status == want]
    verb = "Pausing" if op == "pause" else "Unpausing"
    if getattr(args, "dry_run", False):
        for n in names:
            ctx.err(f"{DRY} Container {n}  {verb}")
        return 0
    if not names or not _alive(loc.state):
        return 0
    done = _request(loc, op, containers=names).get("containers", [])
    for n in done:
        ctx.err(f" ✔ Container {n}  {'Paused' if op == 'pause' else 'Unpaused'}")
    return 0


def run_pause(args: argparse.Namespace, ctx: Any) -> int:
    return _pause(args, ctx, "pause")


def run_unpause(args: argparse.Namespace, ctx: Any) -> int:
    return _pause(args, ctx, "unpause")


# -- attach ---------------------------------------------------------------------------------------
def configure_attach(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=int, default=1,
                        help="index of the container if the service has several replicas")
    parser.add_argument("--no-stdin", action="store_true",
                        help="do not attach STDIN (always: attach follows the output only)")
    parser.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                        help="proxy all received signals to the process (default true)")
    parser.add_argument("--detach-keys", default=None, help="(accepted, ignored)")
    parser.add_argument("service", metavar="SERVICE")


def run_attach(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ContainerError
    from .container_ops import attach_entry

    loc = locate(args, ctx, [args.service])
    found = [e for e in _entries(loc, [args.service], all_=True)
             if e.state.number == args.index]
    if not found:
        raise ContainerError(f"service \"{args.service}\" is not running container "
                             f"#{args.index}.")
    return attach_entry(found[0], args.sig_proxy == "true", ctx)


# -- stats ----------------------------------------------------------------------------------------
def configure_stats(parser: argparse.ArgumentParser) -> None:
    from .stats import configure_stats as configure

    configure(parser)
    # SERVICE names, not containers
    parser._actions[-1].metavar = "SERVICE"
    parser._actions[-1].dest = "services"


def run_stats(args: argparse.Namespace, ctx: Any) -> int:
    from .stats import show_stats

    loc = locate(args, ctx, args.services)
    return show_stats(args, ctx, lambda: _entries(loc, args.services, all_=args.all))


# -- push -----------------------------------------------------------------------------------------
def configure_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ignore-push-failures", action="store_true",
                        help="push what images can be pushed")
    parser.add_argument("--include-deps", action="store_true",
                        help="also push images of services declared as dependencies")
    parser.add_argument("-q", "--quiet", action="store_true", help="push without printing "
                        "progress information")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_push(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..image.push import push
    from .compose import load_compose

    project = load_compose(args, ctx, for_run=True)
    names = project.check_runnable(list(args.services) or None, deps=args.include_deps,
                                   need_image=False)
    every = {**project.disabled_services, **project.services}
    refs = list(dict.fromkeys(every[n].image for n in sorted(names) if every[n].image))
    quiet = args.quiet or getattr(args, "progress", None) == "quiet"
    if getattr(args, "dry_run", False):
        for ref in refs:
            ctx.err(f"{DRY} Pushing {ref}")
        return 0
    for ref in refs:
        last: dict[str, str] = {}

        def progress(short: str, status: str, ref: str = ref, last: dict[str, str] = last
                     ) -> None:
            if quiet or status.startswith("Pushing ") or last.get(short) == status:
                return
            last[short] = status
            ctx.err(f" ✔ Pushing {ref}: {short} {status}")

        async def one(ref: str = ref, progress: Any = progress) -> Any:
            return await push(ref, paths=ctx.paths, env=ctx.env, progress=progress)

        try:
            anyio.run(one, backend="asyncio")
        except Exception as exc:
            if not args.ignore_push_failures:
                raise
            if not quiet:
                ctx.err(f" ✘ Pushing {ref}: Error: {exc}")
            continue
        if not quiet:
            ctx.err(f" ✔ Pushing {ref}  Pushed")
    return 0
