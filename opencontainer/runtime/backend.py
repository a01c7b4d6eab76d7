"""Which backend runs a container, and the native backend's ``run.sh``.

- ``proot``: the container's processes run under proot (ptrace), in the overlay namespace of
  :mod:`nsexec` when there is one: works everywhere proot does (Android, no user namespaces,
  foreign architectures through qemu).
- ``native``: the processes run directly in their own user, mount, UTS and PID namespaces
  (:mod:`native`): native speed, a private /proc, real pid 1.

``OPENCONTAINER_RUNTIME`` = ``auto`` | ``native`` | ``proot`` chooses. The default, ``auto``:
native where unprivileged user namespaces work, the image is built for this machine's
architecture and the host is not Android, unless the container needs what only proot gives
yet (:func:`proot_needs`: a container port below 1024 in the host's network, proot's port map,
``--init``, ``--ulimit``, ``--read-only``, ``--shm-size``; and a root image with a single mapped
id, see engine/runner.py); else proot. ``inspect`` shows the choice and why (RuntimeReason).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import ContainerError
from . import idmap as _idmap
from .spec import ContainerSpec

BACKENDS = ("auto", "native", "proot")
DEFAULT = "auto"


def mode_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    mode = env.get("OPENCONTAINER_RUNTIME", DEFAULT).strip().lower() or DEFAULT
    if mode not in BACKENDS:
        raise ContainerError(
            f"OPENCONTAINER_RUNTIME={mode!r} is not one of {', '.join(BACKENDS)}.")
    return mode


def is_android(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("ANDROID_ROOT") or env.get("TERMUX_VERSION")) or \
        os.path.exists("/system/build.prop")


def native_possible(image_arch: str = "", env: Mapping[str, str] | None = None,
                    *, userns: bool | None = None) -> tuple[bool, str]:
    """(can the native backend run an image of ``image_arch`` here, why not)."""
    if not sys.platform.startswith("linux"):
        return False, "not Linux"
    if is_android(env):
        return False, "Android (no unprivileged user namespaces)"
    if image_arch:
        from ..image.platform import Platform

        host = Platform.host().architecture
        if image_arch != host:
            return False, f"the image is for {image_arch}, this machine is {host} (qemu via proot)"
    if userns is None:
        from .overlay import userns_works

        userns = userns_works()
    if not userns:
        return False, "unprivileged user namespaces are not available"
    return True, ""


def low_ports(ports: Iterable[int | str]) -> list[int]:
    """The ports below 1024 among ``ports`` (numbers, or the image's ``80/tcp`` form)."""
    out: set[int] = set()
    for p in ports:
        try:
            n = int(str(p).split("/", 1)[0])
        except ValueError:
            continue
        if 0 < n < 1024:
            out.add(n)
    return sorted(out)


def proot_needs(*, host_ports: Iterable[int | str] = (), port_map: bool = False,
                init: bool = False, ulimits: Sequence[str] = (), read_only: bool = False,
                shm_size: int | None = None, tty: bool = False) -> list[str]:
    """What a container asks for that only the proot backend gives yet, in words.

    ``host_ports``: its container ports in the host's network (published or exposed): the
    native backend's user namespace cannot bind one below 1024 there. ``port_map``: its
    project's ports go through proot's ``-p`` map, which the native backend does not have.
    ``tty``: a terminal (``-t``): the native backend mounts a devpts of the container's own,
    where the supervisor's pty has no name (``tty`` says "not a tty"); binding the host's
    devpts instead would let the container open the user's other terminals."""
    needs: list[str] = []
    low = low_ports(host_ports)
    if low:
        needs.append("container port " + ", ".join(map(str, low))
                     + " (below 1024, in the host's network)")
    elif port_map:
        needs.append("its project's ports go through proot's port map")
    if init:
        needs.append("--init")
    if ulimits:
        needs.append("--ulimit")
    if read_only:
        needs.append("--read-only")
    if shm_size:
        needs.append("--shm-size")
    if tty:
        needs.append("a terminal (-t)")
    return needs


def decide(image_arch: str = "", env: Mapping[str, str] | None = None, *,
           userns: bool | None = None, needs: Sequence[str] = ()) -> tuple[str, str]:
    """(``native`` or ``proot``, why) for a new container of an image built for
    ``image_arch`` (``userns``: whether user namespaces are known to work, e.g. the overlay
    root was just mounted in one; None: probe). ``needs``: what the container asks for that
    only proot gives (:func:`proot_needs`): ``auto`` then chooses proot."""
    mode = mode_from_env(env)
    if mode == "proot":
        return "proot", "OPENCONTAINER_RUNTIME=proot"
    ok, why = native_possible(image_arch, env, userns=userns)
    if not ok:
        if mode == "native":
            raise ContainerError(f"OPENCONTAINER_RUNTIME=native, but the native backend cannot "
                                 f"run this container here: {why}.")
        return "proot", f"native is not possible: {why}"
    if mode == "native":
        return "native", "OPENCONTAINER_RUNTIME=native"
    if needs:
        return "proot", "the native backend does not support " + "; ".join(needs) + " yet"
    return "native", "user namespaces work here"


def choose(image_arch: str = "", env: Mapping[str, str] | None = None,
           *, userns: bool | None = None, needs: Sequence[str] = ()) -> str:
    """``native`` or ``proot`` (:func:`decide` without the reason)."""
    return decide(image_arch, env, userns=userns, needs=needs)[0]


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:")


def native_args(spec: ContainerSpec, etc_dir: Path | None = None, *,
                join: bool = False) -> list[tuple[tuple[str, ...], str]]:
    """native.py's options, each with why (run.sh prints the comment)."""
    idmap = spec.idmap or f"single:{spec.uid}:{spec.gid}"
    out: list[tuple[tuple[str, ...], str]] = []
    layout = spec.overlay
    pidfile = layout.pidfile if layout is not None else str(Path(spec.rootfs).parent / "ns.pid")
    if join:
        out.append((("--join", pidfile), "enter the running container's namespaces"))
        if spec.tty:
            out.append((("--tty", "1"), "a pty of the container's own, relayed to ours"))
    else:
        out.append((("--root", str(spec.rootfs)), "the container's root (pivot_root into it)"))
        if layout is not None:
            out.append((("--lower", layout.lower, "--upper", layout.upper, "--work", layout.work),
                        "overlayfs: the image's tree, read-only, under the container's changes"))
        out.append((("--pidfile", pidfile), "where exec and health probes find the namespaces"))
        if spec.netns:
            out.append((("--netns", spec.netns), "join the project's network (its holder)"))
        if spec.hostname:
            out.append((("--hostname", spec.hostname), "the container's hostname"))
        if etc_dir is not None:
            out.append((("--etc", str(etc_dir)), "generated /etc/hosts, hostname, resolv.conf"))
        for m in spec.mounts:
            what = f"volume {m.name}" if m.kind == "volume" and m.name else m.kind
            value = f"{_escape(m.source)}:{_escape(m.target)}" + (":ro" if m.read_only else "")
            out.append((("--bind", value), what + (", read-only" if m.read_only else "")))
    out.append((("--idmap", idmap), _idmap.describe(idmap)))
    out.append((("--uid", str(spec.uid), "--gid", str(spec.gid)), "run as uid:gid"))
    out.append((("--cwd", spec.cwd), "working directory"))
    if "LC_CTYPE" not in spec.env:
        out.append((("--unset", "LC_CTYPE"), "Python's locale coercion sets it, not the image"))
    succeed = _idmap.fake_root_calls(idmap, spec.uid)
    if succeed:
        out.append((("--succeed", ",".join(succeed)), "fake root: chown and set*id succeed"))
    return out


def build_native_command(spec: ContainerSpec, etc_dir: Path | None = None,
                         python: str | None = None, *, join: bool = False) -> list[str]:
    """The full command (``env -i`` + native.py + options + the container's command)."""
    from .overlay import step_argv
    from .proot import env_prefix

    argv = [*env_prefix(spec), *step_argv("native", python, isolated=True)]
    for values, _ in native_args(spec, etc_dir, join=join):
        argv.extend(values)
    return [*argv, "--", *spec.argv]


def render_native_run_sh(spec: ContainerSpec, etc_dir: Path | None = None,
                         python: str | None = None, *, join: bool = False) -> str:
    from .proot import env_binary
    from .runscript import _array

    lines = [
        "#!/usr/bin/env bash",
        f"# OpenContainer container {spec.name!r}"
        + (f" (image {spec.image})" if spec.image else ""),
        "# Generated by opencontainer: run it by hand to reproduce the container exactly.",
        "# Backend: native (user, mount, UTS and PID namespaces; no proot), see "
        "opencontainer/runtime/native.py",
        "",
        "# The container's whole environment: nothing else is inherited from the host.",
    ]
    lines += _array("env", [((f"{k}={v}",), "") for k, v in spec.env.items()])
    lines += ["", "# the namespace step and its options"]
    from .overlay import step_argv

    rows: list[tuple[Sequence[str], str]] = [
        (tuple(step_argv("native", python, isolated=True)), "")]
    rows += native_args(spec, etc_dir, join=join)
    lines += _array("native", rows)
    lines += ["", "# the container's command"]
    lines += _array("cmd", [((a,), "") for a in spec.argv])
    lines += ["", f'exec {shlex.quote(env_binary())} -i "${{env[@]}}" "${{native[@]}}" -- '
                  '"${cmd[@]}"']
    return "\n".join(lines) + "\n"


def write_native_run_sh(spec: ContainerSpec, path: Path, python: str | None = None, *,
                        durable: bool = True) -> Path:
    """run.sh (and the /etc files it binds); ``durable=False``: not fsynced (a ``--rm``
    container's, which lives as long as it runs)."""
    from .runscript import _write, write_etc_files

    write_etc_files(spec, path.parent)
    _write(path, render_native_run_sh(spec, path.parent, python), mode=0o755, durable=durable)
    return path
