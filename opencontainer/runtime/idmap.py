"""How the native backend maps ids into a container's user namespace.

Two modes (see :mod:`native`):

- ``sub`` -- as rootless Podman: container uid 0 is the user, 1..N are the user's subordinate
  ids (``/etc/subuid`` and ``/etc/subgid``), set up by the setuid ``newuidmap``/``newgidmap``
  of the ``uidmap`` package. Ownership inside is real: chown, setuid, gosu work, and a
  service that refuses to run as root (postgres) runs as its own user. Files a container
  gives to uid N belong to host uid SUB+N-1 (the host user may not be able to delete them
  directly: :func:`remove_tree` deletes inside such a namespace).
- ``single`` -- only the user's own uid and gid are mapped, to the container's starting user
  (0, or the image's ``User``). Every file stays the user's. A root container gets the
  fake-root contract through seccomp: the chown family and the set*id calls return 0 without
  doing anything, so ``chown`` + ``gosu`` entry points go on -- but as uid 0, so a program
  that checks it is not root after dropping privileges (postgres: "root execution of the
  PostgreSQL server is not permitted") refuses to start, and ``exec -u`` cannot change the
  user.

``OPENCONTAINER_IDMAP`` = ``auto`` (default: ``sub`` when the tools and a range of at least
65536 ids exist) | ``sub`` | ``single``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import attrs

from ..errors import ContainerError
from . import syscalls

MODES = ("auto", "sub", "single")
MIN_RANGE = 65536


@attrs.frozen
class SubRange:
    uid_start: int
    gid_start: int
    count: int


def _range(path: Path, names: tuple[str, ...]) -> tuple[int, int] | None:
    """The first range of at least MIN_RANGE ids for one of ``names`` (user name or uid)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count >= MIN_RANGE:
            return start, count
    return None


def subordinate_range(etc: Path = Path("/etc")) -> SubRange | None:
    """This user's subordinate uid and gid ranges, when the tools to use them exist."""
    if not (shutil.which("newuidmap") and shutil.which("newgidmap")):
        return None
    uid = os.getuid()
    names: tuple[str, ...] = (str(uid),)
    with contextlib.suppress(KeyError):
        names = (pwd.getpwuid(uid).pw_name, str(uid))
    u = _range(etc / "subuid", names)
    g = _range(etc / "subgid", names)
    if u is None or g is None:
        return None
    return SubRange(u[0], g[0], min(u[1], g[1], MIN_RANGE))


def mode_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    mode = env.get("OPENCONTAINER_IDMAP", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ContainerError(f"OPENCONTAINER_IDMAP={mode!r} is not one of {', '.join(MODES)}.")
    return mode


def choose(uid: int, gid: int, env: Mapping[str, str] | None = None) -> str:
    """The ``--idmap`` of a new native container that starts as ``uid:gid``."""
    mode = mode_from_env(env)
    if mode != "single":
        sub = subordinate_range()
        if sub is not None:
            return f"sub:{sub.uid_start}:{sub.gid_start}:{sub.count}"
        if mode == "sub":
            raise ContainerError(
                "OPENCONTAINER_IDMAP=sub, but newuidmap/newgidmap (package uidmap) or a range of "
                f"{MIN_RANGE} ids for this user in /etc/subuid and /etc/subgid is missing.")
    return f"single:{uid}:{gid}"


def is_single(idmap: str) -> bool:
    return not idmap.startswith("sub:")


def fake_root_calls(idmap: str, uid: int) -> tuple[str, ...]:
    """The syscalls a container answers with success (single mode, starting as root)."""
    if is_single(idmap) and uid == 0:
        return (*syscalls.CHOWN_FAMILY, *syscalls.SETID_FAMILY)
    return ()


def describe(idmap: str) -> str:
    if idmap.startswith("sub:"):
        _, start, _, count = idmap.split(":")
        return (f"container root is your user, uids 1-{count} are your subordinate ids from "
                f"{start}")
    return "only your own uid is mapped (fake root: chown and set*id succeed without effect)"


def remove_tree(path: Path, python: str | None = None) -> bool:
    """Delete ``path`` inside a user namespace with the subordinate ids mapped (files a
    container gave to other uids); True when it is gone."""

    from .overlay import step_argv

    sub = subordinate_range()
    if sub is None or not os.path.lexists(path):
        return not os.path.lexists(path)
    argv = [*step_argv("native", python, isolated=True), "--userns-only",
            "--idmap", f"sub:{sub.uid_start}:{sub.gid_start}:{sub.count}",
            "--", shutil.which("rm") or "/bin/rm", "-rf", "--", str(path)]
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600,
                       check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return not os.path.lexists(path)
