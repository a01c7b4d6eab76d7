"""``pause``, ``unpause``, ``rename`` and ``attach`` (docker's).

- ``pause``/``unpause`` go through the container's supervisor (control operations ``pause`` and
  ``unpause``): it sends SIGSTOP/SIGCONT to every process of the container and moves its status
  ``running`` <-> ``paused`` (the lifecycle table stays the only writer of a status).
- ``rename`` renames a *stopped standalone* container: its project folder, its container
  folder, its model and records (paths inside ``spec.json``/``run.sh`` follow, and so does its
  registration as a user of its image's tree). A running one, whose supervisor holds those
  folders open, must be stopped first; a compose container is named by its project and
  service and is refused (``compose`` would not find it under another name).
- ``attach`` follows the container's output from its log (as ``logs -f --tail 0``) until it
  stops, and forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to it (``--sig-proxy``, the default); it
  does not connect standard input (``--no-stdin`` is implied).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .containers import _one, _request


# -- pause / unpause ------------------------------------------------------------------------------
def configure_pause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def configure_unpause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")


def _pause(args: argparse.Namespace, ctx: Any, op: str) -> int:
    from ..errors import ContainerError, OpenContainerError

    failed = 0
    for ref in args.containers:
        try:
            e = _one(ctx, ref)
            if not e.project.state.supervisor_alive() or e.summary.status not in (
                    "running", "paused"):
                raise ContainerError(f"container {e.name} is not running.")
            if e.state.one_off and e.kind == "compose":
                raise ContainerError(f"{e.name} is a one-off container of 'compose run': it "
                                     f"cannot be {op}d.")
            _request(e, op)
            ctx.out(ref)
        except OpenContainerError as exc:
            ctx.err(f"Error: {exc}")
            failed = 1
    return failed


def run_pause(args: argparse.Namespace, ctx: Any) -> int:
    return _pause(args, ctx, "pause")


def run_unpause(args: argparse.Namespace, ctx: Any) -> int:
    return _pause(args, ctx, "unpause")


# -- rename ---------------------------------------------------------------------------------------
def configure_rename(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("new_name", metavar="NEW_NAME")


def _rewrite(path: Path, old: str, new: str) -> None:
    """``old`` (a path) -> ``new`` in the text file ``path``, where ``old`` is a whole path
    or a path's prefix (never ``/x/ab`` for ``/x/a``)."""
    from ..paths import atomic_write

    try:
        text = path.read_text()
        mode = path.stat().st_mode & 0o7777
    except OSError:
        return
    changed = re.sub(re.escape(old) + r"(?=[/\"'\s:]|$)", lambda _: new, text)
    if changed != text:
        atomic_write(path, changed, mode=mode)


def rename_standalone(ctx: Any, entry: Any, new: str) -> None:
    from ..engine.model import ProjectModel
    from ..engine.standalone import reserve
    from ..paths import atomic_write, file_lock

    old = entry.name
    old_root = entry.project.state.root.absolute()
    reserve(ctx.paths, new)  # validated, not taken: its folder, for the moment
    new_root = (ctx.paths.containers / new).absolute()
    try:
        # held: no supervisor runs it (a second flock here would see our own lock)
        with file_lock(old_root / "lock", blocking=False):
            new_root.rmdir()
            os.rename(old_root, new_root)
    except BaseException:
        with contextlib.suppress(OSError):
            new_root.rmdir()
        raise
    (new_root / "lock").unlink(missing_ok=True)
    os.rename(new_root / old, new_root / new)
    old_cdir, new_cdir = f"{new_root}/{old}", f"{new_root}/{new}"
    for f in (new_root / "project.json", new_root / new / "state.json",
              new_root / new / "spec.json", new_root / new / "run.sh"):
        _rewrite(f, str(old_root), str(new_root))
        _rewrite(f, old_cdir, new_cdir)
    model = json.loads((new_root / "project.json").read_text())
    svc = dict(model["services"].pop(old))
    svc["name"] = new
    if svc.get("container_name"):
        svc["container_name"] = new
    model["name"] = new
    model["services"] = {new: svc}
    text = json.dumps(model, indent=2, sort_keys=True)
    atomic_write(new_root / "project.json", text)
    st = json.loads((new_root / new / "state.json").read_text())
    st.update(name=new, service=new, project=new,
              config_hash=ProjectModel.from_json(text).services[new].config_hash())
    atomic_write(new_root / new / "state.json", json.dumps(st, indent=1))
    # the image's tree: its user is now the new folder
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        lower = (json.loads((new_root / new / "spec.json").read_text()).get("overlay")
                 or {}).get("lower")
        if lower:
            from ..image.store import ImageStore

            store = ImageStore(ctx.paths.store)
            store.add_rootfs_user(Path(lower), Path(new_cdir))
            store.remove_rootfs_user(Path(lower), Path(f"{old_root}/{old}"))


def _wait_supervisor_gone(state: Any, timeout: float = 10.0) -> None:
    """A stopped standalone container's supervisor goes once it is idle (just after
    ``create``, once it has served a request): ask it something, wait for it to go."""
    from ..api.control import ControlClient, ControlError

    if not state.supervisor_alive():
        return
    with contextlib.suppress(ControlError, OSError, ValueError):
        ControlClient(state.socket, timeout=5.0).request("ps")
    deadline = time.monotonic() + timeout
    while state.supervisor_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_rename(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ContainerError
    from ..paths import validate_name

    e = _one(ctx, args.container)
    new = validate_name("container", args.new_name)
    if e.name == new:
        raise ContainerError(f"renaming a container with the same name as its current name "
                             f"({new}) has no effect.")
    if e.kind != "standalone":
        raise ContainerError(f"{e.name} is a container of the compose project "
                             f"{e.project.name}: its name comes from its service; rename the "
                             "service in the compose file instead.")
    if e.running:
        raise ContainerError(f"container {e.name} is running: stop it first (renaming a "
                             "running container is not supported).")
    _wait_supervisor_gone(e.project.state)
    rename_standalone(ctx, e, new)
    return 0


# -- attach ---------------------------------------------------------------------------------------
def configure_attach(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-stdin", action="store_true",
                        help="do not attach STDIN (always: attach follows the output only)")
    parser.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                        help="forward received signals to the container (default true)")
    parser.add_argument("--detach-keys", default=None, help="(accepted, ignored)")
    parser.add_argument("container", metavar="CONTAINER")


def run_attach(args: argparse.Namespace, ctx: Any) -> int:
    return attach_entry(_one(ctx, args.container), args.sig_proxy == "true", ctx)


def attach_entry(e: Any, sig_proxy: bool, ctx: Any) -> int:
    """Follow the container ``e`` (an index entry) until it stops; its exit code."""
    import signal

    from ..engine.state import effective, follow_log
    from ..errors import ContainerError
    from .containers import _binary

    state = e.project.state
    if e.summary.status not in ("running", "paused", "restarting"):
        raise ContainerError("you cannot attach to a stopped container, start it first.")
    log = state.log_file(e.name)
    try:
        offset = log.stat().st_size
    except OSError:
        offset = 0
    pending: list[int] = []
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    old_handlers = {}
    if sig_proxy:
        for s in forwarded:
            old_handlers[s] = signal.signal(s, lambda n, _f: pending.append(n))
    out, err = _binary(ctx.stdout), _binary(ctx.stderr)
    try:
        idle = 0
        while True:
            while pending:
                signo = pending.pop(0)
                with contextlib.suppress(Exception):
                    _request(e, "kill", signal=signal.Signals(signo).name)
            got = False
            for off, line in follow_log(log, offset):
                offset = off
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                stream = err if d.get("s") == "stderr" else out
                stream.write((str(d.get("l", "")) + "\n").encode())
                stream.flush()
                got = True
            if got:
                continue
            st = state.read_container(e.name)
            alive = state.supervisor_alive()
            live = st is not None and effective(st, alive).status in (
                "running", "paused", "restarting", "starting", "stopping")
            if not live:
                idle += 1
                if idle > 2:  # what the pumps still had is in the log now
                    return int(st.exit_code or 0) if st is not None else 0
            time.sleep(0.1)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
