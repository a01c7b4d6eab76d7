"""Engine-level operations on one container, for every client of the engine: the CLI's
container commands and the Docker Engine API (:mod:`opencontainer.api.docker`).

A standalone container is a project of one (:mod:`.standalone`). :func:`create_standalone`
creates one in an open :class:`~opencontainer.engine.engine.Engine`; the other operations act
on an :class:`~opencontainer.engine.index.Entry` of either kind, through its project's
supervisor when one runs (its control socket), else by spawning a detached supervisor
(``start``) or from the files it left (``stop``, ``remove``). They block (control sockets,
process spawns): an async caller runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ContainerError
from ..paths import Paths

if TYPE_CHECKING:
    from .engine import Engine
    from .index import Entry
    from .runner import Attachment
    from .standalone import ContainerOptions
    from .supervisor import Container, Supervisor


@attrs.define
class Host:
    """Who asks: the environment and paths of the caller (a CLI context's, or the API
    server's). ``out``/``err`` take the progress lines a CLI would print (ignored here)."""

    env: Mapping[str, str]
    paths: Paths

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Host:
        return cls(env=dict(env), paths=Paths.from_env(env))

    def out(self, text: str = "") -> None:
        pass

    def err(self, text: str) -> None:
        pass


async def create_standalone(engine: Engine, opts: ContainerOptions, host: Host, *,
                            attach: Attachment | None = None) -> tuple[Supervisor, Container]:
    """A new standalone container (a project of one) in ``engine``: its supervisor and its
    container. Every option is checked before anything is pulled or written; a failure
    half-way leaves nothing behind."""
    from ..paths import remove_tree
    from . import standalone

    standalone.service_of("probe", opts, host.env)  # every option checked first
    if host.env.get("OPENCONTAINER_RUNNER") != "shell":
        from ..runtime.create import check_proot

        check_proot(host.paths, host.env)
    name = standalone.reserve(host.paths, opts.name)
    try:
        svc = standalone.service_of(name, opts, host.env)
        model = standalone.model_of(host.paths, name, svc, opts.cwd or Path.cwd())
        sup = await engine.open(model)
        sup.plan_with(svc)  # the ports, before pulling anything
        c = await sup.create_container(svc, name, attach=attach)
    except BaseException:
        remove_tree(standalone.state_dir(host.paths, name), ignore_errors=True)
        raise
    return sup, c


def _located(entry: Entry) -> Any:
    from ..cli.locate import Located

    p = entry.project
    return Located(p.name, p.working_dir, p.state)


def request(entry: Entry, op: str, **kw: Any) -> dict[str, Any]:
    """``op`` for this one container, through its project's supervisor."""
    from ..api.control import ControlClient

    client = ControlClient(entry.project.state.socket, timeout=None)
    client.connect_wait = 2.0  # callers saw it alive: it may be opening its socket
    reply: dict[str, Any] = client.request(op, containers=[entry.name], **kw)
    if not reply.get("ok"):
        raise ContainerError(str(reply.get("error")))
    return reply


def _supervised(entry: Entry, op: str, **kw: Any) -> dict[str, Any] | None:
    """``op`` through the project's supervisor if one runs: its reply, or None when there is
    none, or when it ended between our look and our request (a standalone container's
    supervisor ends once its container has exited, as docker-compose v1's ``down`` sees when
    it stops and removes in one go); the caller then acts on the files it left."""
    from ..api.control import ControlError

    state = entry.project.state
    if not state.supervisor_alive():
        return None
    try:
        return request(entry, op, **kw)
    except ControlError:
        if _gone(state):
            return None
        raise


def _gone(state: Any, wait: float = 10.0) -> bool:
    """Whether the supervisor holding ``state``'s lock lets go of it within ``wait`` s."""
    import time

    deadline = time.monotonic() + wait
    while state.supervisor_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _check_result(reply: dict[str, Any]) -> None:
    result = reply.get("result") or {}
    if result and not result.get("ok", True):
        raise ContainerError(str((result.get("errors") or ["failed"])[0]))


def start(entry: Entry, host: Host) -> None:
    """Start a stopped container: by its running supervisor, else under a new detached one."""
    from ..cli.compose import _start_via_up

    st = entry.state
    if st.status in ("running", "starting", "restarting"):
        return
    if st.one_off:
        raise ContainerError(f"{entry.name} is a one-off container of 'compose run': "
                             "it cannot be started again.")
    reply = _supervised(entry, "start")
    if reply is not None:
        _check_result(reply)
    else:
        _start_via_up(_located(entry), host, [st.service], quiet=True)


def signal_group(entry: Entry, signo: int) -> None:
    """Signal a container's process group (a ``compose run`` one-off: supervised by its own
    ``compose run``, not by the project's supervisor)."""
    from .state import group_members, same_process

    st = entry.state
    if st.pgid and (same_process(st.pid, st.pid_start) or group_members(st.pgid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(st.pgid, _signal.Signals(signo))


def stop(entry: Entry, timeout: float | None = None, sig: str | None = None) -> None:
    from .state import kill_leftovers

    if entry.state.one_off:
        signal_group(entry, 15)
    elif _supervised(entry, "stop", timeout=timeout, **({"signal": sig} if sig else {})) is None:
        kill_leftovers(entry.project.state)  # nothing runs without its supervisor


def restart(entry: Entry, host: Host, timeout: float | None = None,
            sig: str | None = None) -> None:
    from ..cli.compose import _start_via_up

    reply = None if entry.state.one_off else _supervised(entry, "restart", timeout=timeout)
    if reply is not None:
        _check_result(reply)
    else:
        stop(entry, timeout, sig)
        _start_via_up(_located(entry), host, [entry.state.service], quiet=True)


def kill(entry: Entry, sig: str = "SIGKILL") -> None:
    from ..runtime.signals import parse_signal

    signo = parse_signal(sig)
    if not entry.running or not entry.project.state.supervisor_alive():
        raise ContainerError(f"cannot kill container {entry.name}: it is not running.")
    if entry.state.one_off:
        signal_group(entry, signo)
    else:
        request(entry, "kill", signal=sig)


def forget(paths: Paths, name: str) -> None:
    """A removed standalone container's project folder goes too."""
    from ..paths import remove_tree
    from .standalone import state_dir

    d = state_dir(paths, name)
    if d.is_dir() and not any(p.is_dir() for p in d.iterdir()):
        remove_tree(d, ignore_errors=True)


def remove(entry: Entry, paths: Paths, *, force: bool = False) -> None:
    """Remove a container (``force``: a running one too, killed first)."""
    from ..paths import remove_tree
    from .state import kill_leftovers

    state = entry.project.state
    if entry.running and not force:
        raise ContainerError(f"cannot remove running container {entry.name}: stop it first "
                             "or use rm -f.")
    if entry.state.one_off:
        signal_group(entry, 9)
        if not state.supervisor_alive():
            kill_leftovers(state)
    elif entry.kind == "standalone":  # its supervisor goes with it
        if _supervised(entry, "down", timeout=0 if force else None) is None:
            kill_leftovers(state)
    elif _supervised(entry, "rm", force=True, timeout=0 if force else None) is None:
        kill_leftovers(state)
    remove_tree(state.container_dir(entry.name), ignore_errors=True)
    if entry.kind == "standalone":
        forget(paths, entry.name)


def exec_script(entry: Entry, host: Host, argv: list[str], *, env: list[str] | None = None,
                user: str | None = None, workdir: str | None = None,
                tty: bool = False) -> Path:
    """The script that runs ``argv`` in the running container ``entry`` (joining its
    namespaces, as ``exec``), written under the container's ``execs/``; the caller runs it
    (``bash SCRIPT``) and deletes it afterwards."""
    import json

    from ..paths import atomic_write, proot_binary
    from ..runtime.create import check_command
    from ..runtime.proot import ProotCapabilities
    from ..runtime.runscript import render_run_sh
    from ..runtime.spec import ContainerSpec, parse_env_list, resolve_user
    from .standalone import new_id

    if not argv:
        raise ContainerError("exec needs a command to run in the container.")
    if not entry.running:
        raise ContainerError(f"container {entry.name} is not running.")
    cdir = entry.project.state.container_dir(entry.name)
    try:
        spec = ContainerSpec.from_dict(json.loads((cdir / "spec.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        raise ContainerError(f"container {entry.name} has no root filesystem "
                             "(not a proot container).") from None
    environ = dict(spec.env)
    environ.update(parse_env_list(env or [], host.env))
    spec_user = spec.user
    if user:
        u = resolve_user(spec.layers(), user)
        spec_user = u.spec
        if "HOME" not in dict(parse_env_list(env or [])):
            environ["HOME"] = u.home
    if tty:
        environ.setdefault("TERM", "xterm")
    espec = attrs.evolve(spec, argv=tuple(argv), env=environ, user=spec_user,
                         cwd=workdir or spec.cwd, tty=tty)
    check_command(espec)
    execs = cdir / "execs"
    execs.mkdir(exist_ok=True)
    script = execs / f"exec-{new_id()[:12]}.sh"
    if espec.backend == "native":  # join its namespaces directly, no proot
        from ..runtime.backend import render_native_run_sh

        text = render_native_run_sh(espec, cdir, join=True)
    else:
        binary = proot_binary(host.env)
        caps = ProotCapabilities.detect(binary, cache_dir=host.paths.cache)
        text = render_run_sh(espec, caps, binary, cdir, join=True)
    atomic_write(script, text, mode=0o755)
    return script
