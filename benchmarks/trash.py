"""Deferred deletion: a side's output is renamed out of the way, and deleted once at the end.

On ext4 without a journal the kernel will not reuse an inode freed in the last 60 s (longer
while its inode-table block is dirty): ``find_inode_bit()`` checks ``recently_deleted()`` for
every free inode bit of the group, so right after ``rm -rf`` of an 11k-file tree each new file
costs a scan. Deleting one side's tree between measurements therefore slows down whichever
side comes next (``cp -a`` of the unpacked image: 0.5 s -> 7-8 s). A rename frees no inode, so
:meth:`Trash.discard` moves the tree into ``<workdir>/.trash/`` and :meth:`Trash.empty` deletes
it all after the last measurement. When the work dir's filesystem has less than
``min_free`` bytes left (or the rename fails) the tree is deleted at once and :meth:`notes`
says so.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import structlog

from opencontainer.paths import remove_tree

log = structlog.get_logger()

MIN_FREE = 3 * 10**9  # bytes; below this, delete at once instead of filling the disk


def rmtree(path: Path) -> None:
    """Remove a tree even when it holds read-only or unreadable dirs (best effort)."""
    remove_tree(path, ignore_errors=True)


def free_bytes(path: Path) -> int:
    """Free bytes of the filesystem holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


@attrs.define
class Trash:
    """A per-run trash directory on the work dir's filesystem."""

    root: Path
    min_free: int = MIN_FREE
    _seq: int = 0
    _moved: int = 0
    # trees deleted at once: (name, reason)
    _immediate: list[tuple[str, str]] = attrs.Factory(list)

    @property
    def moved(self) -> int:
        """How many trees were renamed into the trash so far."""
        return self._moved

    def discard(self, path: Path) -> None:
        """Move ``path`` into the trash; delete it now when space is short or rename fails."""
        if not os.path.lexists(path):
            return
        free = free_bytes(self.root)
        if free < self.min_free:
            self._delete_now(path, f"free space {free / 1e9:.1f} GB < {self.min_free / 1e9:.1f} GB")
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.rename(path, self._slot(path.name))
        except OSError as exc:
            self._delete_now(path, f"rename failed: {exc.strerror or exc}")
            return
        self._moved += 1

    def empty(self) -> None:
        """Delete everything in the trash (call once, after the last measurement)."""
        if os.path.lexists(self.root):
            log.info("bench.trash_empty", path=str(self.root), trees=self._moved)
            rmtree(self.root)

    def notes(self) -> list[str]:
        """One note per reason trees were deleted at once (none when all were deferred)."""
        by_reason: dict[str, list[str]] = {}
        for name, reason in self._immediate:
            by_reason.setdefault(reason, []).append(name)
        out = []
        for reason, names in by_reason.items():
            shown = ", ".join(dict.fromkeys(names))
            out.append(f"trash: deletion was not deferred for {len(names)} tree(s) ({shown}): "
                       f"{reason}; the side measured next may be slowed by the deletion")
        return out

    def _slot(self, name: str) -> Path:
        while True:
            self._seq += 1
            dest = self.root / f"{self._seq:04d}-{name}"
            if not os.path.lexists(dest):
                return dest

    def _delete_now(self, path: Path, reason: str) -> None:
        log.warning("bench.trash_delete_now", path=str(path), reason=reason)
        self._immediate.append((path.name, reason))
        rmtree(path)


def settle() -> None:
    """Write back dirty data now, so one side's writes are not flushed during the next side."""
    os.sync()


def file_creation_time(workdir: Path, trash: Trash, files: int = 2000) -> float:
    """Seconds to create ``files`` empty files in a new directory of ``workdir`` (the
    directory then goes to the trash: deleting it now would be what we are measuring)."""
    d = workdir / f".fs-probe-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(files):
        fd = os.open(d / f"f{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
        os.close(fd)
    took = time.perf_counter() - t0
    trash.discard(d)
    return took


def wait_for_quiet_filesystem(
    workdir: Path, trash: Trash, *, limit: float = 0.15, interval: float = 20.0,
    max_wait: float = 420.0, probe: Callable[[Path, Trash], float] = file_creation_time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until creating files in ``workdir`` is fast again.

    A big ``rm -rf`` shortly before the run (the previous run's trash, a test suite) leaves a
    journal-less ext4 slow at creating inodes for minutes (``recently_deleted``, see the
    README): every side would then measure that. Returns (seconds waited, last probe time).
    """
    waited = 0.0
    took = probe(workdir, trash)
    while took > limit and waited < max_wait:
        sleep(interval)
        waited += interval
        took = probe(workdir, trash)
    return waited, took
