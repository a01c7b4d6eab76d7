"""``opencontainer compose <cmd>``: up, down, ps, logs, exec, run, start, stop, ... (not config).

``up`` is detached by default: it starts ``opencontainer supervise`` for the project in a new
session (unless one already runs), hands it the resolved model (``project.json``) and waits on
the control socket until everything started (or is healthy, with ``--wait``), or fails with the
reason. ``--foreground`` runs the same supervisor in this process and prints the logs.

Commands that only look (``ps``, ``logs``, ``ls``, ``port``, ``top``, ``images``) read the state
files and do not import the engine, so they stay fast and work when the supervisor is gone; they
load the compose YAML only to check a SERVICE name that the saved model does not know
(:func:`check_services`, shared by every command that takes SERVICE names).

Before anything is forked, pulled or created, ``up``/``run`` refuse what cannot run
(:func:`load_runnable`: unknown services, no image, a missing env file, with file, line and
key) and ``up`` resolves every image in this process (:func:`pre_pull`), so a refused ``up``
leaves no supervisor behind; one the supervisor refuses with nothing created is retired.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from ..engine.state import ContainerState, ProjectState, effective
from ..errors import ComposeError, ConfigError, ContainerError, StateError
from ..humanize import _ago, status_text
from .locate import Located, _find_compose_dir, _locate

COLOURS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)


# -- locating a project without loading it (cli/locate.py: ps imports it without this module)
def locate(args: argparse.Namespace, ctx: Any, services: Iterable[str] = ()) -> Located:
    """Find the project's state directory the cheap way (no YAML); ``services`` named on the
    command line must exist (see :func:`check_services`)."""
    loc = _locate(args, ctx)
    check_services(loc, args, ctx, services)
    return loc


def check_services(loc: Located, args: argparse.Namespace, ctx: Any,
                   services: Iterable[str]) -> None:
    """Every command that takes SERVICE names refuses unknown ones, as docker compose does
    (``no such service: NAME``). Cheap first: the services of the saved model
    (``project.json``) and of existing containers; only for a name not found there is the
    compose file loaded (a service added since the last ``up``, or one in a profile)."""
    names = [s for s in services if s]
    if not names:
        return
    data = loc.state.read_project() or {}
    known = set(data.get("services") or ())
    known.update(c.service for c in loc.state.containers())
    missing = [n for n in names if n not in known]
    if not missing:
        return
    explicit = bool(getattr(args, "files", None) or getattr(args, "project_directory", None))
    if explicit or _find_compose_dir(Path(os.getcwd())) == loc.working_dir:
        project = load_compose(args, ctx, for_run=True)
        known.update(project.services)
        known.update(project.disabled_services)
        missing = [n for n in names if n not in known]
    if missing:
        raise ComposeError(f"no such service: {missing[0]}")


def load_compose(args: argparse.Namespace, ctx: Any, *, for_run: bool = False) -> Any:
    """The full compose load (YAML, interpolation, validation): the loader's ``Project``
    (``for_run``: see ``LoadOptions.for_run``)."""
    from ..compose.loader import LoadOptions, load_project

    try:
        from ..compose.cli_options import options_from_args

        opts = options_from_args(args, ctx.env, os.getcwd())
    except ImportError:
        opts = LoadOptions(
            files=tuple(args.files or ()),
            project_name=args.project_name,
            profiles=tuple(args.profiles or ()),
            env_files=tuple(args.env_files or ()),
            project_directory=args.project_directory,
            env=ctx.env,
        )
    return load_project(attrs.evolve(opts, for_run=for_run) if for_run else opts)


def load_model(args: argparse.Namespace, ctx: Any) -> Any:
    """The compose project as the engine's model (for commands that do not run it)."""
    from ..engine.adapter import to_model

    return to_model(load_compose(args, ctx), ctx.env)


def load_runnable(args: argparse.Namespace, ctx: Any, services: Sequence[str], *,
                  deps: bool = True) -> tuple[Any, list[str]]:
    """The model of a project about to be run, and the images of the services involved.
    Refuses (file, line, key) before anything is forked, pulled or created: unknown service
    names, services without an image, missing required env files."""
    from ..engine.adapter import to_model

    project = load_compose(args, ctx, for_run=True)
    names = project.check_runnable(list(services) or None, deps=deps)
    every = {**project.disabled_services, **project.services}
    if any(every[n].build for n in names) and ctx.env.get("OPENCONTAINER_RUNNER") != "shell":
        from .compose_build import build_services

        # up --build builds them all; up builds what is missing; --no-build never builds
        build_services(project, names, ctx, force=bool(getattr(args, "build", False)),
                       no_build=bool(getattr(args, "no_build", False)),
                       quiet=bool(getattr(args, "quiet_pull", False)))
    images = list(dict.fromkeys(every[n].image for n in names
                                if every[n].image and not every[n].build))
    return to_model(project, ctx.env), images


def pre_pull(ctx: Any, images: Sequence[str], policy: str, mode: str | None = None) -> None:
    """Resolve (pull if the policy says so) every image in this process, so that an image
    that cannot be had is refused before a supervisor is started; the images concurrently."""
    if ctx.env.get("OPENCONTAINER_RUNNER") == "shell" or not images:
        return
    import anyio

    from ..image.pull import ensure_image

    def progress(event: Any) -> None:
        if getattr(event, "kind", "") in ("pull-started", "pulled"):
            _progress(ctx, event.to_dict(), mode)

    async def pull_all() -> None:
        async with anyio.create_task_group() as tg:
            for ref in images:
                tg.start_soon(partial(ensure_image, ref, paths=ctx.paths, policy=policy,
                                      progress=progress))

    _run_first_error(pull_all)


def _run_first_error(fn: Any) -> None:
    """``anyio.run(fn)``; a task group's failure raised as its first error (one sentence)."""
    import anyio

    try:
        anyio.run(fn, backend="asyncio")
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _client(state: ProjectState, timeout: float | None = 10.0) -> Any:
    from ..api.control import ControlClient

    return ControlClient(state.socket, timeout=timeout)


def _alive(state: ProjectState) -> bool:
    return state.supervisor_alive()


def _containers(loc: Located, services: Sequence[str] = (), all_: bool = True,
                one_off: bool = False) -> list[ContainerState]:
    alive = _alive(loc.state)
    out = []
    for st in loc.state.containers():
        st = effective(st, alive)
        if services and st.service not in services:
            continue
        if st.one_off and not one_off:
            continue
        if not all_ and st.status not in ("running", "restarting", "starting", "stopping",
                                            "paused"):
            continue
        out.append(st)
    return out


def _short(st: ContainerState) -> str:
    prefix = f"{st.project}-"
    if st.name.startswith(prefix) and st.name != prefix:
        return st.name[len(prefix):]
    return st.name


def _ports_text(st: ContainerState) -> str:
    return ", ".join(f"{ip}:{pub}->{tgt}/{proto}" for ip, pub, tgt, proto in st.publishers)


def _command_text(st: ContainerState) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in st.command)


def container_id(st: ContainerState, state_dir: Path | None) -> str:
    """The container's 64-hex ID (derived, as the index derives it, for old records)."""
    if st.id or state_dir is None:
        return st.id or st.name
    from ..engine.index import compose_id

    return compose_id(state_dir, st.name, st.created_at)


def ps_json(st: ContainerState, project: str, state_dir: Path | None = None) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(st.created_at))
    state = "running" if st.status in ("starting", "stopping") else st.status
    return {
        "Command": _command_text(st),
        "CreatedAt": created,
        "ExitCode": st.exit_code or 0,
        "Health": st.health if state == "running" else "",
        "ID": container_id(st, state_dir),
        "Image": st.image,
        "Labels": f"com.docker.compose.project={project},com.docker.compose.service={st.service}",
        "LocalVolumes": "0",
        "Mounts": "",
        "Name": st.name,
        "Names": st.name,
        "Networks": f"{project}_default",
        "Ports": _ports_text(st),
        "Project": project,
        "Publishers": [
            {"URL": ip, "TargetPort": tgt, "PublishedPort": pub, "Protocol": proto}
            for ip, pub, tgt, proto in st.publishers
        ],
        "RunningFor": _ago(time.time() - st.created_at) + " ago",
        "Service": st.service,
        "Size": "0B",
        "State": state,
        "Status": status_text(st),
    }


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


# -- ps -------------------------------------------------------------------------------------------
def configure_ps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--services", action="store_true")
    parser.add_argument("--format", default="table")
    parser.add_argument("--status", action="append", default=None)
    parser.add_argument("--filter", default=None)
    parser.add_argument("--orphans", action="store_true", default=True)
    parser.add_argument("services_args", nargs="*", metavar="SERVICE")


def run_ps(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services_args)
    statuses = set(args.status or ())
    if args.filter and args.filter.startswith("status="):
        statuses.add(args.filter.split("=", 1)[1])
    show_all = args.all or bool(statuses)
    rows = _containers(loc, args.services_args, all_=show_all)
    if statuses:
        rows = [r for r in rows if (r.status if r.status not in ("starting", "stopping")
                                    else "running") in statuses]
    if args.services:
        for s in dict.fromkeys(r.service for r in rows):
            ctx.out(s)
        return 0
    if args.quiet:  # docker compose ps -q: the full IDs
        for r in rows:
            ctx.out(container_id(r, loc.state.root))
        return 0
    from .format import is_table, render

    data = [ps_json(r, loc.name, loc.state.root) for r in rows]
    if is_table(args.format):
        for d in data:
            d["Command"] = d["Command"][:40]
    ctx.stdout.write(render(args.format, data, table=COMPOSE_PS_TABLE,
                            headers=COMPOSE_PS_HEADERS, type_name="ContainerContext"))
    ctx.stdout.flush()
    return 0


COMPOSE_PS_TABLE = ("{{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}"
                    "\t{{.Status}}\t{{.Ports}}")
COMPOSE_PS_HEADERS = {
    "ID": "CONTAINER ID", "Name": "NAME", "Names": "NAMES", "Image": "IMAGE",
    "Command": "COMMAND", "Project": "PROJECT", "Service": "SERVICE", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "State": "STATE", "Status": "STATUS", "Health": "HEALTH",
    "ExitCode": "EXIT CODE", "Ports": "PORTS", "Publishers": "PUBLISHERS", "Labels": "LABELS",
    "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
}


# -- up -------------------------------------------------------------------------------------------
def configure_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true", default=True)
    parser.add_argument("--foreground", "--attach-foreground", dest="foreground",
                        action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--wait-timeout", type=float, default=None)
    parser.add_argument("--force-recreate", action="store_true")
    parser.add_argument("--no-recreate", action="store_true")
    parser.add_argument("--no-deps", action="store_true")
    parser.add_argument("--remove-orphans", action="store_true")
    parser.add_argument("--abort-on-container-exit", action="store_true")
    parser.add_argument("--exit-code-from", default=None)
    parser.add_argument("--scale", action="append", default=None, metavar="SERVICE=NUM")
    parser.add_argument("-t", "--timeout", type=float, default=None)
    parser.add_argument("--pull", choices=["always", "missing", "never"], default="missing")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument("--no-log-prefix", action="store_true")
    parser.add_argument("--plugin-dir", action="append", default=None)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--quiet-pull", action="store_true")
    parser.add_argument("--no-start", action="store_true",
                        help="create the services' containers, do not start them")
    parser.add_argument("-V", "--renew-anon-volumes", action="store_true",
                        help="recreate anonymous volumes instead of keeping their data")
    parser.add_argument("--no-attach", action="append", default=[], metavar="SERVICE",
                        help="do not show this service's output (foreground)")
    parser.add_argument("--attach", action="append", default=[], metavar="SERVICE",
                        help="show only these services' output (foreground)")
    parser.add_argument("--timestamps", action="store_true",
                        help="show timestamps (foreground)")
    parser.add_argument("-y", "--yes", action="store_true",
                        help="assume yes to every prompt (there are none here)")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def configure_create(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force-recreate", action="store_true")
    parser.add_argument("--no-recreate", action="store_true")
    parser.add_argument("--remove-orphans", action="store_true")
    parser.add_argument("--scale", action="append", default=None, metavar="SERVICE=NUM")
    parser.add_argument("--pull", choices=["always", "missing", "never"], default="missing")
    parser.add_argument("--quiet-pull", action="store_true")
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("-y", "--yes", action="store_true")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_create(args: argparse.Namespace, ctx: Any) -> int:
    """``compose create``: ``up --no-start``."""
    up = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    configure_up(up)
    ns = up.parse_args([])
    for key, value in vars(args).items():
        setattr(ns, key, value)
    ns.no_start = True
    return run_up(ns, ctx)


def configure_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-deps", action="store_true")
    parser.add_argument("scales", nargs="+", metavar="SERVICE=NUM")


def run_scale(args: argparse.Namespace, ctx: Any) -> int:
    """``compose scale web=3``: ``up --no-recreate --scale web=3 web``."""
    scale = _scale(args.scales)
    up = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    configure_up(up)
    ns = up.parse_args([])
    for key, value in vars(args).items():
        setattr(ns, key, value)
    ns.scale, ns.no_recreate, ns.services = list(args.scales), True, list(scale)
    return run_up(ns, ctx)


def configure_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["pretty", "json"], default="pretty")
    parser.add_argument("--short", action="store_true")


COMPOSE_VERSION = "2.29.0"  # the docker compose whose CLI this one follows


def run_version(args: argparse.Namespace, ctx: Any) -> int:
    if args.short:
        ctx.out(COMPOSE_VERSION)
    elif args.format == "json":
        ctx.out(json.dumps({"version": f"v{COMPOSE_VERSION}"}))
    else:
        from .. import __version__

        ctx.out(f"Docker Compose version v{COMPOSE_VERSION} (opencontainer {__version__})")
    return 0


def configure_cp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--archive", action="store_true")
    parser.add_argument("-L", "--follow-link", action="store_true")
    parser.add_argument("--index", type=int, default=None)
    parser.add_argument("--all", action="store_true")
    parser.add_argument("src", metavar="SRC")
    parser.add_argument("dest", metavar="DEST")


def run_cp(args: argparse.Namespace, ctx: Any) -> int:
    """``compose cp SERVICE:PATH DEST`` (or the other way): the service's container
    (``--index``, else the first; ``--all``: into each of them)."""
    from . import containers

    src_svc, _, src_path = args.src.partition(":") if ":" in args.src else ("", "", args.src)
    dst_svc, _, dst_path = args.dest.partition(":") if ":" in args.dest else ("", "", args.dest)
    service = src_svc or dst_svc
    if not service or (src_svc and dst_svc):
        raise ConfigError("one of SRC and DEST must be SERVICE:PATH.")
    loc = locate(args, ctx, [service])
    cs = sorted(_containers(loc, [service]), key=lambda c: c.number)
    if args.index is not None:
        cs = [c for c in cs if c.number == args.index]
    if not cs:
        raise ContainerError(f"service {service!r} has no container"
                             + (f" with index {args.index}." if args.index else "."))
    targets = cs if args.all and dst_svc else cs[:1]
    for c in targets:
        ns = argparse.Namespace(
            archive=args.archive, follow_link=args.follow_link,
            src=f"{c.name}:{src_path}" if src_svc else args.src,
            dest=f"{c.name}:{dst_path}" if dst_svc else args.dest)
        code = containers.run_cp(ns, ctx)
        if code:
            return code
    return 0


def _scale(values: Iterable[str] | None) -> dict[str, int]:
    out = {}
    for v in values or ():
        name, sep, num = v.partition("=")
        if not sep or not num.isdigit():
            raise ConfigError(f"invalid --scale {v!r}: use SERVICE=NUM.")
        out[name] = int(num)
    return out


def _up_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.force_recreate and args.no_recreate:
        raise ConfigError("--force-recreate and --no-recreate cannot be used together.")
    return {
        "services": list(args.services),
        "force_recreate": args.force_recreate,
        "no_recreate": args.no_recreate,
        "no_deps": args.no_deps,
        "remove_orphans": args.remove_orphans,
        "scale": _scale(args.scale),
        "wait": args.wait,
        "wait_timeout": args.wait_timeout,
        "timeout": args.timeout,
        "pull": args.pull,
        "start": not getattr(args, "no_start", False),
    }


def spawn_supervisor(state: ProjectState, ctx: Any, working_dir: Path,
                     plugin_dirs: Sequence[str] = ()) -> None:
    """Fork ``opencontainer supervise`` in a new session (double fork: no zombie, no tty)."""
    state.root.mkdir(parents=True, exist_ok=True)
    # -P: the supervisor runs in the project directory, whose *.py must not shadow modules
    argv = [sys.executable, "-P", "-m", "opencontainer", "supervise", "--state-dir",
            str(state.root),
            "--project-dir", str(working_dir)]
    for d in plugin_dirs:
        argv += ["--plugin-dir", str(Path(d).absolute())]
    env = dict(ctx.env)
    log_path = str(state.supervisor_log)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setsid()
            if os.fork() == 0:
                fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.chdir(str(working_dir))
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _log_tail(state: ProjectState, n: int = 5) -> str:
    try:
        lines = state.supervisor_log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def ensure_supervisor(state: ProjectState, ctx: Any, working_dir: Path,
                      plugin_dirs: Sequence[str] = (), timeout: float = 30.0) -> Any:
    client = _client(state)
    if _alive(state) and client.alive():
        return client
    if _alive(state):  # locked but not answering yet: give it a moment
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if client.alive():
                return client
            time.sleep(0.05)
        raise StateError(f"the supervisor of {state.root} holds the lock but does not answer.")
    try:
        start = state.supervisor_log.stat().st_size
    except OSError:
        start = 0
    spawn_supervisor(state, ctx, working_dir, plugin_dirs)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if state.socket.exists() and client.alive():
            return client
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
        try:
            text = state.supervisor_log.read_text(errors="replace")[start:]
        except OSError:
            text = ""
        if "Error:" in text and not _alive(state):
            # its own one-sentence error, as it said it (not wrapped in a second "Error:")
            last = text.strip().splitlines()[-1]
            said = last.partition("Error:")[2].strip() if "Error:" in last else last
            raise StateError(said or "the supervisor failed to start.")
    raise StateError(f"the supervisor did not start in time: {_log_tail(state)}")


_PROGRESS = {"create": "Created", "start": "Started", "die": "Exited", "destroy": "Removed",
             "kill": "Stopping"}


def _progress(ctx: Any, event: dict[str, Any], mode: str | None = None) -> None:
    """One line of ``up``'s progress on stderr; ``mode`` is ``--progress``: ``quiet`` shows
    nothing, ``json`` the events as JSON lines."""
    if mode == "quiet":
        return
    if mode == "json":
        ctx.err(json.dumps(event, sort_keys=True))
        return
    kind = event.get("type")
    name = event.get("container") or event.get("ref", "")
    if kind == "health_status":
        if event.get("status") == "healthy":
            ctx.err(f" ✔ Container {name}  Healthy")
        elif event.get("status") == "unhealthy":
            ctx.err(f" ✘ Container {name}  Unhealthy")
        return
    if kind == "pull-started":
        ctx.err(f" ⠿ {name} Pulling")
        return
    if kind == "pulled":
        ctx.err(f" ✔ {name} Pulled")
        return
    label = _PROGRESS.get(str(kind))
    if label:
        mark = "✘" if kind == "die" and event.get("exit_code") not in (0, None) else "✔"
        ctx.err(f" {mark} Container {name}  {label}")


def run_up(args: argparse.Namespace, ctx: Any) -> int:
    options = _up_options(args)
    if args.foreground or args.abort_on_container_exit or args.exit_code_from:
        return run_foreground(args, ctx, options)
    model, images = load_runnable(args, ctx, args.services, deps=not args.no_deps)
    state = ProjectState(Path(model.state_dir), ctx.paths.runtime)
    # checks before forking anything: ports that cannot work, images that cannot be had
    _check_ports_early(model, ctx)
    if getattr(args, "dry_run", False):
        return _dry_run_up(model, state, options, ctx)
    if getattr(args, "renew_anon_volumes", False):
        # a recreated container here always gets new anonymous volumes (its folder, where
        # they live, is made anew): -V is a recreate
        options["force_recreate"] = True
    if ctx.env.get("OPENCONTAINER_RUNNER") != "shell":
        pre_pull(ctx, images, args.pull, args.progress)
        options["pull"] = "missing" if args.pull == "always" else args.pull
    from ..engine.state import register_project
    from ..paths import atomic_write

    atomic_write(state.project_json, model.to_json())
    register_project(ctx.paths, model.name, state.root, model.working_dir,
                     list(model.compose_files))
    spawned = not _alive(state)
    client = ensure_supervisor(state, ctx, Path(model.working_dir), args.plugin_dir or ())
    client.timeout = None
    final: dict[str, Any] = {}
    try:
        for msg in client.stream("up", options=options):
            if "event" in msg:
                _progress(ctx, msg["event"], args.progress)
            else:
                final = msg
    finally:
        if spawned and not final.get("ok"):
            _retire_idle_supervisor(state, client)
    for w in (final.get("result") or {}).get("warnings", []):
        ctx.err(f"WARNING: {w}")
    if not final.get("ok"):
        raise ContainerError(str(final.get("error") or "up failed."))
    return 0


DRY = " DRY-RUN MODE - "
_DRY_VERBS = {"create": "Creating", "recreate": "Recreate", "start": "Starting",
              "keep": "Running", "remove": "Removing"}


def _dry_run_up(model: Any, state: ProjectState, options: dict[str, Any], ctx: Any) -> int:
    """``--dry-run up``: what ``up`` would do to each container, nothing done."""
    from ..engine.planner import Observed, PlanOptions, plan

    observed = [Observed(name=c.name, service=c.service, number=c.number,
                         config_hash=c.config_hash, status=c.status)
                for c in state.containers() if not c.one_off]
    actions = plan(model, observed, PlanOptions(
        force_recreate=options["force_recreate"], no_recreate=options["no_recreate"],
        remove_orphans=options["remove_orphans"], services=tuple(options["services"]),
        no_deps=options["no_deps"], scale=options["scale"], start=options["start"]))
    for a in actions:
        ctx.err(f"{DRY} Container {a.container}  {_DRY_VERBS.get(a.kind, a.kind)}")
        if a.kind in ("create", "recreate") and options["start"]:
            ctx.err(f"{DRY} Container {a.container}  Starting")
    return 0


def _dry_run(loc: Located, services: Sequence[str], verb: str, ctx: Any) -> int:
    """``--dry-run`` of a command that acts on existing containers: which, nothing done."""
    for c in _containers(loc, services):
        ctx.err(f"{DRY} Container {c.name}  {verb}")
    return 0


def _retire_idle_supervisor(state: ProjectState, client: Any) -> None:
    """A refused ``up`` that started the supervisor and created nothing leaves nothing
    running: ask the supervisor to go (``down``) and wait until it has."""
    if any(not c.one_off for c in state.containers()):
        return
    sup_pid = state.supervisor_pid()
    client.timeout = 10.0
    with contextlib.suppress(Exception):  # best effort: the caller reports the real error
        client.request("down", timeout=1, volumes=False, remove_orphans=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_alive(state) or (
            sup_pid is not None and _pid_running(sup_pid))):
        time.sleep(0.02)


def _check_ports_early(model: Any, ctx: Any) -> None:
    if ctx.env.get("OPENCONTAINER_RUNNER") == "shell":
        return
    from ..engine.network import choose_network, plan_ports, plan_private
    from ..paths import proot_binary
    from ..runtime.proot import ProotCapabilities

    binary = proot_binary(ctx.env)  # a missing proot is said before anything is pulled
    if choose_network(ctx.env).private and any(
            s.network_mode != "host" for s in model.services.values()):
        # the project's own network: any container port binds (the supervisor plans the same)
        plan_private(model, privileged=os.geteuid() == 0)
        return
    caps = ProotCapabilities.detect(binary, ctx.paths.cache)
    plan_ports(model, port_map=caps.port_map, privileged=os.geteuid() == 0,
               low_port_shift=caps.shifts_low_ports())


# -- down -----------------------------------------------------------------------------------------
def configure_down(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--volumes", action="store_true")
    parser.add_argument("--remove-orphans", action="store_true")
    parser.add_argument("--rmi", choices=["all", "local"], default=None)
    parser.add_argument("-t", "--timeout", type=float, default=None)
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_down(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Removing", ctx)
    images = {st.image for st in loc.state.containers()}
    if _alive(loc.state):
        sup_pid = loc.state.supervisor_pid()
        client = _client(loc.state, timeout=None)
        reply = client.request("down", timeout=args.timeout, volumes=args.volumes,
                               remove_orphans=args.remove_orphans)
        if not reply.get("ok"):
            raise ContainerError(str(reply.get("error")))
        for name in reply.get("containers", []):
            ctx.err(f" ✔ Container {name}  Removed")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (_alive(loc.state) or (
                sup_pid is not None and _pid_running(sup_pid))):
            time.sleep(0.02)
    else:
        from ..engine.model import ProjectModel
        from ..engine.state import kill_leftovers, unregister_project
        from ..engine.volumes import remove_volumes

        kill_leftovers(loc.state)

        for st in loc.state.containers():
            _remove_container_dir(loc.state.container_dir(st.name))
            ctx.err(f" ✔ Container {st.name}  Removed")
        if args.volumes:
            data = loc.state.read_project()
            model = ProjectModel.from_json(json.dumps(data)) if data else None
            remove_volumes(loc.state, model)
        unregister_project(ctx.paths, loc.name)
    if args.rmi:
        from ..image.store import ImageStore

        store = ImageStore(ctx.paths.store)
        for ref in sorted(i for i in images if i):
            try:
                store.remove(ref)
                ctx.err(f" ✔ Image {ref}  Removed")
            except Exception as exc:  # an image in use elsewhere: keep going
                ctx.err(f"WARNING: image {ref} not removed: {exc}")
    return 0


def _pid_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    return bool(stat) and stat[0] not in ("Z", "X")


# -- logs -----------------------------------------------------------------------------------------
def configure_logs(parser: argparse.ArgumentParser) -> None:
    # `logs -f` is --follow as in docker compose; the global -f/--file keeps its long form
    _take_short(parser, "-f")
    parser.add_argument("-f", "--follow", action="store_true")
    parser.add_argument("-n", "--tail", default="all")
    parser.add_argument("-t", "--timestamps", action="store_true")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument("--no-log-prefix", action="store_true")
    parser.add_argument("--since", default=None)
    parser.add_argument("--until", default=None)
    parser.add_argument("--index", type=int, default=None)
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def _take_short(parser: argparse.ArgumentParser, option: str) -> None:
    """Free a short option taken by a compose global (its long form keeps working)."""
    existing = parser._option_string_actions.pop(option, None)
    if existing is not None:
        existing.option_strings = [o for o in existing.option_strings if o != option]


def parse_since(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    from ..engine.model import parse_duration

    now = now or time.time()
    try:
        return float(value)
    except ValueError:
        pass
    d = parse_duration(value, -1.0)
    if d >= 0:
        return now - d
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(f"invalid --since {value!r}: use 10m, 1h30m or a timestamp.") from None


def _colour(args: argparse.Namespace, ctx: Any) -> bool:
    """Colours: ``--ansi always|never``, else on a terminal unless ``--no-color``."""
    ansi = getattr(args, "ansi", None)
    if ansi in ("always", "never"):
        return bool(ansi == "always")
    return not getattr(args, "no_color", False) and _is_real(ctx.stdout) and \
        bool(ctx.stdout.isatty())


class LogPrinter:
    """``service-1  | line``: names padded to the widest, coloured only on a TTY."""

    def __init__(self, out: Any, names: Iterable[str], *, colour: bool, prefix: bool = True,
                 timestamps: bool = False, err: Any = None) -> None:
        self.out = out
        self.err = err  # stderr lines go here (docker logs), else with the others
        self.width = max((len(n) for n in names), default=0)
        self.colour = colour
        self.prefix = prefix
        self.timestamps = timestamps
        self._colours: dict[str, int] = {}

    def line(self, name: str, text: str, t: float | None = None,
             stream: str = "stdout") -> None:
        self.width = max(self.width, len(name))
        parts = []
        if self.prefix:
            head = f"{name.ljust(self.width)}  | "
            if self.colour:
                code = self._colours.setdefault(name, COLOURS[len(self._colours) % len(COLOURS)])
                head = f"\x1b[{code}m{head}\x1b[0m"
            parts.append(head)
        if self.timestamps and t is not None:
            from datetime import datetime

            parts.append(datetime.fromtimestamp(t, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ") + " ")
        parts.append(text)
        out = self.err if stream == "stderr" and self.err is not None else self.out
        out.write("".join(parts) + "\n")
        out.flush()


def run_logs(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.state import follow_log, read_logs

    files = [s for s in args.services if s.endswith((".yml", ".yaml")) and Path(s).is_file()]
    if files:  # `compose -f x.yml logs`: main passes the global -f through this parser
        args.files = (args.files or []) + files
        args.services = [s for s in args.services if s not in files]
        args.follow = False
    loc = locate(args, ctx, args.services)
    try:
        tail = None if str(args.tail) in ("all", "-1") else int(args.tail)
    except ValueError:
        raise ConfigError(f"invalid --tail value {args.tail!r}: a number or 'all'.") from None
    since = parse_since(args.since)
    until = parse_since(args.until)
    one = getattr(args, "container", None)  # `logs CONTAINER`: that one, one-offs included

    def chosen() -> list[ContainerState]:
        if one:
            return [c for c in _containers(loc, all_=True, one_off=True) if c.name == one]
        found = _containers(loc, args.services, all_=True)
        if args.index is not None:
            found = [c for c in found if c.number == args.index]
        return found

    containers = chosen()
    colour = _colour(args, ctx)
    printer = LogPrinter(ctx.stdout, [_short(c) for c in containers], colour=colour,
                         prefix=not args.no_log_prefix, timestamps=args.timestamps,
                         err=ctx.stderr if one else None)
    records = []
    offsets: dict[str, int] = {}
    for c in containers:
        records += read_logs(loc.state, c.name, c.service, tail=tail, since=since)
        try:
            offsets[c.name] = loc.state.log_file(c.name).stat().st_size
        except OSError:
            offsets[c.name] = 0
    records.sort(key=lambda r: r.t)
    short = {c.name: _short(c) for c in containers}
    for r in records:
        if until is not None and r.t > until:
            continue
        printer.line(short[r.container], r.text, r.t, r.stream)
    if not args.follow:
        return 0
    try:
        idle_dead = 0
        while True:
            got = False
            for c in chosen():
                short.setdefault(c.name, _short(c))
                start = offsets.setdefault(c.name, 0)
                for off, line in follow_log(loc.state.log_file(c.name), start):
                    offsets[c.name] = off
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if until is not None and float(d.get("t") or 0) > until:
                        continue
                    printer.line(short[c.name], str(d.get("l", "")), d.get("t"),
                                 str(d.get("s", "stdout")))
                    got = True
            if until is not None and time.time() > until:
                return 0
            if not got:
                if not _alive(loc.state) or not any(
                    c.status in ("running", "restarting", "starting", "stopping", "paused")
                    for c in chosen()
                ):
                    idle_dead += 1
                    if idle_dead > 2:
                        return 0
                time.sleep(0.1)
            else:
                idle_dead = 0
    except KeyboardInterrupt:
        return 0


# -- start / stop / restart / kill / rm ---------------------------------------------------------
def _simple(parser: argparse.ArgumentParser, timeout: bool = False) -> None:
    if timeout:
        parser.add_argument("-t", "--timeout", type=float, default=None)
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def configure_stop(parser: argparse.ArgumentParser) -> None:
    _simple(parser, timeout=True)


def configure_start(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true")
    _simple(parser)


def configure_restart(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-deps", action="store_true")
    _simple(parser, timeout=True)


def configure_kill(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", default="SIGKILL")
    parser.add_argument("--remove-orphans", action="store_true")
    _simple(parser)


def configure_rm(parser: argparse.ArgumentParser) -> None:
    # `rm -f` is --force as in docker compose; the global -f/--file keeps its long form
    _take_short(parser, "-f")
    parser.add_argument("-f", "--force", action="store_true")
    parser.add_argument("-s", "--stop", action="store_true")
    parser.add_argument("-v", "--volumes", action="store_true")
    _simple(parser)


def _request(loc: Located, op: str, **kw: Any) -> dict[str, Any]:
    client = _client(loc.state, timeout=None)
    client.connect_wait = 2.0  # callers saw it alive: it may be opening its socket
    reply: dict[str, Any] = client.request(op, **kw)
    if not reply.get("ok"):
        raise ContainerError(str(reply.get("error")))
    return reply


def run_stop(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Stopping", ctx)
    if not _alive(loc.state):
        from ..engine.state import kill_leftovers

        kill_leftovers(loc.state)
        return 0
    for name in _request(loc, "stop", services=args.services, timeout=args.timeout).get(
            "containers", []):
        ctx.err(f" ✔ Container {name}  Stopped")
    return 0


def _start_via_up(loc: Located, ctx: Any, services: Sequence[str], wait: bool = False,
                  quiet: bool = False) -> int:
    if not loc.state.project_json.exists():
        raise StateError("the project has no containers to start: run 'up' first.")
    client = ensure_supervisor(loc.state, ctx, loc.working_dir)
    client.timeout = None
    final: dict[str, Any] = {}
    for msg in client.stream("up", options={"services": list(services), "no_recreate": True,
                                            "wait": wait}):
        if "event" in msg:
            if not quiet:
                _progress(ctx, msg["event"])
        else:
            final = msg
    if not final.get("ok"):
        raise ContainerError(str(final.get("error")))
    return 0


def _check_result(reply: dict[str, Any]) -> None:
    result = reply.get("result") or {}
    if result and not result.get("ok", True):
        raise ContainerError(str((result.get("errors") or ["failed"])[0]))


def run_start(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Starting", ctx)
    if not _alive(loc.state):
        return _start_via_up(loc, ctx, args.services, args.wait)
    _check_result(_request(loc, "start", services=args.services))
    return 0


def run_restart(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Restarting", ctx)
    if not _alive(loc.state):
        return _start_via_up(loc, ctx, args.services)
    _check_result(_request(loc, "restart", services=args.services, timeout=args.timeout))
    return 0


def run_kill(args: argparse.Namespace, ctx: Any) -> int:
    from ..runtime.signals import parse_signal

    parse_signal(args.signal)  # a bad one is a usage error, before anything is asked
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Killing", ctx)
    if not _alive(loc.state):
        raise ContainerError("no container is running.")
    names = _request(loc, "kill", services=args.services, signal=args.signal).get(
        "containers", [])
    if not names:
        raise ContainerError("no container is running.")
    for n in names:
        ctx.err(f" ✔ Container {n}  Killed")
    return 0


def run_rm(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if getattr(args, "dry_run", False):
        return _dry_run(loc, args.services, "Removing", ctx)
    if _alive(loc.state):
        if args.stop:
            _request(loc, "stop", services=args.services)
        names = _request(loc, "rm", services=args.services, force=args.force).get(
            "containers", [])
    else:

        names = []
        for st in _containers(loc, args.services, all_=True, one_off=True):
            _remove_container_dir(loc.state.container_dir(st.name))
            names.append(st.name)
    if not names:
        ctx.err("No stopped containers")
    for n in names:
        ctx.err(f" ✔ Container {n}  Removed")
    return 0


# -- exec / run -----------------------------------------------------------------------------------
def configure_exec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    # docker compose's defaults: accepted, as `exec -it db psql` is typed everywhere
    parser.add_argument("-i", "--interactive", action="store_true", help="(the default)")
    parser.add_argument("-t", "--tty", action="store_true", help="(the default)")
    parser.add_argument("-d", "--detach", action="store_true")
    parser.add_argument("-e", "--env", action="append", default=None)
    parser.add_argument("-w", "--workdir", default=None)
    parser.add_argument("-u", "--user", default=None)
    parser.add_argument("--index", type=int, default=1)
    parser.add_argument("--privileged", action="store_true")
    parser.add_argument("service")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def _env_list(items: Iterable[str] | None, env: dict[str, str]) -> dict[str, str]:
    out = {}
    for item in items or ():
        k, sep, v = item.partition("=")
        if sep:
            out[k] = v
        elif k in env:
            out[k] = env[k]
    return out


def exec_argv(loc: Located, st: ContainerState, command: Sequence[str], ctx: Any, *,
              env: dict[str, str], workdir: str | None, user: str | None) -> tuple[list[str],
                                                                                 dict[str, str],
                                                                                 Path]:
    """The host command that runs ``command`` inside a container, its env and cwd."""
    from ..engine.runner import ProotRunner, host_env

    cdir = loc.state.container_dir(st.name)
    if not (cdir / "spec.json").exists():  # a ShellRunner container: run on the host
        base = {**host_env(), **env, "CONTAINER_NAME": st.name, "SERVICE": st.service}
        return list(command), base, cdir / "work" if (cdir / "work").is_dir() else cdir
    runner = ProotRunner(paths=ctx.paths, env=ctx.env)
    return runner.exec_command(cdir, command, env=env, workdir=workdir, user=user), \
        host_env(), cdir


def run_exec(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, [args.service])
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("exec needs a command.")
    running = [c for c in _containers(loc, [args.service], all_=False)]
    st = next((c for c in running if c.number == args.index), None)
    if st is None:
        raise ContainerError(f"service {args.service!r} is not running.")
    return exec_in(loc, st, command, args, ctx)


def exec_in(loc: Located, st: ContainerState, command: Sequence[str], args: argparse.Namespace,
            ctx: Any) -> int:
    """Run ``command`` in the running container ``st`` (``args``: env, workdir, user,
    detach); its exit code."""
    import subprocess

    argv, env, cwd = exec_argv(loc, st, command, ctx, env=_env_list(args.env, ctx.env),
                               workdir=args.workdir, user=args.user)
    if args.detach:
        subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        return 0
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=ctx.stdout if _is_real(ctx.stdout)
                          else subprocess.PIPE, stderr=ctx.stderr if _is_real(ctx.stderr)
                          else subprocess.PIPE, check=False)
    if not _is_real(ctx.stdout) and proc.stdout:
        ctx.stdout.write(proc.stdout.decode(errors="replace"))
        ctx.stdout.flush()
    if not _is_real(ctx.stderr) and proc.stderr:
        ctx.stderr.write(proc.stderr.decode(errors="replace"))
        ctx.stderr.flush()
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


def _is_real(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rm", action="store_true")
    parser.add_argument("-d", "--detach", action="store_true")
    parser.add_argument("-e", "--env", action="append", default=None)
    parser.add_argument("--entrypoint", default=None)
    parser.add_argument("--no-deps", action="store_true")
    parser.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true")
    parser.add_argument("-i", "--interactive", action="store_true")
    parser.add_argument("--name", default=None)
    _take_short(parser, "-p")  # `run -p` is --publish, as in docker compose
    parser.add_argument("-p", "--publish", action="append", default=None)
    parser.add_argument("-v", "--volume", action="append", default=None)
    parser.add_argument("-w", "--workdir", default=None)
    parser.add_argument("-u", "--user", default=None)
    parser.add_argument("-P", "--service-ports", dest="service_ports", action="store_true",
                        help="run with the service's ports published")
    parser.add_argument("-t", "--tty", action="store_true", help="(the default)")
    parser.add_argument("--use-aliases", action="store_true",
                        help="(accepted: the service's aliases always resolve here)")
    parser.add_argument("--remove-orphans", action="store_true",
                        help="remove containers of services not in the compose file")
    parser.add_argument("service")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def run_run(args: argparse.Namespace, ctx: Any) -> int:
    return run_one_off(args, ctx)


# -- pull / images / top / port / ls / wait / events ---------------------------------------------
def configure_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--ignore-pull-failures", action="store_true")
    parser.add_argument("--policy", choices=["always", "missing"], default="always")
    parser.add_argument("--ignore-buildable", action="store_true",
                        help="skip the images of services that have a build section")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_pull(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..image.pull import ensure_image

    project = load_compose(args, ctx, for_run=True)
    names = project.check_runnable(list(args.services) or None, deps=False, need_image=False)
    every = {**project.disabled_services, **project.services}
    quiet = args.quiet or args.progress == "quiet"
    # as docker compose: a service that builds is skipped with --ignore-buildable, and its
    # image failing to pull is a warning (it can be built), not an error
    buildable: dict[str, list[str]] = {}
    for n in names:
        svc = every[n]
        if svc.image and svc.build is not None:
            if args.ignore_buildable:
                if not quiet:
                    ctx.err(f" ✔ {svc.image} Skipped - Image can be built")
                continue
            buildable.setdefault(svc.image, []).append(n)
    refs = sorted({every[n].image for n in names if every[n].image
                   and not (args.ignore_buildable and every[n].build is not None)})

    if getattr(args, "dry_run", False):
        for ref in refs:
            ctx.err(f"{DRY} {ref} Pulling")
        return 0
    failures: list[str] = []
    must_build: list[str] = []

    async def pull_one(ref: str) -> None:
        if not quiet:
            ctx.err(f" ⠿ {ref} Pulling")
        try:
            await ensure_image(ref, paths=ctx.paths, policy=args.policy)
        except Exception as exc:
            if ref in buildable and all(every[n].build is not None for n in names
                                        if every[n].image == ref):
                must_build.extend(buildable[ref])
                if not quiet:
                    ctx.err(f" ✘ {ref} Error: {exc}")
                return
            if not args.ignore_pull_failures:
                raise
            failures.append(ref)
            if not quiet:
                ctx.err(f" ✘ {ref} Error: {exc}")
            return
        if not quiet:
            ctx.err(f" ✔ {ref} Pulled")

    async def pull_all() -> None:
        # every image at once, one line per image as it starts and ends (docker compose's)
        async with anyio.create_task_group() as tg:
            for ref in refs:
                tg.start_soon(pull_one, ref)

    _run_first_error(pull_all)
    if must_build:
        ctx.err("WARNING: Some service image(s) must be built from source by running:\n"
                f"    opencontainer compose build {' '.join(sorted(must_build))}")
    return 0


def configure_images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--format", default="table")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_images(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    rows = []
    records: dict[str, Any] = {}
    try:
        from ..image.store import ImageStore

        store = ImageStore(ctx.paths.store)
        for st in _containers(loc, args.services, all_=True):
            if st.image and st.image not in records:
                try:
                    records[st.image] = store.resolve(st.image)
                except Exception:
                    records[st.image] = None
    except ImportError:
        store = None
    out_json = []
    for st in _containers(loc, args.services, all_=True):
        repo, _, tag = st.image.rpartition(":") if ":" in st.image.split("/")[-1] else (
            st.image, "", "latest")
        rec = records.get(st.image)
        iid = getattr(rec, "short_id", "") if rec else ""
        if args.quiet:
            ctx.out(str(iid))
            continue
        rows.append([st.name, repo, tag, str(iid)])
        out_json.append({"ContainerName": st.name, "Repository": repo, "Tag": tag, "ID": iid})
    if args.quiet:
        return 0
    _listing(ctx, args.format, out_json, rows, COMPOSE_IMAGES_HEADERS)
    return 0


COMPOSE_IMAGES_HEADERS = {"ContainerName": "CONTAINER", "Repository": "REPOSITORY",
                          "Tag": "TAG", "ID": "IMAGE ID"}
COMPOSE_LS_HEADERS = {"Name": "NAME", "Status": "STATUS", "ConfigFiles": "CONFIG FILES"}


def _listing(ctx: Any, fmt: str, data: list[dict[str, Any]], rows: list[list[str]],
             headers: dict[str, str]) -> None:
    """``compose ls``/``compose images``: ``json`` is one JSON array (as docker compose
    prints it), ``table`` compose's table, anything else the shared Go-template engine."""
    if fmt == "json":
        ctx.out(json.dumps(data))
    elif fmt in ("table", "", "pretty"):
        ctx.out(_table(rows, list(headers.values())))
    else:
        from .format import render

        table = "\t".join("{{." + k + "}}" for k in headers)
        ctx.stdout.write(render(fmt, data, table=table, headers=headers))
        ctx.stdout.flush()


def configure_top(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_top(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.state import group_members

    loc = locate(args, ctx, args.services)
    first = True
    for st in _containers(loc, args.services, all_=False):
        if st.pgid is None:
            continue
        if not first:
            ctx.out("")
        first = False
        ctx.out(st.name)
        ctx.out(process_table(group_members(st.pgid)))
    return 0


def process_table(pids: Iterable[int]) -> str:
    """``top``'s table (UID PID PPID CMD) of the live processes among ``pids``."""
    rows = []
    for pid in sorted(set(pids)):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
            uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        except (OSError, IndexError):
            continue
        rows.append([uid, str(pid), stat[1], cmd])
    return _table(rows, ["UID", "PID", "PPID", "CMD"])


def configure_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="tcp")
    parser.add_argument("--index", type=int, default=1)
    parser.add_argument("service")
    parser.add_argument("private_port", type=int)


def run_port(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, [args.service])
    for st in _containers(loc, [args.service], all_=True):
        if st.number != args.index:
            continue
        for ip, pub, tgt, proto in st.publishers:
            if int(tgt) == args.private_port and proto == args.protocol:
                ctx.out(f"{ip}:{pub}")
                return 0
    raise ContainerError(f"no port {args.private_port}/{args.protocol} published for "
                         f"service {args.service!r}.")


def configure_ls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", action="append", default=[],
                        help="filter output based on conditions provided (name=NAME)")
    parser.add_argument("-a", "--all", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--format", default="table")


def run_ls(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.state import registered_projects

    rows = []
    out_json = []
    wanted_names: list[str] = []
    for f in args.filter:
        key, eq, value = f.partition("=")
        if key != "name" or not eq:
            raise ConfigError(f"invalid filter {f!r}: compose ls filters by name=NAME.")
        wanted_names.append(value)
    for project in registered_projects(ctx.paths):  # deleted projects are pruned on the way
        name = project.name
        if wanted_names and not any(w in name for w in wanted_names):
            continue
        state = ProjectState(project.state_dir, ctx.paths.runtime)
        alive = state.supervisor_alive()
        cs = [effective(c, alive) for c in state.containers() if not c.one_off]
        counts: dict[str, int] = {}
        for c in cs:
            key = "running" if c.status in ("starting", "stopping") else c.status
            counts[key] = counts.get(key, 0) + 1
        if not args.all and not counts.get("running"):
            continue
        status = ", ".join(f"{k}({v})" for k, v in sorted(counts.items())) or "exited(0)"
        files = ",".join(project.files)
        rows.append([name, status, files])
        out_json.append({"Name": name, "Status": status, "ConfigFiles": files})
    if args.quiet:
        for r in rows:
            ctx.out(r[0])
        return 0
    _listing(ctx, args.format, out_json, rows, COMPOSE_LS_HEADERS)
    return 0


def configure_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--down-project", action="store_true")
    parser.add_argument("services", nargs="+", metavar="SERVICE")


def run_wait(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    first: int | None = None
    pending = {c.name for c in _containers(loc, args.services, all_=True)}
    if not pending:
        raise ContainerError("no containers for the given services.")
    try:
        while pending:
            for c in _containers(loc, args.services, all_=True):
                if c.name in pending and c.status == "exited":
                    pending.discard(c.name)
                    ctx.out(str(c.exit_code or 0))
                    if first is None:
                        first = c.exit_code or 0
            if pending:
                time.sleep(0.1)
    except KeyboardInterrupt:
        return 130
    if args.down_project:
        ns = argparse.Namespace(**{**vars(args), "volumes": False, "remove_orphans": False,
                                   "rmi": None, "timeout": None})
        run_down(ns, ctx)
    return first or 0


def configure_events(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_events(args: argparse.Namespace, ctx: Any) -> int:
    loc = locate(args, ctx, args.services)
    if not _alive(loc.state):
        raise ContainerError("the project is not running.")
    try:
        for msg in _client(loc.state, timeout=None).stream("events"):
            e = msg.get("event")
            if not e:
                continue
            if args.services and e.get("service") not in args.services:
                continue
            if args.json:
                ctx.out(json.dumps(e, sort_keys=True))
            else:
                from datetime import datetime

                when = datetime.fromtimestamp(float(e.get("at", 0)), UTC).isoformat()
                attrs_text = ", ".join(f"{k}={v}" for k, v in sorted(e.items())
                                       if k not in ("at", "type", "container", "project"))
                ctx.out(f"{when} container {e.get('type')} {e.get('container', '')} "
                        f"({attrs_text})")
    except KeyboardInterrupt:
        return 0
    return 0


# -- up --foreground ------------------------------------------------------------------------------
def run_foreground(args: argparse.Namespace, ctx: Any, options: dict[str, Any]) -> int:
    import anyio

    model, _ = load_runnable(args, ctx, options["services"], deps=not args.no_deps)
    if ProjectState(Path(model.state_dir), ctx.paths.runtime).supervisor_alive():
        raise StateError(
            f"project {model.name!r} is already running detached: use 'logs -f' to follow it, "
            "or 'down' first to run it in the foreground.")
    code: int = anyio.run(_foreground, model, args, ctx, options, backend="asyncio")
    return code


async def _foreground(model: Any, args: argparse.Namespace, ctx: Any,
                      options: dict[str, Any]) -> int:
    import signal

    import anyio

    from ..engine import events as ev
    from ..engine.engine import Engine
    from ..engine.supervisor import UpOptions

    plugin_dirs = tuple(Path(d) for d in (args.plugin_dir or ()))
    up_opts = UpOptions(
        services=tuple(options["services"]), force_recreate=options["force_recreate"],
        no_recreate=options["no_recreate"], no_deps=options["no_deps"],
        remove_orphans=options["remove_orphans"], scale=options["scale"],
        wait=options["wait"], wait_timeout=options["wait_timeout"], timeout=options["timeout"],
    )
    abort = args.abort_on_container_exit or bool(args.exit_code_from)
    if args.exit_code_from and args.exit_code_from not in model.services:
        raise ConfigError(f"no such service: {args.exit_code_from}.")
    colour = _colour(args, ctx)
    names = [n[len(model.name) + 1:] if n.startswith(model.name + "-") else n
             for s in model.services.values() for n in s.container_names(model.name)]
    printer = LogPrinter(ctx.stdout, names, colour=colour, prefix=not args.no_log_prefix,
                         timestamps=bool(getattr(args, "timestamps", False)))
    only = set(getattr(args, "attach", None) or ())
    muted = set(getattr(args, "no_attach", None) or ())
    for name in only | muted:
        if name not in model.services:
            raise ConfigError(f"no such service: {name}.")

    def shown(service: str) -> bool:
        return service not in muted and (not only or service in only)
    exit_code = 0
    async with Engine(paths=ctx.paths, env=ctx.env, plugin_dirs=plugin_dirs,
                      pull_policy=options.get("pull", "missing")) as engine:
        sup = await engine.open(model)
        finished = anyio.Event()
        first_exit: dict[str, int] = {}

        def short(name: str) -> str:
            return name[len(model.name) + 1:] if name.startswith(model.name + "-") else name

        async def show(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            async with engine.bus.subscribe(ev.LogLine, ev.Exited, name="printer",
                                            lossy=True, buffer=4096) as stream:
                task_status.started()
                async for e in stream:
                    if isinstance(e, ev.LogLine):
                        if shown(e.service):
                            printer.line(short(e.container), e.text, e.at)
                    elif isinstance(e, ev.Exited):
                        ctx.out(f"{short(e.container)} exited with code {e.exit_code}")

        async def watch_exits(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            async with engine.bus.subscribe(ev.Exited, name="abort-on-exit") as stream:
                task_status.started()
                async for e in stream:
                    assert isinstance(e, ev.Exited)
                    if e.restarting:
                        continue
                    if abort and (not args.exit_code_from or e.service == args.exit_code_from
                                  or not first_exit):
                        first_exit.setdefault(e.service, e.exit_code)
                        if not args.exit_code_from or e.service == args.exit_code_from:
                            finished.set()
                    if not any(c.active for c in sup.containers.values()):
                        finished.set()

        async with anyio.create_task_group() as tg:
            await tg.start(show)
            await tg.start(watch_exits)
            ctx.out("Attaching to " + ", ".join(names))

            async def signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
                    count = 0
                    async for _ in sigs:
                        count += 1
                        if count == 1:
                            ctx.err("Gracefully stopping... (press Ctrl+C again to force)")
                            first_exit.setdefault("__interrupted__", 130)
                            finished.set()
                        else:
                            ctx.err("Killing...")
                            sup.signal_all()

            tg.start_soon(signals)
            result = await sup.up(up_opts)
            for w in result.warnings:
                ctx.err(f"WARNING: {w}")
            if not result.ok:
                ctx.err("Error: " + (result.errors[0] if result.errors else "up failed"))
                exit_code = 1
                finished.set()
            elif not any(c.active for c in sup.containers.values()):
                finished.set()
            await finished.wait()
            with anyio.CancelScope(shield=True):
                await sup.stop(timeout=args.timeout)
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    if exit_code:
        return exit_code
    if args.exit_code_from:
        return first_exit.get(args.exit_code_from, 0)
    if "__interrupted__" in first_exit:
        return 130
    if abort and first_exit:
        return next(iter(first_exit.values()))
    return 0


# -- run (one-off) --------------------------------------------------------------------------------
def _remove_orphans(model: Any, ctx: Any) -> None:
    """The project's containers of services no longer in its compose file, removed."""
    from . import containers

    state = ProjectState(Path(model.state_dir), ctx.paths.runtime)
    orphans = [c.name for c in state.containers()
               if not c.one_off and c.service not in model.services]
    if orphans:
        containers.run_rm(argparse.Namespace(containers=orphans, force=True, volumes=False),
                          ctx)


def run_one_off(args: argparse.Namespace, ctx: Any) -> int:
    import re
    import secrets

    # `compose -p NAME run`: main hands the global -p to this parser, where -p is --publish
    for value in list(args.publish or ()):
        if not re.fullmatch(r"[\d.:\[\]a-fA-F/-]*\d[\d/a-z]*", value) and not args.project_name:
            args.project_name = value
            args.publish.remove(value)
    import shlex

    import anyio

    from ..engine.model import MountSpec, PortSpec

    model, _ = load_runnable(args, ctx, [args.service], deps=not args.no_deps)
    if args.service not in model.services:
        raise ConfigError(f"no such service: {args.service}.")

    if getattr(args, "remove_orphans", False):
        _remove_orphans(model, ctx)
    svc = model.services[args.service]
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    changes: dict[str, Any] = {}
    if command:
        changes["command"] = tuple(command)
    if args.entrypoint is not None:
        changes["entrypoint"] = tuple(shlex.split(args.entrypoint))
        if not command:
            changes["command"] = None
    if args.env:
        changes["environment"] = {**svc.environment, **_env_list(args.env, ctx.env)}
    if args.workdir:
        changes["working_dir"] = args.workdir
    if args.user:
        changes["user"] = args.user
    if args.volume:
        extra = []
        for v in args.volume:
            parts = v.split(":")
            if len(parts) < 2:
                extra.append(MountSpec(type="anonymous", target=parts[0]))
                continue
            kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
            extra.append(MountSpec(type=kind, source=parts[0], target=parts[1],
                                   read_only=len(parts) > 2 and "ro" in parts[2]))
        changes["volumes"] = (*svc.volumes, *extra)
    ports: tuple[PortSpec, ...] = svc.ports if args.service_ports else ()
    for p in args.publish or ():
        host, _, cont = p.rpartition(":")
        ports += (PortSpec(target=int(cont), published=int(host) if host else None),)
    changes["ports"] = ports
    changes["restart"] = type(svc.restart)()
    changes["auto_remove"] = bool(args.rm)
    interactive = bool(args.interactive or not args.no_tty)
    terminal = not args.no_tty and not args.detach and _is_real(ctx.stdout) and \
        ctx.stdout.isatty() and sys.stdin.isatty()
    changes["tty"] = terminal or (svc.tty and not args.no_tty)
    changes["stdin_open"] = interactive and not args.detach
    one = attrs.evolve(svc, **changes)
    name = args.name or f"{model.name}-{args.service}-run-{secrets.token_hex(6)}"
    state = ProjectState(Path(model.state_dir), ctx.paths.runtime)
    from ..engine.state import register_project
    from ..paths import atomic_write

    # registered even without dependencies: `ps` finds the one-off container from anywhere
    register_project(ctx.paths, model.name, state.root, model.working_dir,
                     list(model.compose_files))
    if not state.project_json.exists():
        atomic_write(state.project_json, model.to_json())
    if (not args.no_deps and svc.depends_on) or args.detach:
        atomic_write(state.project_json, model.to_json())
        client = ensure_supervisor(state, ctx, Path(model.working_dir))
        client.timeout = None
        if not args.no_deps and svc.depends_on:
            final = client.request("up", options={"services": list(svc.depends_on)})
            if not final.get("ok"):
                raise ContainerError(str(final.get("error")))
    if args.detach:  # the project's supervisor runs it, as one of its own
        from ..engine.model import to_jsonable

        reply = _request(Located(model.name, Path(model.working_dir), state), "run",
                         service=to_jsonable(one), container=name)
        _check_result(reply)
        ctx.out(name)
        return 0
    # in the foreground: supervised here (a second supervisor of the project, without its
    # lock, for this one container), attached to this terminal
    from ..engine.engine import Engine
    from .containers import _attachment, attached

    async def main() -> int:
        async with Engine(paths=ctx.paths, env=ctx.env) as engine:
            sup = await engine.open(model, exclusive=False)
            attach = _attachment(ctx, interactive=one.stdin_open, tty=one.tty)
            c = await sup.create_container(one, name, one_off=True, attach=attach)
            return await attached(engine, sup, c, ctx, serve=False)

    try:
        code: int = anyio.run(main, backend="asyncio")
    except KeyboardInterrupt:
        code = 130
    return code


def _remove_container_dir(path: Path) -> None:
    """``rm -rf`` of a container's folder (an overlay root's ``work/work`` is mode 000)."""
    from ..paths import remove_tree

    remove_tree(path, ignore_errors=True)
