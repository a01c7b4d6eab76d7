"""Where OpenContainer keeps things, and how it writes them safely.

Global state (image store, caches, standalone containers) lives under ``OPENCONTAINER_HOME`` when
that is set — every byte of it — and otherwise in the XDG base directories:

- data:   ``$XDG_DATA_HOME/opencontainer``   (default ``~/.local/share/opencontainer``)
- cache:  ``$XDG_CACHE_HOME/opencontainer``  (default ``~/.cache/opencontainer``)
- config: ``$XDG_CONFIG_HOME/opencontainer`` (default ``~/.config/opencontainer``)
- state:  ``$XDG_STATE_HOME/opencontainer``  (default ``~/.local/state/opencontainer``)

Per-project state sits in a ``.containers/`` folder beside the compose file (one sub-folder per
container with ``rootfs/`` and ``run.sh``, plus ``volumes/``), or wherever
``OPENCONTAINER_PROJECT_STATE`` / ``x-opencontainer.state_dir`` points.

This module only computes paths; nothing is created until someone asks with ``ensure()``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

from .errors import ConfigError, ProotError


def _xdg(env: Mapping[str, str], var: str, default: str) -> Path:
    value = env.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return Path(env.get("HOME") or os.path.expanduser("~")) / default


@attrs.frozen
class Paths:
    """Global directories. Build with :meth:`from_env`; pass around, never a global."""

    data: Path
    cache: Path
    config: Path
    state: Path
    runtime: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        home = env.get("OPENCONTAINER_HOME")
        if home:
            root = Path(home).expanduser().absolute()
            return cls(
                data=root / "data",
                cache=root / "cache",
                config=root / "config",
                state=root / "state",
                runtime=root / "run",
            )
        runtime_dir = env.get("XDG_RUNTIME_DIR")
        state = _xdg(env, "XDG_STATE_HOME", ".local/state") / "opencontainer"
        return cls(
            data=_xdg(env, "XDG_DATA_HOME", ".local/share") / "opencontainer",
            cache=_xdg(env, "XDG_CACHE_HOME", ".cache") / "opencontainer",
            config=_xdg(env, "XDG_CONFIG_HOME", ".config") / "opencontainer",
            state=state,
            runtime=(Path(runtime_dir) / "opencontainer")
            if runtime_dir and os.path.isdir(runtime_dir)
            else state / "run",
        )

    # -- the image store -------------------------------------------------------------------
    @property
    def store(self) -> Path:
        """Content-addressed image store (blobs, refs, unpacked layers)."""
        return self.data / "store"

    @property
    def containers(self) -> Path:
        """Standalone containers (``opencontainer run``), one folder each."""
        return self.data / "containers"

    @property
    def projects_index(self) -> Path:
        """JSON file: compose project name -> project state directory."""
        return self.state / "projects.json"

    @staticmethod
    def ensure(path: Path, mode: int = 0o755) -> Path:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        return path


def project_state_dir(project_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """The ``.containers/`` folder of a compose project (overridable by environment)."""
    env = os.environ if env is None else env
    override = env.get("OPENCONTAINER_PROJECT_STATE")
    if override:
        return Path(override).expanduser().absolute()
    return project_dir / ".containers"


def proot_binary(env: Mapping[str, str] | None = None) -> Path:
    """The proot to use: ``OPENCONTAINER_PROOT``, else ``proot`` on ``PATH``.

    Raises :class:`ProotError` with what to do when there is none.
    """
    env = os.environ if env is None else env
    named = env.get("OPENCONTAINER_PROOT")
    if named:
        path = Path(named).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ProotError(
                f"OPENCONTAINER_PROOT names {named}, which is not an executable file."
            )
        return path.absolute()
    found = shutil.which("proot", path=env.get("PATH"))
    if not found:
        raise ProotError(
            "proot is not installed: install it with 'sudo apt install proot' "
            "(Termux: 'pkg install proot') or point OPENCONTAINER_PROOT at a proot binary."
        )
    return Path(found)


def _partial(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path`` (mode 0600), as ``tempfile.mkstemp`` makes one,
    without importing tempfile and random (~1.5 ms of every command that writes)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.partial")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                           0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name beside {path}")


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644, *,
                 durable: bool = True, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.

    temp file in the same directory -> fsync -> rename over -> fsync the directory.
    ``durable=False`` skips both fsyncs (still atomic for readers): for files that are
    derived from others and written again before they are used, where a crash can only lose
    what will be regenerated (two fsyncs cost ~0.4 ms on an idle disk, tens of ms behind
    other writeback). ``sync_dir=False`` (with ``durable``) syncs the file but not the
    rename: after a crash the path holds the old or the new data, whole, on any filesystem;
    only the change may be lost.
    """
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _partial(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable and sync_dir:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[int]:
    """An exclusive ``flock`` on ``path`` (created if missing), held for the ``with`` block."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError as exc:
            from .errors import StateError

            raise StateError(f"{path} is locked by another opencontainer process.") from exc
        yield fd
    finally:
        os.close(fd)



def make_tree_writable(path: Path | str) -> None:
    """Give ourselves rwx on ``path`` and every directory below it (not through symlinks):
    unpacked images, containers and overlayfs' ``work/work`` (mode 000) hold directories we
    could otherwise neither list nor empty."""
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for top, dirs, _ in os.walk(path):
        for d in dirs:
            p = os.path.join(top, d)
            if not os.path.islink(p):
                with contextlib.suppress(OSError):
                    os.chmod(p, 0o700)


def remove_tree(path: Path | str, *, ignore_errors: bool = False) -> None:
    """``rm -rf path`` that also copes with read-only and unreadable directories."""
    p = os.fspath(path)
    try:
        if not os.path.lexists(p):
            return
        if not os.path.isdir(p) or os.path.islink(p):
            os.unlink(p)
            return
        try:
            shutil.rmtree(p)
        except OSError:
            make_tree_writable(p)
            try:
                shutil.rmtree(p)
            except PermissionError:
                # files a native container gave to a subordinate uid: remove them as root
                # of a user namespace where those ids are mapped
                from .runtime.idmap import remove_tree as remove_mapped

                if not remove_mapped(Path(p)):
                    raise
    except OSError:
        if not ignore_errors:
            raise

# ``link()``/``linkat()`` answers that mean "this filesystem (or policy) will not give you a hard
# link here", so a copy must do: Android 6+ app data (SELinux: EACCES), some FUSE and SD-card
# filesystems (EPERM, ENOTSUP), another filesystem (EXDEV), an inode's link count at its limit
# (EMLINK: only that inode, see :func:`link_refused_everywhere`).
LINK_REFUSED_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
)


def link_refused(exc: OSError) -> bool:
    """``exc`` (from ``os.link``) says a hard link cannot be made here: copy instead."""
    return exc.errno in LINK_REFUSED_ERRNOS


def link_refused_everywhere(exc: OSError) -> bool:
    """``exc`` says no later ``link()`` in this tree will work either (EMLINK is per inode)."""
    return exc.errno in LINK_REFUSED_ERRNOS and exc.errno != errno.EMLINK


def hardlinks_work(directory: Path | str) -> bool:
    """Whether ``link()`` works inside ``directory`` (probed with a scratch file there, removed
    again; a few syscalls). False when the filesystem or policy refuses, as on Android."""
    fd, first = _partial(Path(directory) / "oc-linkprobe")
    os.close(fd)
    second = first + ".2"
    try:
        os.link(first, second)
    except OSError as exc:
        if link_refused(exc):
            return False
        raise
    finally:
        for p in (second, first):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    return True


def validate_name(kind: str, name: str) -> str:
    """Container/volume names as docker allows them: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
        raise ConfigError(
            f"invalid {kind} name {name!r}: only letters, digits, '_', '.' and '-' are allowed, "
            "and it must start with a letter or digit."
        )
    return name
