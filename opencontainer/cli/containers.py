"""Container commands (docker's): run, create, start, stop, restart, kill, rm, ps, logs, exec,
inspect, export, cp.

Each command is ``configure_<name>(parser)`` + ``run_<name>(args, ctx) -> int``; the runtime is
imported inside the runners so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

SHORT = 12


# -- shared helpers ----------------------------------------------------------------------------
def _store(ctx: Any) -> Any:
    from ..runtime.container import ContainerStore

    return ContainerStore(ctx.paths.containers)


# -- finding containers: standalone and compose, from anywhere -----------------------------------
def _cwd_project(ctx: Any) -> Any:
    """The compose project beside the current directory (``Located``), or None."""
    from ..errors import OpenContainerError
    from .compose import _locate

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


def _service_entries(ctx: Any, here: Any, service: str, entries: list[Any]) -> list[Any]:
    """Beside a compose file, a SERVICE name stands for that service's containers."""
    if not here:
        return []
    root = here.state.root.absolute()
    found = [e for e in entries if e.kind == "compose" and e.project is not None
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
    from .compose import Located

    p = entry.project
    return Located(p.name, p.working_dir, p.state)


def _compose_request(entry: Any, op: str, **kw: Any) -> dict[str, Any]:
    """``op`` for this one compose container, through its project's supervisor."""
    from .compose import _request

    return _request(_located(entry), op, containers=[entry.name], **kw)


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
    p.add_argument("--stop-signal", help="signal to stop the container")
    p.add_argument("--stop-timeout", type=float, help="seconds to wait before killing")
    p.add_argument("-l", "--label", action="append", default=[], help="set metadata")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("image", help="the image to run")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


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


def _create_options(args: argparse.Namespace, ctx: Any) -> Any:
    from ..runtime.create import CreateOptions

    return CreateOptions(
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
        cwd=Path(ctx.env.get("PWD") or os.getcwd()),
    )


async def _create(args: argparse.Namespace, ctx: Any) -> Any:
    from ..errors import ImageNotFound
    from ..image.store import ImageStore
    from ..runtime.create import create_container, precheck

    opts = _create_options(args, ctx)
    precheck(ctx.paths, opts, ctx.env)  # no proot, bad ports: fail before pulling anything
    if args.pull != "never":
        try:
            ImageStore(ctx.paths.store).resolve(args.image)
        except ImageNotFound:
            ctx.err(f"Unable to find image '{args.image}' locally")
        except Exception:
            pass
    return await create_container(ctx.paths, opts, ctx.env)


async def _foreground(c: Any, ctx: Any, *, interactive: bool, tty: bool) -> int:
    from ..runtime.create import prepare_start
    from ..runtime.monitor import keep
    from ..runtime.process import DEVNULL

    caps = prepare_start(c, ctx.paths, ctx.env)
    stdin: int | None = DEVNULL
    if interactive:
        try:
            stdin = sys.stdin.fileno()
        except (OSError, ValueError):
            stdin = DEVNULL
    return int(await keep(c, caps, echo_stdout=_binary(ctx.stdout), echo_stderr=_binary(ctx.stderr),
                          stdin=stdin, tty=tty, proxy_sigint=not tty))


async def _detach(c: Any, ctx: Any) -> str:
    from ..runtime.create import prepare_start
    from ..runtime.monitor import spawn_monitor, wait_running

    prepare_start(c, ctx.paths, ctx.env)
    pid = spawn_monitor(c, env=dict(ctx.env))
    return str(await wait_running(c, pid))


def _remove(c: Any, volumes: bool) -> None:
    from ..runtime.monitor import remove_container_files

    with contextlib.suppress(FileNotFoundError):
        remove_container_files(c, volumes=volumes)


# -- run / create ------------------------------------------------------------------------------
def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true",
                        help="run in the background and print the container ID")
    _parser_without_h(parser)
    _add_create_options(parser)


def run_run(args: argparse.Namespace, ctx: Any) -> int:
    if args.detach and args.rm and args.interactive and args.tty:
        pass

    async def main() -> int:
        c = await _create(args, ctx)
        if args.detach:
            await _detach(c, ctx)
            ctx.out(c.id)
            return 0
        try:
            code = await _foreground(c, ctx, interactive=args.interactive, tty=args.tty)
        finally:
            if args.rm:
                _remove(c, volumes=True)
        return code

    return int(_run_async(main))


def configure_create(parser: argparse.ArgumentParser) -> None:
    _parser_without_h(parser)
    _add_create_options(parser)


def run_create(args: argparse.Namespace, ctx: Any) -> int:
    async def main() -> Any:
        return await _create(args, ctx)

    c = _run_async(main)
    ctx.out(c.id)
    return 0


# -- start / stop / restart / kill -------------------------------------------------------------
def configure_start(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    parser.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def _start_one(c: Any, ctx: Any, attach: bool, interactive: bool) -> int:
    st = c.state()
    if st.status == "running":
        return 0

    async def main() -> int:
        if attach:
            return await _foreground(c, ctx, interactive=interactive,
                                     tty=c.config.spec.tty)
        await _detach(c, ctx)
        return 0

    return int(_run_async(main))


def _start_compose(entry: Any, ctx: Any) -> None:
    from ..errors import ContainerError
    from .compose import _check_result, _start_via_up

    st = entry.state
    if st.status in ("running", "starting", "restarting"):
        return
    if st.one_off:
        raise ContainerError(f"{entry.name} is a one-off container of 'compose run': "
                             "it cannot be started again.")
    if entry.project.state.supervisor_alive():
        _check_result(_compose_request(entry, "start"))
    else:
        _start_via_up(_located(entry), ctx, [st.service])


def run_start(args: argparse.Namespace, ctx: Any) -> int:
    code = 0
    for ref in args.containers:
        entries = _resolve(ctx, ref)
        if entries[0].kind == "compose":
            for e in entries:
                _start_compose(e, ctx)
            ctx.out(ref)
            continue
        c = entries[0].container
        rc = _start_one(c, ctx, args.attach, args.interactive)
        if args.attach:
            if c.config.auto_remove:
                _remove(c, volumes=True)
            return rc
        ctx.out(ref)
        code = code or rc
    return code


def _wait_exited(c: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not c.dir.exists():
            return True
        if c.state().status not in ("running", "stopping"):
            return True
        time.sleep(0.05)
    return False


def _kill_directly(c: Any) -> None:
    """The keeper is gone but proot is not: end the container's processes ourselves."""
    from ..runtime import procfs

    st = c.raw_state()
    if st.pid and procfs.same_process(st.pid, st.pid_start):
        for p in procfs.traced_by(st.pid) + procfs.descendants(st.pid) + [st.pid]:
            procfs.kill_quietly(p)


def stop_container(c: Any, timeout: float | None, sig: str | None = None) -> None:
    from ..runtime import procfs

    st = c.state()
    if st.status not in ("running", "stopping"):
        return
    t = c.config.spec.stop_timeout if timeout is None else timeout
    c.write_control("stop", timeout=t, signal=sig or c.config.spec.stop_signal)
    if procfs.same_process(st.monitor_pid, st.monitor_start):
        procfs.kill_quietly(st.monitor_pid, 15)
        if _wait_exited(c, t + 15):
            return
    _kill_directly(c)
    _wait_exited(c, 5)


def configure_stop(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time", type=float, default=None,
                        help="seconds to wait before killing the container")
    parser.add_argument("-s", "--signal", default=None, help="signal to send")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def _stop_compose(entry: Any, timeout: float | None) -> None:
    from ..engine.state import kill_leftovers

    if entry.project.state.supervisor_alive():
        if entry.state.one_off:
            _signal_group(entry.state, 15)
        else:
            _compose_request(entry, "stop", timeout=timeout)
    else:  # nothing runs without its supervisor; end what a dead one left behind
        kill_leftovers(entry.project.state)


def run_stop(args: argparse.Namespace, ctx: Any) -> int:
    for ref in args.containers:
        for e in _resolve(ctx, ref):
            if e.kind == "compose":
                _stop_compose(e, args.time)
            else:
                stop_container(e.container, args.time, args.signal)
        ctx.out(ref)
    return 0


def configure_restart(parser: argparse.ArgumentParser) -> None:
    configure_stop(parser)


def run_restart(args: argparse.Namespace, ctx: Any) -> int:
    from .compose import _check_result, _start_via_up

    for ref in args.containers:
        for e in _resolve(ctx, ref):
            if e.kind == "compose":
                if e.project.state.supervisor_alive():
                    _check_result(_compose_request(e, "restart", timeout=args.time))
                else:
                    _start_via_up(_located(e), ctx, [e.state.service])
                continue
            stop_container(e.container, args.time, args.signal)
            _start_one(e.container, ctx, attach=False, interactive=False)
        ctx.out(ref)
    return 0


def configure_kill(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def run_kill(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ContainerError
    from ..runtime import procfs
    from ..runtime.process import parse_signal

    signo = parse_signal(args.signal)
    for ref in args.containers:
        entries = _resolve(ctx, ref)
        if entries[0].kind == "compose":
            for e in entries:
                if not e.running or not e.project.state.supervisor_alive():
                    raise ContainerError(f"cannot kill container {e.name}: it is not running.")
                _compose_request(e, "kill", signal=args.signal)
            ctx.out(ref)
            continue
        c = entries[0].container
        st = c.state()
        if st.status != "running":
            raise ContainerError(f"cannot kill container {ref}: it is not running.")
        c.write_control("kill", signal=signo)
        if procfs.same_process(st.monitor_pid, st.monitor_start):
            procfs.kill_quietly(st.monitor_pid, 15)
        else:
            _kill_directly(c)
        if signo == 9 and not _wait_exited(c, 15):
            _kill_directly(c)
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
        if found[0].kind == "compose":
            try:
                for e in found:
                    _rm_compose(e, args.force)
            except ContainerError as exc:
                errors.append(exc)
                continue
            ctx.out(ref)
            continue
        c = found[0].container
        if c.state().status in ("running", "stopping"):
            if not args.force:
                errors.append(ContainerError(
                    f"cannot remove running container {c.name}: stop it first or use rm -f."
                ))
                continue
            stop_container(c, 0, "SIGKILL")
        _remove(c, volumes=args.volumes)
        ctx.out(ref)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ContainerError("; ".join(str(e).rstrip(".") for e in errors) + ".")
    return 0


def _rm_compose(entry: Any, force: bool) -> None:
    from ..engine.state import kill_leftovers
    from ..errors import ContainerError
    from .compose import _remove_container_dir

    state = entry.project.state
    if entry.running and not force:
        raise ContainerError(f"cannot remove running container {entry.name}: stop it first "
                             "or use rm -f.")
    if state.supervisor_alive():
        if entry.state.one_off:  # `compose run`'s: not the supervisor's
            _signal_group(entry.state, 9)
        else:
            _compose_request(entry, "rm", force=True)
    else:
        kill_leftovers(state)
    _remove_container_dir(state.container_dir(entry.name))


def _signal_group(st: Any, signo: int) -> None:
    """Signal a compose container's process group (a one-off the supervisor does not run)."""
    import signal as _signal

    from ..engine.state import group_members, same_process

    if st.pgid and (same_process(st.pid, st.pid_start) or group_members(st.pgid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(st.pgid, _signal.Signals(signo))


# -- ps ----------------------------------------------------------------------------------------
def _ports_text(spec: Any) -> str:
    return ", ".join(
        f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
        for p in spec.ports
    )


def _command_text(argv: Iterable[str], trunc: bool) -> str:
    import shlex

    text = " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else shlex.quote(a) for a in argv)
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def _row(e: Any, now: float, trunc: bool = True) -> dict[str, str]:
    from datetime import UTC, datetime

    from ..humanize import human_ago

    summ = e.summary
    if e.kind == "standalone":
        created = e.container.config.created
    else:
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
    }


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


def _template(fmt: str, row: dict[str, Any]) -> str:
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        as_json = expr.startswith("json ")
        if as_json:
            expr = expr[5:].strip()
        value: Any = row
        for part in [p for p in expr.split(".") if p]:
            value = value.get(part, "") if isinstance(value, dict) else ""
        if as_json or not isinstance(value, str):
            return json.dumps(value)
        return value

    return re.sub(r"\{\{\s*(.*?)\s*\}\}", sub, fmt)


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
    if args.format == "json":
        for r in rows:
            ctx.out(json.dumps(r))
        return 0
    if args.format not in ("table", ""):
        fmt = args.format[6:] if args.format.startswith("table ") else args.format
        for r in rows:
            ctx.out(_template(fmt, r))
        return 0
    cols = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
            ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"),
            ("NAMES", "Names")]
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for h, k in cols]
    lines = [[h for h, _ in cols]] + [[r[k] for _, k in cols] for r in rows]
    for ln in lines:
        ctx.out("   ".join(v.ljust(w) for v, w in zip(ln, widths, strict=True)).rstrip())
    return 0


# -- logs --------------------------------------------------------------------------------------
def configure_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="follow log output")
    parser.add_argument("-n", "--tail", default="all", help="number of lines from the end")
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    parser.add_argument("container", metavar="CONTAINER")


def _emit_log(ctx: Any, rec: dict[str, Any], timestamps: bool) -> None:
    line = str(rec.get("line", ""))
    if timestamps:
        line = f"{rec.get('t', '')} {line}"
    (ctx.err if rec.get("stream") == "stderr" else ctx.out)(line)


def _compose_logs(entries: list[Any], args: argparse.Namespace, ctx: Any) -> int:
    """A compose container's log (or, beside a compose file, a service's): compose's own
    ``logs``, without the name prefix for a single container."""
    from .compose import run_logs as compose_logs

    e = entries[0]
    ns = argparse.Namespace(
        services=[e.state.service], index=e.state.number if len(entries) == 1 else None,
        follow=args.follow, tail=args.tail, timestamps=args.timestamps, no_color=True,
        no_log_prefix=len(entries) == 1, since=None, until=None, files=None,
        located=_located(e))
    if e.state.one_off:
        return _one_off_logs(e, args, ctx)
    return compose_logs(ns, ctx)


def _one_off_logs(e: Any, args: argparse.Namespace, ctx: Any) -> int:
    from ..engine.state import read_logs

    tail = None if str(args.tail) in ("all", "-1") else int(args.tail)
    for rec in read_logs(e.project.state, e.name, e.state.service, tail=tail):
        ctx.out(rec.text)
    return 0


def run_logs(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ConfigError

    entries = _resolve(ctx, args.container)
    if entries[0].kind == "compose":
        return _compose_logs(entries, args, ctx)
    c = entries[0].container
    path = c.log_path
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        fh = None
    tail: int | None
    if str(args.tail) == "all":
        tail = None
    else:
        try:
            tail = int(args.tail)
        except ValueError:
            raise ConfigError(f"invalid --tail value {args.tail!r}: a number or 'all'.") from None
    try:
        if fh is not None:
            lines = fh.read().splitlines(keepends=True)
            pending = b""
            if lines and not lines[-1].endswith(b"\n"):
                pending = lines.pop()
            if tail is not None:
                lines = lines[-tail:] if tail > 0 else []
            for raw in lines:
                try:
                    _emit_log(ctx, json.loads(raw), args.timestamps)
                except ValueError:
                    continue
        if not args.follow:
            return 0
        while True:
            if fh is None:
                try:
                    fh = open(path, "rb")  # noqa: SIM115
                    pending = b""
                except FileNotFoundError:
                    pass
            chunk = fh.read() if fh is not None else b""
            if chunk:
                data = pending + chunk
                *complete, pending = data.split(b"\n")
                for raw in complete:
                    try:
                        _emit_log(ctx, json.loads(raw), args.timestamps)
                    except ValueError:
                        continue
                continue
            if not c.dir.exists() or c.state().status not in ("running", "stopping"):
                return 0
            time.sleep(0.1)
    finally:
        if fh is not None:
            fh.close()


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
    import attrs

    from ..errors import ConfigError, ContainerError
    from ..paths import atomic_write, proot_binary
    from ..runtime.container import new_id
    from ..runtime.proot import ProotCapabilities
    from ..runtime.runscript import render_run_sh
    from ..runtime.spec import parse_env_list, resolve_user

    if not args.command:
        raise ConfigError("exec needs a command to run in the container.")
    entry = _one(ctx, args.container)
    if entry.kind == "compose":
        from .compose import exec_in

        if not entry.running:
            raise ContainerError(f"container {entry.name} is not running.")
        return exec_in(_located(entry), entry.state, list(args.command), args, ctx)
    c = entry.container
    if c.state().status != "running":
        raise ContainerError(f"container {c.name} is not running.")
    spec = c.config.spec
    binary = Path(c.config.proot) if Path(c.config.proot).exists() else proot_binary(ctx.env)
    caps = ProotCapabilities.detect(binary, cache_dir=ctx.paths.cache)
    env = dict(spec.env)
    env.update(parse_env_list(args.env, ctx.env))
    user = spec.user
    if args.user:
        u = resolve_user(spec.layers(), args.user)
        user = u.spec
        if "HOME" not in dict(parse_env_list(args.env)):
            env["HOME"] = u.home
    if args.tty:
        env.setdefault("TERM", "xterm")
    espec = attrs.evolve(spec, argv=tuple(args.command), env=env, user=user,
                         cwd=args.workdir or spec.cwd, tty=args.tty)
    from ..runtime.create import check_command

    check_command(espec)
    execs = c.dir / "execs"
    execs.mkdir(exist_ok=True)
    script = execs / f"exec-{new_id()[:12]}.sh"
    atomic_write(script, render_run_sh(espec, caps, binary, c.dir, join=True), mode=0o755)
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

    from ..runtime.monitor import _pump_tty_in, _pump_tty_out
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

                tg.start_soon(_pump_tty_out, proc.tty_master, None, _binary(ctx.stdout))
                if args.interactive and stdin is not None and stdin >= 0:
                    if os.isatty(stdin):
                        import termios
                        import tty as ttymod

                        saved = termios.tcgetattr(stdin)
                        ttymod.setraw(stdin, termios.TCSANOW)
                    tg.start_soon(_pump_tty_in, proc.tty_master, stdin)
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
def container_inspect_dict(c: Any) -> dict[str, Any]:
    st = c.state()
    spec = c.config.spec
    ports: dict[str, Any] = {}
    for p in spec.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {"HostIp": p.host_ip, "HostPort": str(p.host_port)})
    exposed: dict[str, dict[str, Any]] = {k: {} for k in spec.exposed_ports}
    for key in ports:
        exposed.setdefault(key, {})
    return {
        "Id": c.id,
        "Created": c.config.created,
        "Path": spec.argv[0] if spec.argv else "",
        "Args": list(spec.argv[1:]),
        "State": {
            "Status": st.status,
            "Running": st.status == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": st.pid or 0,
            "ExitCode": st.exit_code or 0,
            "Error": st.error,
            "StartedAt": st.started_at or "0001-01-01T00:00:00Z",
            "FinishedAt": st.finished_at or "0001-01-01T00:00:00Z",
        },
        "Image": c.config.image_id,
        "Name": "/" + c.name,
        "RestartCount": st.restart_count,
        "Driver": "proot",
        "Mounts": [
            {"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.target,
             "RW": not m.read_only}
            for m in spec.mounts
        ],
        "Config": {
            "Hostname": spec.hostname,
            "User": spec.user,
            "Tty": spec.tty,
            "OpenStdin": spec.stdin_open,
            "Env": [f"{k}={v}" for k, v in spec.env.items()],
            "Cmd": list(spec.argv),
            "Image": c.config.image,
            "WorkingDir": spec.cwd,
            "ExposedPorts": exposed,
            "Labels": dict(spec.labels),
            "StopSignal": spec.stop_signal,
            "StopTimeout": spec.stop_timeout,
        },
        "HostConfig": {
            "AutoRemove": c.config.auto_remove,
            "PortBindings": ports,
            "Binds": [f"{m.source}:{m.target}" + (":ro" if m.read_only else "")
                      for m in spec.mounts if m.kind == "bind"],
            "ExtraHosts": [f"{n}:{ip}" for ip, names in spec.hosts for n in names],
        },
        "NetworkSettings": {"Ports": ports},
        "GraphDriver": (
            {"Name": "overlay", "Data": {
                "LowerDir": spec.overlay.lower, "UpperDir": spec.overlay.upper,
                "WorkDir": spec.overlay.work, "MergedDir": spec.overlay.merged}}
            if spec.overlay else {"Name": "copy", "Data": {"RootFS": str(c.rootfs)}}
        ),
        "OpenContainer": {"Dir": str(c.dir), "Rootfs": str(c.rootfs), "RunScript": str(c.run_sh),
                          "Proot": c.config.proot, "MonitorPid": st.monitor_pid},
    }


def compose_inspect_dict(e: Any) -> dict[str, Any]:
    """``inspect`` of a compose container: docker's shape, from its state and spec."""
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
    return {
        "Id": summ.id,
        "Created": iso(st.created_at),
        "Path": st.command[0] if st.command else "",
        "Args": list(st.command[1:]),
        "State": {
            "Status": summ.status,
            "Running": summ.status == "running",
            "Paused": False,
            "Restarting": summ.status == "restarting",
            "OOMKilled": False,
            "Dead": summ.status == "dead",
            "Pid": st.pid or 0,
            "ExitCode": st.exit_code or 0,
            "Error": "",
            "StartedAt": iso(st.started_at),
            "FinishedAt": iso(st.finished_at),
            **({"Health": {"Status": st.health, "Log": list(st.health_log)}}
               if st.health else {}),
        },
        "Image": summ.image_id,
        "Name": "/" + e.name,
        "RestartCount": st.restart_count,
        "Driver": "proot",
        "Mounts": [
            {"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.target,
             "RW": not m.read_only}
            for m in (spec.mounts if spec else ())
        ],
        "Config": {
            "Hostname": spec.hostname if spec else e.name,
            "User": spec.user if spec else "",
            "Env": [f"{k}={v}" for k, v in spec.env.items()] if spec else [],
            "Cmd": list(st.command),
            "Image": summ.image,
            "WorkingDir": spec.cwd if spec else "",
            "ExposedPorts": {k: {} for k in (*summ.exposed, *ports)},
            "Labels": dict(summ.labels),
            "StopSignal": spec.stop_signal if spec else "SIGTERM",
        },
        "HostConfig": {"PortBindings": ports},
        "NetworkSettings": {"Ports": ports,
                            "Networks": {n: {"Aliases": [st.service]} for n in summ.networks}},
        "OpenContainer": {"Dir": str(cdir), "Rootfs": str(rootfs or ""),
                          "RunScript": str(cdir / "run.sh"), "Project": e.project.name,
                          "StateDir": str(e.project.state.root),
                          "SupervisorPid": e.project.state.supervisor_pid()},
    }


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
                item = (container_inspect_dict(e.container) if e.kind == "standalone"
                        else compose_inspect_dict(e))
        if item is None and args.type in (None, "image"):
            item = _image_inspect(name, ctx)
        if item is None:
            missing.append(name)
        else:
            out.append(item)
    if args.format:
        for item in out:
            ctx.out(_template(args.format, item))
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

    if entry.kind == "standalone":
        return entry.container.config.spec, entry.container.rootfs
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
    if e.kind == "compose":
        if e.state.pgid:
            pids = group_members(e.state.pgid)
    else:
        st = e.container.raw_state()
        if st.pid and procfs.same_process(st.pid, st.pid_start):
            pids = [st.pid, *procfs.traced_by(st.pid), *procfs.descendants(st.pid)]
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
