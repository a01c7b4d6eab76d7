"""Copy-on-write container roots: overlayfs in a user namespace, when the kernel allows it.

A container's folder then holds::

    rootfs/   the mount point (empty on the host; the merged tree inside the namespace)
    upper/    every change the container made (overlayfs' upper layer, whiteouts included)
    work/     overlayfs' work directory
    ns.pid    "pid start-time" of the process holding the namespace while it runs

and the image store's unpacked tree is the lower layer, shared read-only by every container
of the image. Creating a container is three ``mkdir``; nothing of the image is copied, and the
kernel copies a file up only when a container changes it.

Where that is not possible (Termux/Android, kernels before 5.11, unprivileged user namespaces
switched off or confined by AppArmor, an upper filesystem overlayfs cannot use), containers
get a private copy as before (:mod:`rootfs`). :func:`overlay_supported` tries it once per
kernel and pair of filesystems and remembers the answer. ``OPENCONTAINER_ROOTFS`` = ``auto``
(default) | ``overlay`` | ``copy`` chooses.

Host-side code that needs a container's files (``cp``, ``export``, ``exec -u`` …) either reads
the layers itself (:class:`Layers`, for lookups) or gets a real merged view of the tree from
:func:`merged_view` (``/proc/<pid>/root/…`` of the running container, or of a short-lived
holder process when it is stopped).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ContainerError
from ..paths import atomic_write, make_tree_writable

MODES = ("auto", "overlay", "copy")
OPAQUE_XATTR = "user.overlay.opaque"
PIDFILE = "ns.pid"


@attrs.frozen
class OverlayLayout:
    """Where a container's layers are (absolute paths)."""

    lower: str
    upper: str
    work: str
    merged: str

    @classmethod
    def for_container(cls, image_tree: Path, container_dir: Path) -> OverlayLayout:
        d = Path(container_dir).absolute()
        return cls(str(Path(image_tree).absolute()), str(d / "upper"), str(d / "work"),
                   str(d / "rootfs"))

    @property
    def pidfile(self) -> str:
        return str(Path(self.merged).parent / PIDFILE)

    def to_dict(self) -> dict[str, str]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> OverlayLayout | None:
        if not d:
            return None
        return cls(str(d["lower"]), str(d["upper"]), str(d["work"]), str(d["merged"]))

    def layers(self) -> Layers:
        return Layers((Path(self.upper), Path(self.lower)))


def package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def step_argv(step: str, python: str | None = None, *, isolated: bool = False) -> list[str]:
    """The command that runs ``runtime/STEP.py``'s ``main()`` (nsexec, native or netns) from
    its cached bytecode, through runtime/step.py (a script's source is compiled at every
    start). -S: no site (~20 ms less per start, exec and health probe); no ``-m``: no runpy
    and no package ``__init__`` (~15 ms less); -P: the current directory (a project's) never
    goes on sys.path; ``isolated`` (-I): no PYTHON* variables, no user site either."""
    flags = ["-I", "-S"] if isolated else ["-S", "-P"]
    return [python or sys.executable, *flags,
            str(Path(__file__).resolve().with_name("step.py")), step]


def helper_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which ``python -m opencontainer.runtime.nsexec`` imports this copy."""
    out = dict(os.environ if env is None else env)
    root = package_root()
    out["PYTHONPATH"] = root + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    return out


def nsexec_prefix(layout: OverlayLayout, python: str | None = None, *, join: bool = False,
                  enosys: Sequence[str] = (), succeed: Sequence[str] = (),
                  hostname: str | None = None,
                  read_only: Sequence[tuple[str, str]] = (), pidfile: bool = True,
                  read_only_root: bool = False,
                  tmpfs: Sequence[tuple[str, int]] = (),
                  netns: str = "") -> list[str]:
    """The wrapper that puts a command into the container's namespace (new or running);
    a new one can get its own ``hostname`` and read-only binds ``(source, at)`` for ``:ro``
    volumes (see :func:`ro_binds`), a read-only root (``read_only_root``: the overlay is
    mounted read-only) and tmpfs mounts ``(host folder, bytes)`` (``--shm-size``)."""
    argv = step_argv("nsexec", python)
    if join:
        argv += ["--join-pidfile", layout.pidfile]
    else:
        if netns:
            argv += ["--netns", netns]
        argv += ["--lower", layout.lower, "--upper", layout.upper, "--work", layout.work,
                 "--merged", layout.merged]
        if pidfile:
            argv += ["--pidfile", layout.pidfile]
        if hostname:
            argv += ["--hostname", hostname]
        for src, at in read_only:
            argv += ["--ro-src", src, "--ro-dst", at]
        if read_only_root:
            argv += ["--read-only"]
        for at, size in tmpfs:
            argv += ["--tmpfs", f"{size}:{at}"]
    if enosys:
        argv += ["--enosys", ",".join(enosys)]
    if succeed:
        argv += ["--succeed", ",".join(succeed)]
    return [*argv, "--"]


def ro_binds(layout: OverlayLayout, sources: Sequence[str]) -> list[tuple[str, str]]:
    """Where each ``:ro`` volume source is bound read-only for proot to bind from:
    ``<container>/ro/<n>`` (private to the container's mount namespace)."""
    base = Path(layout.merged).parent / "ro"
    return [(src, str(base / str(i))) for i, src in enumerate(sources)]


def prepare_dirs(layout: OverlayLayout) -> None:
    """The three directories of a new container (the lower layer must exist)."""
    if not Path(layout.lower).is_dir():
        raise ContainerError(f"the image root filesystem {layout.lower} is missing.")
    st = os.stat(layout.lower)
    for p in (layout.upper, layout.work):
        os.mkdir(p, 0o700)
    # the mount point: overlayfs shows the lower root's mode, keep the host's view the same
    os.mkdir(layout.merged, stat.S_IMODE(st.st_mode) | 0o700)


# -- can we? ------------------------------------------------------------------------------------


def _unsafe_path(p: str) -> bool:
    return any(c in p for c in ",:\\\n")


def _probe(lower_parent: Path, upper_parent: Path, python: str) -> str | None:
    """Mount a tiny overlay the way containers will; None = works, else why not."""
    import subprocess
    import tempfile

    with contextlib.ExitStack() as stack:
        low = Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix=".overlay-probe-", dir=lower_parent)))
        top = Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix=".overlay-probe-", dir=upper_parent)))
        (low / "f").write_text("lower\n")
        layout = OverlayLayout(str(low), str(top / "upper"), str(top / "work"),
                               str(top / "merged"))
        for p in (layout.upper, layout.work, layout.merged):
            os.mkdir(p, 0o700)
        # read the lower file, create a file, delete the lower one (a whiteout). No copy-up and
        # a volatile mount: overlayfs fsyncs copied-up files and unmounting syncs the whole
        # upper filesystem, which waits behind the writeback of a pull that just finished
        # (0.2-0.6 s here)
        m = layout.merged
        script = f"read x < {m}/f && echo upper > {m}/new && rm {m}/f && test ! -e {m}/f"
        try:
            res = subprocess.run(
                [*nsexec_prefix(layout, python, pidfile=False)[:-1], "--volatile", "--",
                 "/bin/sh", "-c", script],
                env=helper_env(), capture_output=True, timeout=20, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        try:
            ok = (res.returncode == 0 and (low / "f").read_text() == "lower\n"
                  and (Path(layout.upper) / "new").is_file()
                  and os.path.lexists(Path(layout.upper) / "f"))
        finally:
            make_tree_writable(top)
        if ok:
            return None
        err = res.stderr.decode(errors="replace").strip().splitlines()
        return err[-1].removeprefix("opencontainer: ") if err else f"exit {res.returncode}"
    return "unreachable"  # pragma: no cover


def mode_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    mode = env.get("OPENCONTAINER_ROOTFS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ContainerError(
            f"OPENCONTAINER_ROOTFS={mode!r} is not one of {', '.join(MODES)}.")
    return mode


def userns_works() -> bool:
    """Can this process tree create a user namespace right now? (~5 ms: ``unshare -U true``)

    The probe's verdict is cached per kernel, uid and filesystems, but user namespaces can go
    away without any of those changing: a sysctl, an AppArmor profile, a seccomp sandbox such
    as Android's. A cached "yes" is checked with this before it is trusted."""
    import shutil
    import subprocess

    unshare = shutil.which("unshare")
    argv = ([unshare, "--user", "true"] if unshare else
            [sys.executable, "-S", "-c",
             "import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare(0x10000000) != 0)"])
    try:
        # LC_ALL=C: unshare loads no locale files (a third of its ~2.5 ms)
        env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, timeout=20,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def overlay_supported(lower_parent: Path, upper_parent: Path, cache_dir: Path | None,
                      python: str | None = None, *,
                      userns: Callable[[], bool] | None = None) -> tuple[bool, str | None]:
    """(works, why not) for overlay roots with lowers in ``lower_parent`` and container dirs
    in ``upper_parent``; tried once per kernel, uid and pair of filesystems, then cached. A
    cached "works" is trusted only while user namespaces can still be made (``userns``: how
    to ask, :func:`userns_works` by default); when they cannot, one warning is logged and the
    probe runs again (and its new answer is cached)."""
    import json
    import platform

    if not sys.platform.startswith("linux"):
        return False, "not Linux"
    if _unsafe_path(str(Path(lower_parent).absolute())) or \
            _unsafe_path(str(Path(upper_parent).absolute())):
        return False, "a path contains ',' ':' or '\\'"
    try:
        key = (f"{platform.release()}:{os.getuid()}:{os.stat(lower_parent).st_dev}:"
               f"{os.stat(upper_parent).st_dev}")
    except OSError as exc:
        return False, str(exc)
    cache = Path(cache_dir) / "overlay-probe.json" if cache_dir else None
    known: dict[str, Any] = {}
    if cache is not None:
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text())
        if key in known:
            entry = known[key]
            if not entry.get("ok"):
                return False, entry.get("why")
            if (userns or userns_works)():
                return True, None
            import structlog

            structlog.get_logger().warning(
                "user namespaces are no longer available here: new containers get copied "
                "root filesystems instead of overlay roots")
    why = _probe(Path(lower_parent), Path(upper_parent), python or sys.executable)
    if cache is not None:
        known[key] = {"ok": why is None, "why": why}
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache, json.dumps(known, indent=1))
    return why is None, why


def choose(image_tree: Path, container_dir: Path, cache_dir: Path | None,
           env: Mapping[str, str] | None = None, *,
           userns: Callable[[], bool] | None = None) -> bool:
    """Use an overlay root for a new container in ``container_dir``? (``userns``: see
    :func:`overlay_supported`)"""
    mode = mode_from_env(env)
    if mode == "copy":
        return False
    if _unsafe_path(str(Path(image_tree).absolute())) or \
            _unsafe_path(str(Path(container_dir).absolute())):
        if mode == "overlay":
            raise ContainerError(
                f"OPENCONTAINER_ROOTFS=overlay: the path {container_dir} or {image_tree} holds "
                "',' ':' or '\\', which an overlay mount cannot name.")
        return False
    ok, why = overlay_supported(Path(image_tree).parent, Path(container_dir).parent, cache_dir,
                                userns=userns)
    if not ok and mode == "overlay":
        raise ContainerError(f"OPENCONTAINER_ROOTFS=overlay, but an overlay root cannot be "
                             f"mounted here: {why}.")
    return ok


# -- reading the layers from the host -------------------------------------------------------


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


@attrs.frozen
class Layers:
    """A read-only lookup over layers, top first (one layer = a plain tree)."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, root: Path | Layers) -> Layers:
        """``root`` itself if it is Layers, else the one-layer view of the tree ``root``."""
        return root if isinstance(root, Layers) else cls((Path(root),))

    @property
    def top(self) -> Path:
        return self.roots[0]

    def lookup(self, parts: Sequence[str]) -> Path | None:
        """The host path that container path ``parts`` (no ``..``, symlinks not followed) is
        in the merged tree, or None when it does not exist there."""
        active = list(self.roots)
        for i in range(len(parts)):
            last = i == len(parts) - 1
            found: Path | None = None
            nxt: list[Path] = []
            for root in active:
                p = root.joinpath(*parts[: i + 1])
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if is_whiteout(st):
                    break
                if stat.S_ISDIR(st.st_mode):
                    if found is None:
                        found = p
                    nxt.append(root)
                    if _is_opaque(p):
                        break
                    continue
                if found is None:
                    found = p  # a file/symlink hides the lower layers
                break
            if found is None:
                return None
            if last:
                return found
            if not nxt:  # a non-directory in the middle of the path
                return None
            active = nxt
        return self.top if not parts else None

    def resolve(self, path: str, follow_last: bool = True) -> tuple[list[str], Path | None]:
        """Follow symlinks inside the merged tree: (container path parts, host path or None)."""
        parts = [p for p in path.split("/") if p and p != "."]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            host = self.lookup([*resolved, part])
            if host is not None and host.is_symlink() and (parts or follow_last):
                hops += 1
                if hops > 40:
                    raise ContainerError(f"too many levels of symbolic links in {path}.")
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            resolved.append(part)
        return resolved, self.lookup(resolved)

    def ensure_dir(self, parts: Sequence[str]) -> Path:
        """Make container dir ``parts`` exist in the top layer, parents copied with the mode
        and times of the lower layer's directories (overlayfs shows the upper dir's)."""
        for i in range(len(parts) + 1):
            sub = list(parts[:i])
            top = self.top.joinpath(*sub)
            if top.is_dir():
                continue
            below = self.lookup(sub)
            top.mkdir()
            if below is not None and below.is_dir():
                st = os.stat(below)
                os.chmod(top, stat.S_IMODE(st.st_mode))
                with contextlib.suppress(OSError):
                    os.utime(top, ns=(st.st_atime_ns, st.st_mtime_ns))
        return self.top.joinpath(*parts)


# -- a merged view for the host ----------------------------------------------------------------


def running_pid(layout: OverlayLayout) -> int | None:
    """The container's namespace process, unless it is gone or ending (a zombie: its root
    and mounts are already gone, so /proc/PID/root shows nothing)."""
    from .kernel import live_pid

    pid = live_pid(layout.pidfile)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        state = data[data.rindex(b")") + 2:][:1]
    except (OSError, ValueError):
        return None
    return None if state in (b"Z", b"X") else pid


def _pidfile_is_native(path: str) -> bool:
    """Written by the native backend ("pid start native"): the pid has pivoted into the
    container's root."""
    try:
        with open(path) as fh:
            return fh.read().split()[2:3] == ["native"]
    except OSError:
        return False


@contextlib.contextmanager
def merged_view(layout: OverlayLayout, python: str | None = None) -> Iterator[Path]:
    """A host path showing the container's merged tree (writes there are copy-on-write too).

    Running container: its own mount, seen through ``/proc/<pid>/root``. Stopped: a holder
    process mounts it for the duration of the ``with``.
    """
    pid = running_pid(layout)
    if pid is not None:
        if _pidfile_is_native(layout.pidfile):  # pid 1 of a native container: its root
            yield Path(f"/proc/{pid}/root")
        else:
            yield Path(f"/proc/{pid}/root") / layout.merged.lstrip("/")
        return
    import subprocess

    # no --pidfile: the holder is not the container (exec must not join it)
    argv = [*nsexec_prefix(layout, python, pidfile=False)[:-1], "--hold"]
    holder = subprocess.Popen(argv, env=helper_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        line = holder.stdout.readline()
        if line.strip() != b"ready":
            holder.wait(timeout=10)
            assert holder.stderr is not None
            err = holder.stderr.read().decode(errors="replace").strip().splitlines()
            raise ContainerError(err[-1].removeprefix("opencontainer: ") if err else
                                 "cannot mount the container's root filesystem.")
        yield Path(f"/proc/{holder.pid}/root") / layout.merged.lstrip("/")
    finally:
        with contextlib.suppress(OSError):
            holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        for f in (holder.stdout, holder.stderr):
            if f is not None:
                f.close()


__all__ = [
    "Layers",
    "OverlayLayout",
    "choose",
    "merged_view",
    "mode_from_env",
    "nsexec_prefix",
    "overlay_supported",
    "prepare_dirs",
]
