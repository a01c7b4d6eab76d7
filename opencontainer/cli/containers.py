"""Container commands (docker's): run, create, start, stop, restart, kill, rm, ps, logs, exec,
inspect, export, cp, port, top, wait.

Every container is the engine's: a standalone one (``run``, ``create``) is a project of one
container (:mod:`opencontainer.engine.standalone`), so each command treats every container the
same way, wherever it was created: through its project's supervisor when one runs (its control
socket), else from the files it left. Each command is ``configure_<name>(parser)`` +
``run_<name>(args, ctx) -> int``; the runtime is imported inside the runners so that ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from .ps import _cwd_project, _entries


# -- finding containers: standalone and compose, from anywhere -----------------------------------
def _service_entries(ctx: Any, here: Any, service: str, entries: list[Any]) -> list[Any]:
    """Beside a compose file, a SERVICE name stands for that service's containers."""
    if not here:
        return []
    root = here.state.root.absolute()
    found = [e for e in entries if e.kind == "compose"
             and e.project.state.root.absolute() == root and e.state.service == service
             and not e.state.one_off]
    return sorted(found, key=lambda e: e.state.number)


def _resolve(ctx: Any, ref: str, entries: list[Any] | None = None,
             here: Any = None) -> list[Any]:
    """The container named (or ID-prefixed) ``ref`` — from anywhere — as a one-item list; or,
    beside a compose file, the containers of the service ``ref``."""
    from ..engine.index import find
    from ..errors import ContainerNotFound

    here = _cwd_project(ctx) if here is None else here
    entries = _entries(ctx, here or False) if entries is None else entries
    try:
        return [find(entries, ref)]
    except ContainerNotFound:
        found = _service_entries(ctx, here, ref, entries)
        if found:
            return found
        raise


def _one(ctx: Any, ref: str) -> Any:
    return _resolve(ctx, ref)[0]


def _located(entry: Any) -> Any:
    from .locate import Located

    p = entry.project
    return Located(p.name, p.working_dir, p.state)


def _request(entry: Any, op: str, **kw: Any) -> dict[str, Any]:
    """``op`` for this one container, through its project's supervisor."""
    from ..engine.containers import request

    return request(entry, op, **kw)


def _binary(stream: Any) -> BinaryIO:
    buf = getattr(stream, "buffer", None)
    if buf is not None:
        return buf  # type: ignore[no-any-return]

    class _Text:
        def write(self, data: bytes) -> int:
            stream.write(data.decode("utf-8", errors="replace"))
            return len(data)

        def flush(self) -> None:
            stream.flush()

    return _Text()  # type: ignore[return-value]


def _run_async(fn: Callable[..., Any], *args: Any) -> Any:
    import anyio

    return anyio.run(fn, *args, backend="asyncio")


def _add_create_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], help="set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="read a file of variables")
    p.add_argument("-v", "--volume", action="append", default=[], help="bind mount a volume")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-p", "--publish", action="append", default=[],
                   help="publish a container's port(s) to the host")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    p.add_argument("--hostname", "-h", dest="hostname", help="container host name")
    p.add_argument("--add-host", action="append", default=[], help="add a custom host-to-IP")
    p.add_argument("--dns", action="append", default=[], help="set custom DNS servers")
    p.add_argument("--pull", choices=["always", "missing", "never"], default="missing")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--restart", default="no",
                   help="restart policy: no, always, on-failure[:N], unless-stopped")
    p.add_argument("--health-cmd", help="command to run to check health")
    p.add_argument("--health-interval", type=_duration, help="time between checks (30s)")
    p.add_argument("--health-timeout", type=_duration, help="time a check may take (30s)")
    p.add_argument("--health-retries", type=int, help="failures before unhealthy (3)")
    p.add_argument("--health-start-period", type=_duration,
                   help="start period before failures count (0s)")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="disable any container-specified HEALTHCHECK")
    p.add_argument("--stop-signal", help="signal to stop the container")
    p.add_argument("--stop-timeout", type=float, help="seconds to wait before killing")
    p.add_argument("-l", "--label", action="append", default=[], help="set metadata")
    p.add_argument("--label-file", action="append", default=[],
                   help="read in a line delimited file of labels")
    p.add_argument("--init", action="store_true",
                   help="run an init inside the container that forwards signals and reaps "
                        "processes")
    p.add_argument("--platform", help="set platform if server is multi-platform capable")
    p.add_argument("--mount", action="append", default=[],
                   help="attach a filesystem mount to the container")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[], help="expose a port or a range")
    p.add_argument("--read-only", action="store_true",
                   help="mount the container's root filesystem as read only")
    p.add_argument("--tmpfs", action="append", default=[], help="mount a tmpfs directory")
    p.add_argument("-a", "--attach", action="append", default=[],
                   choices=["stdin", "stdout", "stderr", "STDIN", "STDOUT", "STDERR"],
                   help="attach to STDIN, STDOUT or STDERR")
    p.add_argument("--cidfile", help="write the container ID to the file")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the pull output")
    p.add_argument("--network", "--net", dest="network",
                   help="connect a container to a network (host: the host's; default: the "
                        "project's own where it can)")
    p.add_argument("--ulimit", action="append", default=[], help="ulimit options")
    p.add_argument("--shm-size", help="size of /dev/shm")
    p.add_argument("--device", action="append", default=[],
                   help="add a host device to the container")
    p.add_argument("--cap-add", action="append", default=[], help="add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="drop Linux capabilities")
    p.add_argument("--privileged", action="store_true",
                   help="give extended privileges to this container")
    p.add_argument("--security-opt", action="append", default=[], help="security options")
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--cpus", help="number of CPUs")
    p.add_argument("--gpus", help="GPU devices to add to the container ('all')")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("image", help="the image to run")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def _duration(text: str) -> float:
    """docker's durations (``30s``, ``1m30s``, ``500ms``; a bare number is seconds)."""
    from ..engine.model import parse_duration

    value = parse_duration(text, -1.0)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 30s, 1m30s, 500ms)")
    return value


def _parser_without_h(p: argparse.ArgumentParser) -> None:
    """docker's ``-h`` is ``--hostname``: drop argparse's ``-h`` help alias."""
    for action in list(p._actions):
        if "-h" in action.option_strings and isinstance(action, argparse._HelpAction):
            p._remove_action(action)
            for group in p._action_groups:
                if action in group._group_actions:
                    group._group_actions.remove(action)
            for opt in action.option_strings:
                p._option_string_actions.pop(opt, None)


def _container_options(args: argparse.Namespace, ctx: Any) -> Any:
    from ..engine.standalone import ContainerOptions

    return ContainerOptions(
        image=args.image,
        command=tuple(args.command or ()),
        name=args.name,
        entrypoint=args.entrypoint,
        env=tuple(args.env),
        env_files=tuple(args.env_file),
        volumes=tuple(args.volume),
        workdir=args.workdir,
        user=args.user,
        ports=tuple(args.publish),
        hostname=args.hostname,
        add_hosts=tuple(args.add_host),
        dns=tuple(args.dns),
        tty=args.tty,
        interactive=args.interactive,
        auto_remove=getattr(args, "rm", False),
        pull=args.pull,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        labels=tuple(args.label),
        restart=args.restart,
        health_cmd=args.health_cmd,
        health_interval=args.health_interval,
        health_timeout=args.health_timeout,
        health_retries=args.health_retries,
        health_start_period=args.health_start_period,
        no_healthcheck=args.no_healthcheck,
        cwd=Path(ctx.env.get("PWD") or os.getcwd()),
        init=args.init,
        platform=args.platform,
        mounts=tuple(args.mount),
        tmpfs=tuple(args.tmpfs),
        read_only=args.read_only,
        expose=tuple(args.expose),
        label_files=tuple(args.label_file),
        network=args.network,
        ulimits=tuple(args.ulimit),
        shm_size=args.shm_size,
        devices=tuple(args.device),
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        privileged=args.privileged,
        security_opt=tuple(args.security_opt),
        memory=args.memory,
        cpus=args.cpus,
        gpus=args.gpus,
    )


def _attachment(ctx: Any, *, interactive: bool, tty: bool,
                streams: Iterable[str] = ()) -> Any:
    """This terminal as the container's; ``streams`` (``-a``): only those (default: stdout
    and stderr, and stdin with ``-i``)."""
    from ..engine.runner import Attachment
    from ..runtime.process import get_winsize

    chosen = {s.lower() for s in streams}
    if chosen:
        interactive = interactive or "stdin" in chosen
    stdin: int | None = None
    if interactive:
        try:
            stdin = sys.stdin.fileno()
        except (OSError, ValueError):
            stdin = None
    winsize = None
    if tty:
        for fd in (1, 0):
            if os.isatty(fd):
                winsize = get_winsize(fd)
                break
    out = _binary(ctx.stdout) if not chosen or "stdout" in chosen else None
    err = _binary(ctx.stderr) if not chosen or "stderr" in chosen else None
    return Attachment(stdout=out, stderr=err, stdin=stdin, winsize=winsize)


async def _create(engine: Any, args: argparse.Namespace, ctx: Any,
                  attach: Any = None) -> tuple[Any, Any]:
    """A new standalone container (a project of one) in ``engine``: its supervisor and its
    container. Everything the user can get wrong is refused before anything is pulled or
    written; a failure half-way leaves nothing behind."""
    from ..engine import standalone
    from ..errors import ImageNotFound
    from ..image.store import ImageStore
    from ..paths import remove_tree

    opts = _container_options(args, ctx)
    standalone.service_of("probe", opts, ctx.env)  # every option checked first
    cidfile = Path(args.cidfile) if args.cidfile else None
    if cidfile is not None and cidfile.exists():
        from ..errors import ConfigError

        raise ConfigError(f"container ID file found, make sure the other container isn't "
                          f"running or delete {cidfile}.")
    if ctx.env.get("OPENCONTAINER_RUNNER") != "shell":
        from ..runtime.create import check_proot

        check_proot(ctx.paths, ctx.env)
    skipped = standalone.unenforced(opts)
    if skipped:
        ctx.err(f"WARNING: {', '.join(skipped)} accepted but not enforced: proot containers "
                "have no cgroups, capabilities or network namespace of their own here.")
    name = standalone.reserve(ctx.paths, opts.name)
    try:
        svc = standalone.service_of(name, opts, ctx.env)

        def missing() -> None:
            if args.pull != "never" and not args.quiet:
                try:
                    ImageStore(ctx.paths.store).resolve(args.image)
                except ImageNotFound:
                    ctx.err(f"Unable to find image '{args.image}' locally")
                except Exception:
                    pass

        if args.publish_all:  # the image's exposed ports: the image first
            missing()
            svc = standalone.publish_all(svc, await _exposed(ctx, args))
        model = standalone.model_of(ctx.paths, name, svc, opts.cwd or Path.cwd())
        sup = await engine.open(model)
        sup.plan_with(svc)  # the ports, before pulling anything
        if not args.publish_all:
            missing()
        c = await sup.create_container(svc, name, attach=attach)
        _warn_root_mode(ctx, c, svc)
        if cidfile is not None:
            from ..paths import atomic_write

            atomic_write(cidfile, str(c.state.id))
    except BaseException:
        remove_tree(standalone.state_dir(ctx.paths, name), ignore_errors=True)
        raise
    return sup, c


async def _exposed(ctx: Any, args: argparse.Namespace) -> tuple[str, ...]:
    """``-P``: the image's exposed ports (the image pulled first, by the pull policy)."""
    from ..image.pull import ensure_image

    rec = await ensure_image(args.image, paths=ctx.paths, policy=args.pull,
                             platform=args.platform)
    return tuple(getattr(rec.config, "exposed_ports", ()) or ())


def _warn_root_mode(ctx: Any, c: Any, svc: Any) -> None:
    """``--read-only`` and ``--shm-size`` need an overlay root (a mount namespace of ours):
    one warning when this container has a copied root instead."""
    if not (svc.read_only or svc.shm_size):
        return
    try:
        spec = json.loads((c.ctx.dir / "spec.json").read_text())
    except (OSError, ValueError):
        return
    if spec.get("overlay"):
        return
    flags = [f for f, on in (("--read-only", svc.read_only), ("--shm-size", svc.shm_size)) if on]
    ctx.err(f"WARNING: {' and '.join(flags)} not enforced: this container's root is a copy "
            "(no overlayfs here), which proot cannot make read-only or give a sized tmpfs.")


def _engine(ctx: Any, args: argparse.Namespace | None = None) -> Any:
    from ..engine.engine import Engine

    return Engine(paths=ctx.paths, env=ctx.env,
                  pull_policy=getattr(args, "pull", None) or "missing")


async def attached(engine: Any, sup: Any, c: Any, ctx: Any, *, serve: bool = True,
                   signal_source: Callable[[], Any] | None = None) -> int:
    """Start ``c`` attached to this terminal and supervise it here until it ends for good;
    its exit code. Once it has started (``serve``), the container's control socket answers
    ``stop``, ``kill`` … from other terminals, as the detached supervisor's would: set up
    while the container's process starts, not before it. ``signal_source``: where the
    signals to forward come from (a context manager giving an async iterator of signal
    numbers, as ``anyio.open_signal_receiver``; default: this process's SIGINT, SIGTERM,
    SIGHUP)."""
    import signal

    import anyio

    from ..engine import events as ev
    from ..errors import ContainerError
    from ..runtime.process import get_winsize, set_winsize

    term_fd = c.attach.stdin if c.attach is not None else None
    tty = c.ctx.service.tty
    saved = None
    async with anyio.create_task_group() as tg, \
            sup.bus.subscribe(ev.Removed, name="attached") as removals:
        async def signals() -> None:
            sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
            if tty:
                sigs.append(signal.SIGWINCH)
            with (signal_source() if signal_source is not None else
                  anyio.open_signal_receiver(*sigs)) as received:
                async for signum in received:
                    if signum == signal.SIGWINCH:
                        handle = c.handle
                        ws = get_winsize(0) or get_winsize(1)
                        if handle is not None and handle.tty_master is not None and ws:
                            set_winsize(handle.tty_master, *ws)
                    elif signum == signal.SIGINT and not tty and c.handle is not None:
                        c.handle.signal(signal.SIGINT)  # docker's sig-proxy
                    elif signum != signal.SIGINT:
                        tg.start_soon(c.stop)

        tg.start_soon(signals)
        if tty and term_fd is not None and os.isatty(term_fd):
            import termios
            import tty as ttymod

            saved = termios.tcgetattr(term_fd)
            ttymod.setraw(term_fd, termios.TCSANOW)
        failure: ContainerError | None = None
        try:
            result = await sup.start(names=[c.name])
            if result.ok:
                if serve:
                    from ..api.control import ControlServer

                    await tg.start(ControlServer(engine, sup, sup.state.socket).run)
                await c.wait_done()
            else:
                failure = ContainerError(
                    result.errors[0] if result.errors else "start failed",
                    exit_code=c.state.exit_code if c.state.exit_code in (126, 127) else 1)
        finally:
            if saved is not None and term_fd is not None:
                import termios

                with contextlib.suppress(OSError):
                    termios.tcsetattr(term_fd, termios.TCSADRAIN, saved)
        code = int(c.state.exit_code or 0)
        if c.ctx.service.auto_remove:  # the supervisor removes it: wait for that
            with anyio.move_on_after(60):
                while sup.containers.get(c.name) is c:
                    await removals.receive()
        tg.cancel_scope.cancel()
    if failure is not None:  # raised out here: not as a task group's exception group
        raise failure
    return code


def _forget(ctx: Any, name: str) -> None:
    """A removed standalone container's project folder goes too."""
    from ..engine.containers import forget

    forget(ctx.paths, name)


# -- run / create ------------------------------------------------------------------------------
def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true",
                        help="run in the background and print the container ID")
    _parser_without_h(parser)
    _add_create_options(parser)


class _DaemonErrors:
    """``docker run``/``create`` exit 125 for whatever fails before the container's command
    runs (a name in use, an image that cannot be pulled, a bad option), 126/127 when that
    command cannot be run or found: errors raised inside get that exit status."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        from ..errors import OpenContainerError

        if isinstance(exc, OpenContainerError) and exc.exit_code not in (126, 127):
            exc.exit_code = 125


def run_run(args: argparse.Namespace, ctx: Any) -> int:
    with _DaemonErrors():
        return _run_run(args, ctx)


def _run_run(args: argparse.Namespace, ctx: Any) -> int:
    if args.detach:
        if args.attach:
            from ..errors import ConfigError

            raise ConfigError("conflicting options: cannot specify both --attach and --detach.")

        async def create() -> Any:
            async with _engine(ctx, args) as engine:
                sup, c = await _create(engine, args, ctx)
                return sup.state, c.name, c.state.id

        state, name, cid = _run_async(create)
        _start_detached(state, ctx, name)
        ctx.out(cid)
        return 0

    if not args.tty and ctx.stdout is sys.stdout and ctx.stderr is sys.stderr:
        from . import thin

        if thin.wanted(ctx.env) and getattr(args, "raw_argv", None) is not None:
            try:  # in the user's engine service (cli/engined.py)
                return thin.run(args.raw_argv, ctx.env, ctx.verbose)
            except thin.NotTaken:
                pass  # nothing was done: here, as before

    attach = _attachment(ctx, interactive=args.interactive, tty=args.tty, streams=args.attach)
    return int(_run_async(run_attached, args, ctx, attach))


async def run_attached(args: argparse.Namespace, ctx: Any, attach: Any,
                       signals: Callable[[], Any] | None = None,
                       on_done: Callable[[int], Awaitable[None]] | None = None,
                       prepare: Callable[[Any], None] | None = None) -> int:
    """``run`` without ``-d``: create the container, supervise it attached to ``attach``
    until it ends for good (removed too with ``--rm``); its exit code. ``on_done``: told the
    exit code as soon as the container has ended for good (and, with ``--rm``, is gone, its
    name free), before the engine winds down (its network holder, its lock); not when the
    container publishes ports, which are free only once the engine is closed. ``prepare``:
    given the engine before it starts (the engine service's warm state)."""
    names: list[str] = []
    engine = _engine(ctx, args)
    if prepare is not None:
        prepare(engine)
    try:
        async with engine:
            sup, c = await _create(engine, args, ctx, attach)
            names.append(c.name)
            code = await attached(engine, sup, c, ctx, signal_source=signals)
            if on_done is not None and not c.ctx.service.ports:
                if args.rm and names:
                    _forget(ctx, names.pop())
                await on_done(code)
                on_done = None
    finally:
        if args.rm and names:
            _forget(ctx, names[0])
    if on_done is not None:
        await on_done(code)
    return code


def _start_detached(state: Any, ctx: Any, name: str) -> None:
    """Start a standalone container under a detached supervisor of its own."""
    from .compose import _start_via_up
    from .locate import Located

    _start_via_up(Located(name, state.root, state), ctx, [name], quiet=True)


def configure_create(parser: argparse.ArgumentParser) -> None:
    _parser_without_h(parser)
    _add_create_options(parser)


def run_create(args: argparse.Namespace, ctx: Any) -> int:
    async def main() -> str:
        async with _engine(ctx, args) as engine:
            _, c = await _create(engine, args, ctx)
            return str(c.state.id)

    with _DaemonErrors():
        ctx.out(_run_async(main))
    return 0


# -- start / stop / restart / kill -------------------------------------------------------------
def configure_start(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    parser.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def _start_attached(entry: Any, ctx: Any, interactive: bool) -> int:
    """``start -a``: supervise the (stopped) container here, attached to this terminal."""
    from ..engine.model import ProjectModel
    from ..engine.supervisor import UpOptions
    from ..errors import ContainerError

    async def main() -> int:
        async with _engine(ctx) as engine:
            model = ProjectModel.from_json(entry.project.state.project_json.read_text())
            sup = await engine.open(model)
            await sup.up(UpOptions(services=(entry.state.service,), no_recreate=True,
                                   start=False))
            c = sup.containers.get(entry.name)
            if c is None:
                raise ContainerError(f"container {entry.name} cannot be started.")
            c.attach = _attachment(ctx, interactive=interactive, tty=c.ctx.service.tty)
            return await attached(engine, sup, c, ctx)

    return int(_run_async(main))


def _start(entry: Any, ctx: Any) -> None:
    from ..engine.containers import start

    start(entry, ctx)


def run_start(args: argparse.Namespace, ctx: Any) -> int:
    for ref in args.containers:
        entries = _resolve(ctx, ref)
        if args.attach and entries[0].kind == "standalone":
            e = entries[0]
            if e.running:
                return 0
            code = _start_attached(e, ctx, args.interactive)
            _forget(ctx, e.name)
            return code
        for e in entries:
            _start(e, ctx)
        ctx.out(ref)
    return 0


def configure_stop(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time", type=float, default=None,
                        help="seconds to wait before killing the container")
    parser.add_argument("-s", "--signal", default=None, help="signal to send")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def _stop(entry: Any, timeout: float | None, sig: str | None = None) -> None:
    from ..engine.containers import stop

    stop(entry, timeout, sig)


def run_stop(args: argparse.Namespace, ctx: Any) -> int:
    from ..runtime.signals import parse_signal

    if args.signal:
        parse_signal(args.signal)
    for ref in args.containers:
        for e in _resolve(ctx, ref):
            _stop(e, args.time, args.signal)
        ctx.out(ref)
    return 0


def configure_restart(parser: argparse.ArgumentParser) -> None:
    configure_stop(parser)


def run_restart(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.containers import restart

    for ref in args.containers:
        for e in _resolve(ctx, ref):
            restart(e, ctx, args.time, args.signal)
        ctx.out(ref)
    return 0


def configure_kill(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run_kill(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.containers import kill
    from ..runtime.signals import parse_signal

    parse_signal(args.signal)  # a bad one is a usage error, before anything is asked
    for ref in args.containers:
        for e in _resolve(ctx, ref):
            kill(e, args.signal)
        ctx.out(ref)
    return 0


# -- rm ----------------------------------------------------------------------------------------
def configure_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="kill a running container")
    parser.add_argument("-v", "--volumes", action="store_true",
                        help="remove anonymous volumes")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run_rm(args: argparse.Namespace, ctx: Any) -> int:
    """As docker: every container that can be removed is, then the others are reported in
    one error (exit 1); with ``-f`` a container that does not exist is no error."""
    from ..errors import ContainerError, ContainerNotFound

    errors: list[ContainerError] = []
    entries = _entries(ctx)
    for ref in args.containers:
        try:
            found = _resolve(ctx, ref, entries)
        except ContainerNotFound as exc:
            if not args.force:
                errors.append(exc)
            continue
        except ContainerError as exc:  # an ambiguous ID prefix: never a guess
            errors.append(exc)
            continue
        try:
            for e in found:
                _rm(e, args.force, ctx)
        except ContainerError as exc:
            errors.append(exc)
            continue
        ctx.out(ref)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ContainerError("; ".join(str(e).rstrip(".") for e in errors) + ".")
    return 0


def _rm(entry: Any, force: bool, ctx: Any) -> None:
    from ..engine.containers import remove

    remove(entry, ctx.paths, force=force)




# -- ps ----------------------------------------------------------------------------------------
def _ports_text(spec: Any) -> str:
    return ", ".join(
        f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
        for p in spec.ports
    )


# -- logs --------------------------------------------------------------------------------------
def configure_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="follow log output")
    parser.add_argument("-n", "--tail", default="all", help="number of lines from the end")
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    parser.add_argument("--since", default=None,
                        help="only lines from this time on (timestamp or relative: 10m)")
    parser.add_argument("--until", default=None,
                        help="only lines before this time (timestamp or relative: 10m)")
    parser.add_argument("--details", action="store_true",
                        help="(accepted: there are no extra log attributes to show)")
    parser.add_argument("container", metavar="CONTAINER")


def run_logs(args: argparse.Namespace, ctx: Any) -> int:
    """A container's log (or, beside a compose file, a service's): compose's own ``logs``
    of that one container, without the name prefix — every container logs the same way."""
    from .compose import run_logs as compose_logs

    entries = _resolve(ctx, args.container)
    e = entries[0]
    ns = argparse.Namespace(
        services=[e.state.service], index=e.state.number if len(entries) == 1 else None,
        follow=args.follow, tail=args.tail, timestamps=args.timestamps, no_color=True,
        no_log_prefix=len(entries) == 1, since=args.since, until=args.until, files=None,
        located=_located(e), one_off=e.state.one_off, container=e.name if len(entries) == 1
        else None)
    return int(compose_logs(ns, ctx))


# -- exec --------------------------------------------------------------------------------------
def configure_exec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true", help="run in the background")
    parser.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument("-e", "--env", action="append", default=[], help="set variables")
    parser.add_argument("-w", "--workdir", help="working directory inside the container")
    parser.add_argument("-u", "--user", help="username or UID")
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def run_exec(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.containers import exec_script
    from ..errors import ConfigError, ContainerError

    if not args.command:
        raise ConfigError("exec needs a command to run in the container.")
    entry = _one(ctx, args.container)
    if not entry.running:
        raise ContainerError(f"container {entry.name} is not running.")
    cdir = entry.project.state.container_dir(entry.name)
    if not (cdir / "spec.json").exists():  # a host-process container (the shell runner)
        from .compose import exec_in

        return exec_in(_located(entry), entry.state, list(args.command), args, ctx)
    script = exec_script(entry, ctx, list(args.command), env=list(args.env), user=args.user,
                         workdir=args.workdir, tty=args.tty)
    execs = script.parent
    try:
        if args.detach:
            shell = 'exec bash "$0" </dev/null >/dev/null 2>&1'
            pid = os.posix_spawn("/bin/sh", ["sh", "-c", shell, str(script)], dict(ctx.env),
                                 setsid=True)
            (execs / f"{pid}.pid").write_text(str(pid))
            # the script is read by bash at start; keep it for reproducibility
            return 0
        return int(_run_async(_exec_foreground, script, execs, ctx, args))
    finally:
        if not args.detach:
            script.unlink(missing_ok=True)


async def _exec_foreground(script: Path, execs: Path, ctx: Any, args: argparse.Namespace) -> int:
    import anyio

    from ..engine.supervisor import copy_to_terminal, read_fd
    from ..runtime.process import DEVNULL, ContainerProcess, get_winsize

    stdin: int | None = DEVNULL
    if args.interactive:
        try:
            stdin = sys.stdin.fileno()
        except (OSError, ValueError):
            stdin = DEVNULL
    direct = ctx.stdout is sys.stdout and ctx.stderr is sys.stderr
    if args.tty:
        ws = get_winsize(1) if os.isatty(1) else None
        proc = await ContainerProcess.start(script, tty=True, winsize=ws)
    elif direct:
        proc = await ContainerProcess.start(script, stdin=stdin, stdout=None, stderr=None)
    else:
        proc = await ContainerProcess.start(script, stdin=stdin)
    marker = execs / f"{proc.pid}.pid"
    marker.write_text(str(proc.pid))
    try:
        async with anyio.create_task_group() as tg:
            saved = None
            if args.tty:
                assert proc.tty_master is not None

                async def show(master: int, out: BinaryIO) -> None:
                    async for chunk in read_fd(master):
                        with contextlib.suppress(OSError, ValueError):
                            out.write(chunk)
                            out.flush()

                tg.start_soon(show, proc.tty_master, _binary(ctx.stdout))
                if args.interactive and stdin is not None and stdin >= 0:
                    if os.isatty(stdin):
                        import termios
                        import tty as ttymod

                        saved = termios.tcgetattr(stdin)
                        ttymod.setraw(stdin, termios.TCSANOW)
                    tg.start_soon(copy_to_terminal, stdin, proc.tty_master)
            elif not direct:
                assert proc.stdout is not None and proc.stderr is not None

                async def copy(src: Any, dst: BinaryIO) -> None:
                    async for chunk in src:
                        dst.write(chunk)
                        dst.flush()

                tg.start_soon(copy, proc.stdout, _binary(ctx.stdout))
                tg.start_soon(copy, proc.stderr, _binary(ctx.stderr))
            try:
                import signal

                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:

                    async def forward() -> None:
                        async for s in sigs:
                            proc.signal(s)

                    tg.start_soon(forward)
                    code = await proc.wait()
                    if args.tty:
                        await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
            finally:
                if saved is not None:
                    import termios

                    termios.tcsetattr(stdin, termios.TCSADRAIN, saved)  # type: ignore[arg-type]
        await proc.aclose()
    finally:
        marker.unlink(missing_ok=True)
    return int(code)


# -- inspect -----------------------------------------------------------------------------------
def inspect_dict(e: Any) -> dict[str, Any]:
    """``inspect`` of any container: docker's shape, from its state, spec and service."""
    from datetime import UTC, datetime

    def iso(t: float | None) -> str:
        if not t:
            return "0001-01-01T00:00:00Z"
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    st = e.state
    summ = e.summary
    try:
        spec, rootfs = _spec_and_root(e)
    except Exception:
        spec, rootfs = None, None
    ports: dict[str, Any] = {}
    for p in summ.published:
        ports.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host_port)})
    cdir = e.project.state.container_dir(e.name)
    svc = (e.project.model.get("services") or {}).get(st.service) or {}
    restart = svc.get("restart") or {}
    hc = svc.get("healthcheck")
    image_id = ""
    if spec is not None and spec.overlay is not None:
        image_id = Path(spec.overlay.lower).name  # the image store's tree is named by its ID
    graph: dict[str, Any] = {"Name": "copy", "Data": {"RootFS": str(rootfs or "")}}
    if spec is not None and spec.overlay is not None:
        graph = {"Name": "overlay", "Data": {
            "LowerDir": spec.overlay.lower, "UpperDir": spec.overlay.upper,
            "WorkDir": spec.overlay.work, "MergedDir": spec.overlay.merged}}
    return {
        "Id": summ.id,
        "Created": iso(st.created_at),
        "Path": st.command[0] if st.command else "",
        "Args": list(st.command[1:]),
        "State": {
            "Status": summ.status,
            "Running": summ.status in ("running", "paused"),
            "Paused": summ.status == "paused",
            "Restarting": summ.status == "restarting",
            "OOMKilled": False,
            "Dead": summ.status == "dead",
            "Pid": st.pid or 0,
            "ExitCode": st.exit_code or 0,
            "Error": st.error,
            "StartedAt": iso(st.started_at),
            "FinishedAt": iso(st.finished_at),
            **({"Health": {"Status": st.health, "FailingStreak": 0,
                           "Log": list(st.health_log)}} if st.health else {}),
        },
        "Image": summ.image_id or image_id,
        "Name": "/" + e.name,
        "RestartCount": st.restart_count,
        "Driver": spec.backend if spec else "proot",
        "Mounts": [
            {"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.target,
             "RW": not m.read_only}
            for m in (spec.mounts if spec else ())
        ],
        "Config": {
            "Hostname": spec.hostname if spec else e.name,
            "User": spec.user if spec else "",
            "Tty": bool(spec.tty) if spec else False,
            "OpenStdin": bool(spec.stdin_open) if spec else False,
            "Env": [f"{k}={v}" for k, v in spec.env.items()] if spec else [],
            "Cmd": list(st.command),
            "Image": summ.image,
            "WorkingDir": spec.cwd if spec else "",
            "ExposedPorts": {k: {} for k in (*summ.exposed, *ports)},
            "Labels": dict(summ.labels),
            "StopSignal": spec.stop_signal if spec else "SIGTERM",
            "StopTimeout": int(spec.stop_timeout) if spec else 10,
            **({"Healthcheck": {"Test": list(hc.get("test") or ()),
                                "Interval": int(float(hc.get("interval", 30)) * 1e9),
                                "Timeout": int(float(hc.get("timeout", 30)) * 1e9),
                                "StartPeriod": int(float(hc.get("start_period", 0)) * 1e9),
                                "Retries": int(hc.get("retries", 3))}} if hc else {}),
        },
        "HostConfig": {
            "Runtime": spec.backend if spec else "proot",
            "PortBindings": ports,
            "AutoRemove": bool(svc.get("auto_remove")),
            "RestartPolicy": {"Name": str(restart.get("name") or "no"),
                              "MaximumRetryCount": int(restart.get("max_retries") or 0)},
            "Binds": [f"{m.source}:{m.target}" + (":ro" if m.read_only else "")
                      for m in (spec.mounts if spec else ()) if m.kind == "bind"],
            "ExtraHosts": [f"{h}:{ip}" for h, ip in svc.get("extra_hosts") or ()],
            "Init": bool(svc.get("init")),
            "ReadonlyRootfs": bool(svc.get("read_only")),
            "NetworkMode": str(svc.get("network_mode") or next(iter(svc.get("networks") or ()),
                                                                "bridge")),
            "ShmSize": int(svc.get("shm_size") or 64 * 1024 * 1024),
            "Ulimits": [_ulimit_json(u) for u in svc.get("ulimits") or ()],
        },
        "NetworkSettings": {"Ports": ports,
                            "Networks": {n: {"Aliases": [st.service]} for n in summ.networks}},
        "GraphDriver": graph,
        "OpenContainer": {"Dir": str(cdir), "Rootfs": str(rootfs or ""),
                          "RunScript": str(cdir / "run.sh"), "Project": e.project.name,
                          "Kind": e.kind, "StateDir": str(e.project.state.root),
                          "Runtime": spec.backend if spec else "proot",
                          **({"RuntimeReason": spec.backend_reason}
                             if spec and spec.backend_reason else {}),
                          **({"IdMap": spec.idmap} if spec and spec.idmap else {}),
                          "Network": ({"Model": "private", "Holder": spec.netns}
                                      if spec and spec.netns else {"Model": "host"}),
                          "SupervisorPid": e.project.state.supervisor_pid()},
    }


def _ulimit_json(item: str) -> dict[str, Any]:
    """``nofile=512:1024`` as docker's inspect shows it."""
    name, _, value = item.partition("=")
    soft, _, hard = value.partition(":")
    return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}


def _image_inspect(ref: str, ctx: Any) -> dict[str, Any] | None:
    try:
        from ..image.store import ImageStore

        rec = ImageStore(ctx.paths.store).resolve(ref)
    except Exception:
        return None
    try:
        from .images import image_inspect_dict

        return dict(image_inspect_dict(rec))
    except Exception:
        return {"Id": rec.id, "RepoTags": list(rec.repo_tags), "Size": rec.size}


def configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format with a template")
    parser.add_argument("--type", choices=["container", "image"], default=None)
    parser.add_argument("-s", "--size", action="store_true", help="(accepted, ignored)")
    parser.add_argument("names", nargs="+", metavar="NAME")


def run_inspect(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ContainerError

    out: list[dict[str, Any]] = []
    missing = []
    entries = _entries(ctx)
    for name in args.names:
        item: dict[str, Any] | None = None
        if args.type in (None, "container"):
            try:
                e = _resolve(ctx, name, entries)[0]
            except ContainerError:
                item = None
            else:
                item = inspect_dict(e)
        if item is None and args.type in (None, "image"):
            item = _image_inspect(name, ctx)
        if item is None:
            missing.append(name)
        else:
            out.append(item)
    if args.format:
        from .format import render_one

        # as docker's raw fallback: an unknown key prints <no value>, it is not an error
        ctx.stdout.write("".join(render_one(args.format, item, strict=False) for item in out))
        ctx.stdout.flush()
    else:
        ctx.out(json.dumps(out, indent=4))
    if missing:
        raise ContainerError(f"no such object: {', '.join(missing)}.")
    return 0


# -- export / cp -------------------------------------------------------------------------------
def configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", help="write to a file instead of STDOUT")
    parser.add_argument("container", metavar="CONTAINER")


def _tar_rootfs(rootfs: Path, fileobj: BinaryIO) -> None:
    import tarfile

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(top, name)
                rel = os.path.relpath(full, rootfs)
                try:
                    info = tf.gettarinfo(full, arcname=rel)
                except OSError:
                    continue
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(full, "rb") as fh:
                        tf.addfile(info, fh)
                elif info.isdir() or info.issym() or info.islnk() or info.isfifo():
                    tf.addfile(info)


def _spec_and_root(entry: Any) -> tuple[Any, Path]:
    """The runtime spec and ``rootfs`` folder of a container of either kind."""
    from ..errors import ContainerError
    from ..runtime.spec import ContainerSpec

    cdir = entry.project.state.container_dir(entry.name)
    try:
        spec = ContainerSpec.from_dict(json.loads((cdir / "spec.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        raise ContainerError(f"container {entry.name} has no root filesystem "
                             "(not a proot container).") from None
    return spec, cdir / "rootfs"


def _container_root(spec: Any, rootfs: Path) -> contextlib.AbstractContextManager[Path]:
    """The container's whole tree as a host path: the copy itself, or for an overlay root a
    merged view (the running container's mount, or one made for the moment)."""
    layout = spec.overlay
    if layout is None:
        return contextlib.nullcontext(rootfs)
    from ..runtime.overlay import merged_view

    return merged_view(layout)


def run_export(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ConfigError

    spec, rootfs = _spec_and_root(_one(ctx, args.container))
    if args.output:
        with open(args.output, "wb") as fh, _container_root(spec, rootfs) as root:
            _tar_rootfs(root, fh)
        return 0
    out = getattr(ctx.stdout, "buffer", None)
    if out is None or (hasattr(out, "isatty") and out.isatty()):
        raise ConfigError("refusing to write a tar archive to a terminal: use -o FILE or a pipe.")
    with _container_root(spec, rootfs) as root:
        _tar_rootfs(root, out)
    out.flush()
    return 0


def configure_cp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--archive", action="store_true", help="(accepted)")
    parser.add_argument("-L", "--follow-link", action="store_true",
                        help="follow symbolic links in SRC_PATH")
    parser.add_argument("src", metavar="SRC")
    parser.add_argument("dest", metavar="DEST")


def _container_path(spec: Any, path: str, root: Path) -> Path:
    """Host location of a container path, honouring bind mounts and volumes (``root``: the
    container's tree, see :func:`_container_root`)."""
    from ..runtime.create import resolve_in_rootfs

    norm = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    best = None
    for m in spec.mounts:
        t = m.target.rstrip("/") or "/"
        if (norm == t or norm.startswith(t + "/")) and (best is None or len(t) > len(best[0])):
            best = (t, m.source)
    if best is not None:
        rest = norm[len(best[0]):].lstrip("/")
        return Path(best[1]) / rest if rest else Path(best[1])
    return resolve_in_rootfs(root, norm, follow_last=False)


def _split_ref(text: str) -> tuple[str, str] | None:
    if ":" in text and not text.startswith(("/", ".")):
        name, _, path = text.partition(":")
        if name and "/" not in name:
            return name, path or "/"
    return None


def _copy(src: Path, dest: Path, follow: bool) -> None:
    import shutil

    if not os.path.lexists(src):
        from ..errors import ContainerError

        raise ContainerError(f"no such file or directory: {src}.")
    if dest.is_dir() and not dest.is_symlink():
        dest = dest / src.name
    if src.is_dir() and not (src.is_symlink() and not follow):
        shutil.copytree(src, dest, symlinks=not follow, dirs_exist_ok=True)
    elif src.is_symlink() and not follow:
        if os.path.lexists(dest):
            os.unlink(dest)
        os.symlink(os.readlink(src), dest)
    else:
        shutil.copy2(src, dest)


def run_cp(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ConfigError

    s, d = _split_ref(args.src), _split_ref(args.dest)
    if s and d:
        raise ConfigError("copying between containers is not supported: copy via the host.")
    if not s and not d:
        raise ConfigError("one of SRC and DEST must be CONTAINER:PATH.")
    ref = s or d
    assert ref is not None
    spec, rootfs = _spec_and_root(_one(ctx, ref[0]))
    with _container_root(spec, rootfs) as root:
        if s:
            src, dest = _container_path(spec, ref[1], root), Path(args.dest)
        else:
            src, dest = Path(args.src), _container_path(spec, ref[1], root)
        _copy(src, dest, args.follow_link)
    return 0


# -- port / top / wait -------------------------------------------------------------------------
def configure_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def run_port(args: argparse.Namespace, ctx: Any) -> int:
    """``docker port``: the container's published ports (``80/tcp -> 0.0.0.0:8080``), or
    where one private port is published."""
    from ..errors import ConfigError, ContainerError

    e = _one(ctx, args.container)
    want: tuple[int, str] | None = None
    if args.private_port:
        num, _, proto = args.private_port.partition("/")
        if not num.isdigit():
            raise ConfigError(f"invalid port {args.private_port!r}: use PORT[/PROTO].")
        want = (int(num), proto or "tcp")
    found = False
    for p in sorted(e.summary.published, key=lambda p: (p.container_port, p.protocol)):
        host = f"{p.host_ip or '0.0.0.0'}:{p.host_port}"
        if want is None:
            ctx.out(f"{p.container_port}/{p.protocol} -> {host}")
            found = True
        elif (p.container_port, p.protocol) == want:
            ctx.out(host)
            found = True
    if want is not None and not found:
        raise ContainerError(f"no public port '{want[0]}/{want[1]}' published for "
                             f"{e.name}.")
    return 0


def configure_top(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("ps_options", nargs="*", metavar="PS_OPTIONS", help="(ignored)")


def run_top(args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.state import group_members
    from ..errors import ContainerError
    from ..runtime import procfs
    from .compose import process_table

    e = _one(ctx, args.container)
    if not e.running:
        raise ContainerError(f"container {e.name} is not running.")
    pids: list[int] = []
    st = e.state
    if st.pgid:
        pids = group_members(st.pgid)
    if st.pid and procfs.same_process(st.pid, st.pid_start):
        pids += [st.pid, *procfs.traced_by(st.pid), *procfs.descendants(st.pid)]
    ctx.out(process_table(pids))
    return 0


def configure_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run_wait(args: argparse.Namespace, ctx: Any) -> int:
    """Block until each container stops, then print its exit code (docker's ``wait``)."""
    from ..engine import index
    from ..errors import ContainerNotFound

    here = _cwd_project(ctx)
    try:
        for ref in args.containers:
            target = _resolve(ctx, ref, here=here or False)[0]
            last = target.summary.exit_code
            while True:
                try:
                    e = index.find(_entries(ctx, here or False), target.id)
                except ContainerNotFound:  # removed while we waited (--rm)
                    break
                last = e.summary.exit_code
                if e.summary.status in ("exited", "dead"):
                    break
                time.sleep(0.1)
            ctx.out(str(last or 0))
    except KeyboardInterrupt:
        return 130
    return 0
