"""Each container gets its own writable copy of the image tree -- when it cannot have an overlay.

Where the kernel lets a normal user mount overlayfs in a user namespace (Linux >= 5.11, not
confined), :func:`create_container_root` gives the container a copy-on-write overlay root
instead (see :mod:`overlay`): nothing is copied. This module is the fallback (Termux, old
kernels, ``OPENCONTAINER_ROOTFS=copy``) and the copier itself.

proot cannot give copy-on-write: a process inside the container that opens a file for writing
opens the very inode the path names. A hardlink farm is therefore NOT safe: ``echo >> f``,
``truncate``, ``chmod u+w f && echo > f`` inside the container would change the image store and
every other container sharing the inode (we own those files, so fake-root chmod really works).
So every regular file's *data* is copied.

How (``OPENCONTAINER_ROOTFS_COPY`` = auto | cp | parallel | python, default auto):

- ``cp``: one GNU ``cp -a --reflink=auto`` (C speed; on btrfs/XFS/bcachefs it clones extents,
  i.e. real copy-on-write at the filesystem level, nearly free). Used when GNU cp is there; if
  it fails (e.g. device nodes a normal user cannot create) the Python copier redoes the tree.
- ``python``: our own walker: directories, symlinks and hardlinks-within-the-image (kept
  hardlinked to each other *inside this container's copy*) on one thread, file data through
  ``copy_file_range`` (in-kernel; a reflink where the filesystem can) in a thread pool. Modes
  and times are kept, ownership is not (a normal user cannot chown; proot's ``-0`` shows root
  anyway); device nodes are skipped (``/dev`` is bound from the host).
- ``parallel``: several ``cp -a`` processes on balanced subtrees (hardlinks across subtrees
  become copies).

Hard links are optional everywhere: where the filesystem refuses ``link()`` (Android 6+ app
data answers EACCES; some FUSE / SD-card filesystems EPERM or ENOTSUP), ``cp`` runs with
``--no-preserve=links`` (probed once per copy with a scratch file; and a ``cp -a`` that still
fails on a hard link is rerun that way), the Python copier copies the data of each further name
of a hardlinked file, and the small-tree symlink sharing makes plain symlinks.

Measured here (Debian 12, 2 cores, while other test suites kept the load at 10-15), the Debian
service image: 324 MB, 11,050 entries; minimum of 3 runs:

    on tmpfs (pure CPU)       cp -a 0.52 s   cp 0.52 s   parallel 0.65 s   python 0.84 s
    on ext4 (/tmp, sync'ed)   cp -a 3.95 s   cp 5.34 s   parallel 6.22 s   python 7.76 s
    ext4, a second series     cp -a 8.36 s   cp 6.25 s   parallel 7.82 s   python 6.14 s
                              (single ext4 runs varied 4-20 s: the shared virtual disk is the
                              bottleneck and every method is I/O-bound there)

So the default is a single ``cp -a --reflink=auto``: on ext4 (no reflinks) nothing safe beats
``cp -a`` -- the bytes must be written -- and the Python and parallel variants lose to it on 2
busy cores; on a reflink filesystem it is close to free. ``cp -a`` itself cannot be beaten
without sharing inodes, which is exactly what is unsafe here.

(re-measure with ``python -m opencontainer.runtime.rootfs SRC SCRATCH_DIR [ROUNDS]``.)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs

from ..errors import ContainerError
from ..logs import logger
from ..paths import hardlinks_work, link_refused, link_refused_everywhere, remove_tree
from . import overlay
from .overlay import OverlayLayout

log = logger()

DEFAULT_WORKERS = max(4, min(16, (os.cpu_count() or 2) * 2))
CP_PROCESSES = max(2, min(8, os.cpu_count() or 2))
METHOD = os.environ.get("OPENCONTAINER_ROOTFS_COPY", "auto")  # auto | python


def _open_source(src: str, mode: int) -> int:
    """Open for reading; a file we own but may not read (mode 000, as RHEL's /etc/shadow) is
    made readable for the moment of the open and restored at once."""
    try:
        return os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except PermissionError:
        os.chmod(src, stat.S_IMODE(mode) | stat.S_IRUSR)
        try:
            return os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        finally:
            os.chmod(src, stat.S_IMODE(mode))


def _copy_data(src: str, dst: str, mode: int, atime_ns: int, mtime_ns: int, size: int) -> None:
    fd_in = _open_source(src, mode)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            remaining = size
            use_cfr = True
            while remaining > 0:
                n = 0
                if use_cfr:
                    try:
                        n = os.copy_file_range(fd_in, fd_out, remaining)
                    except OSError:
                        use_cfr = False
                        continue
                else:
                    try:
                        n = os.sendfile(fd_out, fd_in, None, remaining)
                    except OSError:
                        data = os.read(fd_in, min(remaining, 1 << 20))
                        n = os.write(fd_out, data) if data else 0
                if n == 0:
                    break
                remaining -= n
            if remaining > 0:
                # the file grew or shrank under us: fall back to a plain copy of what is there
                os.lseek(fd_in, 0, os.SEEK_SET)
                os.lseek(fd_out, 0, os.SEEK_SET)
                os.ftruncate(fd_out, 0)
                while chunk := os.read(fd_in, 1 << 20):
                    os.write(fd_out, chunk)
            os.fchmod(fd_out, stat.S_IMODE(mode))
            os.utime(fd_out, ns=(atime_ns, mtime_ns))
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def copy_tree(src: Path, dest: Path, workers: int = DEFAULT_WORKERS,
              link_symlinks: bool = False) -> int:
    """Copy ``src`` to the new directory ``dest`` (must not exist). Returns the file count.

    ``link_symlinks``: a symlink becomes a hardlink to the source's symlink inode where the
    filesystem allows (else a new symlink). Safe, unlike hardlinked regular files: a symlink's
    target can never be rewritten in place (only replaced, which changes our own directory),
    and creating an inode is what costs here (~0.3 ms each on this ext4, 268 links in busybox).
    """
    src = Path(src)
    dest = Path(dest)
    if not src.is_dir():
        raise ContainerError(f"the image root filesystem {src} is missing.")
    os.mkdir(dest, 0o700)
    dir_times: list[tuple[str, int, os.stat_result]] = []
    links: dict[tuple[int, int], str] = {}
    pending_links: list[tuple[str, str, str, os.stat_result]] = []  # first copy, dest, src, st
    count = 0
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[cf.Future[None]] = []
        root_st = os.lstat(src)
        dir_times.append((str(dest), 0, root_st))
        stack = [(str(src), str(dest), 0)]
        while stack:
            sdir, ddir, depth = stack.pop()
            with os.scandir(sdir) as it:
                entries = list(it)
            for e in entries:
                s = e.path
                d = os.path.join(ddir, e.name)
                st = e.stat(follow_symlinks=False)
                m = st.st_mode
                if stat.S_ISDIR(m):
                    os.mkdir(d, 0o700)
                    dir_times.append((d, depth + 1, st))
                    stack.append((s, d, depth + 1))
                elif stat.S_ISLNK(m):
                    if link_symlinks:
                        try:
                            os.link(s, d, follow_symlinks=False)
                            continue
                        except OSError:
                            # another filesystem, protected_hardlinks, Android's EACCES ...:
                            # plain symlinks from now on
                            link_symlinks = False
                    os.symlink(os.readlink(s), d)
                    with contextlib.suppress(OSError, NotImplementedError):
                        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
                elif stat.S_ISREG(m):
                    count += 1
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        first = links.get(key)
                        if first is not None:
                            pending_links.append((first, d, s, st))
                            continue
                        links[key] = d
                    futures.append(
                        pool.submit(_copy_data, s, d, m, st.st_atime_ns, st.st_mtime_ns,
                                    st.st_size)
                    )
                elif stat.S_ISFIFO(m):
                    os.mkfifo(d, stat.S_IMODE(m))
                # device nodes and sockets: skipped (proot binds the host's /dev)
        for f in futures:
            f.result()
    hardlinks_ok = True
    for first, other, s, st in pending_links:
        if hardlinks_ok:
            try:
                os.link(first, other)
                continue
            except OSError as exc:
                if not link_refused(exc):
                    raise
                # Android, FUSE, SD cards ...: this name gets its own copy of the data
                hardlinks_ok = not link_refused_everywhere(exc)
        _copy_data(s, other, st.st_mode, st.st_atime_ns, st.st_mtime_ns, st.st_size)
    # directory modes and times last, deepest first (writing into a dir changes its mtime)
    dir_times.sort(key=lambda t: -t[1])
    for d, _, st in dir_times:
        mode = stat.S_IMODE(st.st_mode) | 0o700  # we must keep being able to manage it
        os.chmod(d, mode)
        with contextlib.suppress(OSError):
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
    return count


# -- parallel cp -a ---------------------------------------------------------------------------


def _gnu_cp() -> str | None:
    """GNU cp (it has ``--reflink``), or None."""
    cp = shutil.which("cp")
    if cp is None:
        return None
    try:
        res = subprocess.run([cp, "--version"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cp if "GNU coreutils" in res.stdout else None


@attrs.frozen
class _Unit:
    sources: tuple[str, ...]  # entries of one source directory
    dest_dir: str  # the destination directory they go into


def _plan(src: str, dest: str, want: int) -> tuple[list[_Unit], list[tuple[str, str]]]:
    """Split the tree into about ``want`` similar units for parallel ``cp -a``.

    Returns the units and the directories we create ourselves (src, dest), parents first.
    """
    sizes: dict[str, int] = {}

    def count(d: str) -> int:
        n = 0
        try:
            with os.scandir(d) as it:
                for e in it:
                    n += 1
                    if e.is_dir(follow_symlinks=False):
                        n += count(e.path)
        except OSError:
            pass
        sizes[d] = n
        return n

    total = count(src)
    limit = max(200, total // max(1, want))
    units: list[_Unit] = []
    made: list[tuple[str, str]] = [(src, dest)]
    todo = [(src, dest)]
    while todo:
        sdir, ddir = todo.pop(0)
        small: list[str] = []
        small_n = 0
        with os.scandir(sdir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            is_dir = e.is_dir(follow_symlinks=False)
            n = sizes.get(e.path, 0) + 1 if is_dir else 1
            if is_dir and n > limit:
                d = os.path.join(ddir, e.name)
                made.append((e.path, d))
                todo.append((e.path, d))
                continue
            small.append(e.path)
            small_n += n
            if small_n >= limit:
                units.append(_Unit(tuple(small), ddir))
                small, small_n = [], 0
        if small:
            units.append(_Unit(tuple(small), ddir))
    return units, made


async def parallel_cp(src: Path, dest: Path, cp: str, workers: int,
                      cp_options: tuple[str, ...] = ()) -> None:
    """``cp -a --reflink=auto`` of ``src`` to the new ``dest``, several processes at once.

    Hardlinks between files that land in different units become separate copies (still safe:
    only more space). A unit that cp cannot copy (e.g. device nodes as a normal user) is redone
    by the Python copier, which skips what cannot exist.
    """
    units, made = await anyio.to_thread.run_sync(_plan, str(src), str(dest), workers * 3)
    for _s, d in made:
        os.mkdir(d, 0o700)
    limiter = anyio.CapacityLimiter(workers)
    failed: list[_Unit] = []

    async def run(unit: _Unit) -> None:
        async with limiter:
            res = await anyio.run_process(
                [cp, "-a", "--reflink=auto", *cp_options, "--", *unit.sources,
                 unit.dest_dir + "/"],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        if res.returncode != 0:
            log.debug("cp failed, using the python copier", stderr=res.stderr[-300:])
            failed.append(unit)

    async with anyio.create_task_group() as tg:
        for u in units:
            tg.start_soon(run, u)
    for u in failed:
        await anyio.to_thread.run_sync(_redo_unit, u)
    # our own directories: modes and times last, deepest first
    for s, d in reversed(made):
        st = os.lstat(s)
        os.chmod(d, stat.S_IMODE(st.st_mode) | 0o700)
        with contextlib.suppress(OSError):
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def _redo_unit(unit: _Unit) -> None:
    for s in unit.sources:
        d = os.path.join(unit.dest_dir, os.path.basename(s))
        if os.path.lexists(d):
            remove_tree(Path(d))
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            tmp = Path(d)
            copy_tree(Path(s), tmp)
            os.chmod(tmp, stat.S_IMODE(st.st_mode) | 0o700)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(st.st_mode):
            _copy_data(s, d, st.st_mode, st.st_atime_ns, st.st_mtime_ns, st.st_size)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(d, stat.S_IMODE(st.st_mode))


SMALL_TREE = 2000  # entries: below this, ``auto`` copies in process (no fork/exec of cp)


def _is_small_tree(src: Path, limit: int = SMALL_TREE) -> bool:
    """At most ``limit`` entries under ``src`` (stops counting as soon as there are more)."""
    n = 0
    stack = [str(src)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    n += 1
                    if n > limit:
                        return False
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
        except OSError:
            return False
    return True


NO_LINKS = "--no-preserve=links"  # cp: every name of a hardlinked file gets its own copy


def _hardlinks_work_or_unknown(directory: Path) -> bool:
    try:
        return hardlinks_work(directory)
    except OSError:
        return True  # cannot probe (e.g. no such directory yet): cp will tell


async def _run_cp(cp: str, src: Path, dest: Path,
                  cp_options: tuple[str, ...]) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(
        [cp, "-a", "--reflink=auto", *cp_options, "--no-target-directory", "--",
         str(src), str(dest)],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"},  # English messages: we look for "hard link"
    )


async def copy_rootfs(src: Path, dest: Path, *, method: str = "auto",
                      workers: int = DEFAULT_WORKERS) -> int:
    """Copy ``src`` to the new ``dest`` with ``method`` (auto | cp | parallel | python).

    ``auto`` copies a small tree (busybox, alpine: a few hundred entries, mostly symlinks) in
    process with symlinks hardlinked (see :func:`copy_tree`); a large one with ``cp -a``.
    """
    if not src.is_dir():
        raise ContainerError(f"the image root filesystem {src} is missing.")
    if method == "auto":
        def small() -> int | None:
            if not _is_small_tree(src):
                return None
            return copy_tree(src, dest, workers=2, link_symlinks=True)

        # in a worker thread: the event loop goes on meanwhile (a build imports then)
        n = await anyio.to_thread.run_sync(small)
        if n is not None:
            return n
    cp = _gnu_cp() if method in ("auto", "cp", "parallel") else None
    # cp -a makes each further name of a hardlinked file with link(): where the filesystem
    # refuses that (Android), ask for copies instead of failing
    cp_options: tuple[str, ...] = () if cp is None or await anyio.to_thread.run_sync(
        _hardlinks_work_or_unknown, dest.parent) else (NO_LINKS,)
    if cp is not None and method == "parallel":
        await parallel_cp(src, dest, cp, CP_PROCESSES, cp_options)
        return -1
    if cp is not None:
        res = await _run_cp(cp, src, dest, cp_options)
        if res.returncode != 0 and not cp_options and b"hard link" in res.stderr:
            log.debug("cp -a could not make hard links, copying them instead",
                      stderr=res.stderr[-300:])
            await anyio.to_thread.run_sync(remove_tree, dest)
            res = await _run_cp(cp, src, dest, (NO_LINKS,))
        if res.returncode == 0:
            return -1
        # e.g. device nodes a normal user cannot create: the python copier skips those
        log.debug("cp -a failed, using the python copier", stderr=res.stderr[-300:])
        await anyio.to_thread.run_sync(remove_tree, dest)
    return int(await anyio.to_thread.run_sync(copy_tree, src, dest, workers))


async def create_rootfs(image_rootfs: Path, dest: Path, workers: int = DEFAULT_WORKERS) -> Path:
    """A private writable copy of ``image_rootfs`` at ``dest`` (created; must not exist).

    On failure nothing is left at ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        raise ContainerError(f"the container root filesystem {dest} already exists.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        await anyio.to_thread.run_sync(remove_tree, tmp)
    t0 = time.monotonic()
    try:
        n = await copy_rootfs(Path(image_rootfs), tmp, method=METHOD, workers=workers)
        os.rename(tmp, dest)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(remove_tree, tmp)
        raise
    log.debug("rootfs created", dest=str(dest), files=n, seconds=round(time.monotonic() - t0, 3))
    return dest


async def create_container_root(
    image_rootfs: Path, container_dir: Path, cache_dir: Path | None,
    env: Mapping[str, str] | None = None, *, store: Any = None,
    userns: Callable[[], bool] | None = None, durable: bool = True,
) -> OverlayLayout | None:
    """``container_dir/rootfs`` for a new container: an overlayfs root where the kernel lets a
    normal user mount one (returns its layout; nothing is copied), else a private copy of the
    image tree (returns None). ``store``: the :class:`ImageStore` to register the container
    with as a user of the image tree (so ``rmi``/gc keep it), durably unless ``durable`` is
    False (a ``--rm`` container)."""
    container_dir = Path(container_dir)
    container_dir.mkdir(parents=True, exist_ok=True)
    use = await anyio.to_thread.run_sync(
        lambda: overlay.choose(Path(image_rootfs), container_dir, cache_dir, env, userns=userns))
    if use:
        layout = overlay.OverlayLayout.for_container(Path(image_rootfs), container_dir)
        overlay.prepare_dirs(layout)
        if store is not None:
            store.add_rootfs_user(Path(image_rootfs), container_dir, durable=durable)
            if not Path(image_rootfs).is_dir():  # an rmi/gc got to it first
                store.remove_rootfs_user(Path(image_rootfs), container_dir)
                raise ContainerError(f"the image root filesystem {image_rootfs} was removed "
                                     "while the container was being created; pull it again.")
        log.debug("overlay root prepared", dest=layout.merged, lower=layout.lower)
        return layout
    await create_rootfs(Path(image_rootfs), container_dir / "rootfs")
    return None


def remove_container_root(rootfs: Path, store: Any = None, lower: str | None = None) -> None:
    """Remove ``rootfs`` and, for an overlay root, ``upper/`` and ``work/`` beside it (and the
    container's registration as a user of the image tree ``lower``)."""
    rootfs = Path(rootfs)
    cdir = rootfs.parent
    for p in (rootfs, cdir / "upper", cdir / "work", cdir / "ro"):
        if os.path.lexists(p):
            remove_tree(p)
    with contextlib.suppress(OSError):
        (cdir / overlay.PIDFILE).unlink()
    if store is not None and lower:
        store.remove_rootfs_user(Path(lower), cdir)


async def remove_rootfs(path: Path, store: Any = None, lower: str | None = None) -> None:
    await anyio.to_thread.run_sync(remove_container_root, Path(path), store, lower)


# -- paths inside a container's tree -------------------------------------------------------


def resolve_in_rootfs(rootfs: Path | overlay.Layers, path: str, follow_last: bool = True) -> Path:
    """The host path of container path ``path``, following symlinks *inside* the container's
    tree: an absolute link target is relative to the container root, never the host's, and
    ``..`` stops at the root, so the answer is always inside the tree.

    ``rootfs``: the tree, or the container's :class:`~.overlay.Layers` (overlay: upper over
    lower); a path that does not exist resolves to where it would be created (the top layer).
    Raises :class:`ContainerError` on a symlink loop."""
    layers = overlay.Layers.of(rootfs)
    parts, host = layers.resolve(path, follow_last)
    return host if host is not None else layers.top.joinpath(*parts)


def _copy_regular(src: str, dst: str) -> None:
    """``copytree``'s file copier: regular files only (a FIFO would block the copy, a device
    node is not content); symlinks never get here (``symlinks=True`` recreates them)."""
    if stat.S_ISREG(os.lstat(src).st_mode):
        shutil.copy2(src, dst, follow_symlinks=False)


def seed_volume(vol: Path, image_root: Path | overlay.Layers, target: str) -> bool:
    """Docker's copy-up: fill the new, empty volume ``vol`` with what the image has at the
    mount point ``target``. The path is resolved inside ``image_root`` (the image's tree; an
    overlay root's lower layer) with :func:`resolve_in_rootfs`, so an image whose ``/x`` is a
    symlink to ``/home/me`` or ``../../..`` cannot make us copy host files into the volume.
    Symlinks inside are copied as symlinks, special files are left out. True if copied."""
    if any(vol.iterdir()):
        return False
    try:
        src = resolve_in_rootfs(image_root, target)
    except ContainerError:  # a symlink loop: nothing to copy
        return False
    if not src.is_dir() or src.is_symlink():
        return False
    shutil.copytree(src, vol, symlinks=True, dirs_exist_ok=True, copy_function=_copy_regular)
    return True


def _main(argv: list[str]) -> int:  # pragma: no cover - a measuring aid
    """``python -m opencontainer.runtime.rootfs SRC SCRATCH [ROUNDS]``: min wall times."""
    src, scratch = Path(argv[0]), Path(argv[1])
    rounds = int(argv[2]) if len(argv) > 2 else 3
    results: dict[str, list[float]] = {}
    methods = ("cp -a (plain)", "cp", "parallel", "python")
    for r in range(rounds):
        for m in methods:
            d = scratch / f"bench-{r}-{m.split()[0]}"
            remove_tree(d)
            os.sync()
            t0 = time.monotonic()
            if m == "cp -a (plain)":
                subprocess.run(["cp", "-a", str(src), str(d)], check=True)
            else:
                anyio.run(functools.partial(copy_rootfs, src, d, method=m))
            results.setdefault(m, []).append(time.monotonic() - t0)
            remove_tree(d)
    for m, ts in results.items():
        print(f"{m:<16} min {min(ts):.3f} s   runs {' '.join(f'{t:.2f}' for t in ts)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
