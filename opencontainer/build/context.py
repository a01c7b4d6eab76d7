"""The build context and what COPY/ADD take from it (or from a stage's or an image's tree).

A COPY becomes a list of :class:`Entry` (the layer's tar entries, in order) from which both the
cache checksum (content, not mtimes: BuildKit's rule) and the layer are made.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ..errors import BuildError
from ..image.commit import HashingWriter, gzip_writer
from .dockerignore import Matcher, read_dockerignore

READ = 1 << 20
GLOB_CHARS = frozenset("*?[")


@attrs.frozen
class Entry:
    """One tar entry of a COPY/ADD layer: ``path`` in the image (no leading ``/``)."""

    path: str
    kind: str  # file | dir | symlink
    mode: int
    uid: int = 0
    gid: int = 0
    host: Path | None = None  # a file's content on the host
    data: bytes | None = None  # or its content in memory
    link: str = ""
    mtime: float = 0.0
    tar_member: tuple[Path, str] | None = None  # (archive, member name): ADD's extraction

    def checksum_line(self) -> bytes:
        return f"{self.path}\0{self.kind}\0{self.mode:o}\0{self.uid}:{self.gid}\0{self.link}\0" \
            .encode()


class Source:
    """A tree COPY reads from: the context (with .dockerignore) or a stage's / image's root."""

    def __init__(self, root: Path, matcher: Matcher | None = None, *,
                 what: str = "the build context") -> None:
        self.root = Path(root)
        self.matcher = matcher or Matcher([])
        self.what = what

    @classmethod
    def context(cls, root: Path, dockerfile: Path | None = None) -> Source:
        return cls(root, Matcher(read_dockerignore(root, dockerfile)))

    def included(self, rel: str) -> bool:
        return not self.matcher.excluded(rel)

    def _clean(self, src: str) -> str:
        cleaned = posixpath.normpath("/" + src).lstrip("/")
        return "" if cleaned == "." else cleaned

    def expand(self, src: str) -> list[str]:
        """The relative paths ``src`` names (a glob: every match, sorted)."""
        rel = self._clean(src)
        if not (GLOB_CHARS & set(rel)):
            if not os.path.lexists(self.root / rel) or (rel and not self.included(rel)):
                raise BuildError(f'"{src}" not found in {self.what}')
            return [rel]
        found = [""]
        for part in rel.split("/"):
            nxt: list[str] = []
            for base in found:
                here = self.root / base if base else self.root
                if GLOB_CHARS & set(part):
                    try:
                        names = sorted(os.listdir(here))
                    except OSError:
                        continue
                    nxt += [f"{base}/{n}" if base else n for n in names
                            if fnmatch.fnmatchcase(n, part)]
                else:
                    cand = f"{base}/{part}" if base else part
                    if os.path.lexists(self.root / cand):
                        nxt.append(cand)
            found = nxt
        found = [f for f in found if self.included(f)]
        if not found:
            raise BuildError(f'no source files were specified: "{src}" matches nothing in '
                             f"{self.what}")
        return found

    def walk(self, rel_dir: str) -> list[str]:
        """The included paths below ``rel_dir`` (relative to it, parents first)."""
        out: list[str] = []
        base = self.root / rel_dir if rel_dir else self.root

        def visit(sub: str) -> None:
            here = base / sub if sub else base
            try:
                names = sorted(os.listdir(here))
            except OSError:
                return
            for name in names:
                s = f"{sub}/{name}" if sub else name
                full_rel = f"{rel_dir}/{s}" if rel_dir else s
                full = here / name
                is_dir = full.is_dir() and not full.is_symlink()
                if not self.included(full_rel):
                    if is_dir and self.matcher.may_include_below(full_rel):
                        visit(s)
                    continue
                out.append(s)
                if is_dir:
                    visit(s)

        visit("")
        return out


def entry_of(host: Path, path: str, *, uid: int, gid: int, chmod: int | None) -> Entry | None:
    st = os.lstat(host)
    if stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    elif stat.S_ISLNK(st.st_mode):
        return Entry(path, "symlink", 0o777, uid, gid, link=os.readlink(host),
                     mtime=st.st_mtime)
    else:
        return None  # sockets, fifos, devices: not copied
    mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
    return Entry(path, kind, mode, uid, gid, host=host if kind == "file" else None,
                 mtime=st.st_mtime)


def checksum(entries: Sequence[Entry]) -> str:
    """The content checksum of a COPY: names, kinds, modes, owners and file contents."""
    h = hashlib.sha256()
    for e in entries:
        h.update(e.checksum_line())
        if e.data is not None:
            h.update(hashlib.sha256(e.data).digest())
        elif e.host is not None:
            fh_hash = hashlib.sha256()
            with open(e.host, "rb") as fh:
                while chunk := fh.read(READ):
                    fh_hash.update(chunk)
            h.update(fh_hash.digest())
        elif e.tar_member is not None:
            archive, member = e.tar_member
            h.update(f"{archive.stat().st_size}:{archive.stat().st_mtime_ns}:{member}".encode())
    return "sha256:" + h.hexdigest()


def archive_checksum(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            while chunk := fh.read(READ):
                h.update(chunk)
    return h.hexdigest()




def write_entries(entries: Sequence[Entry], out: io.BufferedWriter) -> tuple[str, str, int]:
    """``entries`` as a gzip layer; (digest, diff_id, compressed size)."""
    compressed = HashingWriter(out)
    archives: dict[Path, tarfile.TarFile] = {}
    try:
        with gzip_writer(compressed) as gz:
            plain = HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|",  # type: ignore[call-overload]
                              format=tarfile.PAX_FORMAT) as tf:
                for e in entries:
                    info = tarfile.TarInfo(e.path)
                    info.mode, info.uid, info.gid = e.mode, e.uid, e.gid
                    info.mtime = int(e.mtime)
                    info.uname = info.gname = ""
                    if e.kind == "dir":
                        info.type = tarfile.DIRTYPE
                        tf.addfile(info)
                    elif e.kind == "symlink":
                        info.type, info.linkname = tarfile.SYMTYPE, e.link
                        tf.addfile(info)
                    elif e.data is not None:
                        info.size = len(e.data)
                        tf.addfile(info, io.BytesIO(e.data))
                    elif e.host is not None:
                        info.size = os.path.getsize(e.host)
                        with open(e.host, "rb") as fh:
                            tf.addfile(info, fh)
                    elif e.tar_member is not None:
                        archive, name = e.tar_member
                        src = archives.get(archive)
                        if src is None:
                            src = archives[archive] = tarfile.open(archive)  # noqa: SIM115
                        member = src.getmember(name)
                        info.size = member.size
                        fobj = src.extractfile(member)
                        tf.addfile(info, fobj)
    finally:
        for a in archives.values():
            a.close()
    return compressed.digest, plain.digest, compressed.count


def archive_entries(archive: Path, dest: str, *, uid: int | None, gid: int | None
                    ) -> list[Entry] | None:
    """ADD's local archive extraction: the members of ``archive`` under ``dest`` (None: not a
    tar archive, so it is copied as a file)."""
    try:
        if not tarfile.is_tarfile(archive):
            return None
        tf = tarfile.open(archive)  # noqa: SIM115
    except (OSError, tarfile.TarError):
        return None
    out: list[Entry] = []
    with tf:
        for m in tf.getmembers():
            name = posixpath.normpath("/" + m.name).lstrip("/")
            if not name or name == ".":
                continue
            path = posixpath.join(dest, name).lstrip("/")
            u = m.uid if uid is None else uid
            g = m.gid if gid is None else gid
            if m.isdir():
                out.append(Entry(path, "dir", m.mode & 0o7777, u, g, mtime=m.mtime))
            elif m.issym():
                out.append(Entry(path, "symlink", 0o777, u, g, link=m.linkname, mtime=m.mtime))
            elif m.isreg():
                out.append(Entry(path, "file", m.mode & 0o7777, u, g, mtime=m.mtime,
                                 tar_member=(archive, m.name)))
    return out


__all__ = ["Entry", "Source", "archive_entries", "checksum", "entry_of", "write_entries"]
