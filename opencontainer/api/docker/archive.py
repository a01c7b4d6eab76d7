"""``/containers/{id}/archive`` (``docker cp``, the SDK's ``get_archive``/``put_archive``):
HEAD stats a path (the ``X-Docker-Container-Path-Stat`` header: base64 of docker's JSON), GET
sends it as a tar archive, PUT extracts a tar archive into a folder.

Paths are container paths, resolved as ``opencontainer cp`` resolves them: bind mounts and
volumes first, then the container's tree with its symlinks followed inside it (never out to
the host's files); an overlay root is read and written through its merged view.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from .common import bad_request, not_found
from .containers import find

STAT_HEADER = "X-Docker-Container-Path-Stat"

# Go's os.FileMode bits
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_mode(st: os.stat_result) -> int:
    """A file's mode as Go's ``os.FileMode`` (what docker's path stat carries)."""
    m = st.st_mode
    mode = stat.S_IMODE(m) & 0o777
    if stat.S_ISDIR(m):
        mode |= _GO_DIR
    elif stat.S_ISLNK(m):
        mode |= _GO_SYMLINK
    elif stat.S_ISFIFO(m):
        mode |= _GO_PIPE
    elif stat.S_ISSOCK(m):
        mode |= _GO_SOCKET
    elif stat.S_ISCHR(m):
        mode |= _GO_DEVICE | _GO_CHARDEV
    elif stat.S_ISBLK(m):
        mode |= _GO_DEVICE
    if m & stat.S_ISUID:
        mode |= _GO_SETUID
    if m & stat.S_ISGID:
        mode |= _GO_SETGID
    if m & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _query_path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise bad_request("path is required: /containers/{id}/archive?path=PATH.")
    return path


@contextlib.contextmanager
def _located(entry: Any, path: str) -> Iterator[Path]:
    """The host location of container path ``path`` (which may not exist)."""
    from ...cli.containers import _container_path, _container_root, _spec_and_root

    spec, rootfs = _spec_and_root(entry)
    with _container_root(spec, rootfs) as root:
        yield _container_path(spec, path, root)


def path_stat(where: Path, path: str) -> dict[str, Any]:
    st = os.lstat(where)
    target = os.readlink(where) if stat.S_ISLNK(st.st_mode) else ""
    name = Path(path.rstrip("/")).name or "/"
    return {"name": name, "size": st.st_size, "mode": go_mode(st),
            "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace(
                "+00:00", "Z"),
            "linkTarget": target}


def _stat_header(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def _stat_blocking(entry: Any, path: str) -> dict[str, Any] | None:
    with _located(entry, path) as where:
        if not os.path.lexists(where):
            return None
        return path_stat(where, path)


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0  # the container's user: root (proot's fake root)
    info.uname = info.gname = "root"
    return info


def _tar_blocking(entry: Any, path: str, out: IO[bytes]) -> dict[str, Any] | None:
    """Write ``path`` as a tar archive to ``out`` (its entries named after the path's last
    part, ``.`` for ``DIR/.``: docker's); its stat, or None when it does not exist."""
    with _located(entry, path) as where:
        if not os.path.lexists(where):
            return None
        data = path_stat(where, path)
        arcname = "." if path.rstrip("/").endswith("/.") or path == "." else (
            Path(path.rstrip("/")).name or ".")
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.add(str(where), arcname=arcname, recursive=True, filter=_reset_owner)
        return data


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """An entry lands inside ``dest``: no ``..``, no absolute name, no path through a
    symlink that leads out (the host's files are never written), no hard link to outside."""
    name = member.name.lstrip("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"refusing the archive entry {member.name!r}: it leaves the "
                         "destination.")
    member.name = "/".join(parts) or "."
    # no realpath: ``dest`` may be under /proc/PID/root (a running native container), a magic
    # link that realpath would resolve on the host; an entry under a symlink is refused
    cur = dest
    for part in parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise ValueError(f"refusing the archive entry {member.name!r}: it leaves the "
                             "destination (through a symbolic link).")
    if member.islnk():
        link = [p for p in member.linkname.lstrip("/").split("/") if p not in ("", ".")]
        if ".." in link:
            raise ValueError(f"refusing the hard link {member.name!r}: its target leaves "
                             "the destination.")
        member.linkname = "/".join(link)


def _extract_blocking(entry: Any, path: str, archive: IO[bytes],
                      no_overwrite_dir_non_dir: bool) -> None:
    from ...errors import ContainerError

    with _located(entry, path) as where:
        if not os.path.lexists(where):
            raise ContainerError(f"no such container path: {path}")
        if not where.is_dir():
            raise ValueError("extraction point is not a directory")
        try:
            with tarfile.open(fileobj=archive, mode="r|*") as tar:
                for member in tar:
                    if no_overwrite_dir_non_dir:
                        dest = where / member.name
                        if dest.is_dir() and not member.isdir():
                            raise ValueError(f"cannot overwrite directory {member.name} "
                                             "with non-directory")
                        if dest.exists() and not dest.is_dir() and member.isdir():
                            raise ValueError(f"cannot overwrite non-directory {member.name} "
                                             "with directory")
                    _check_member(member, where)
                    if member.isdev():
                        continue  # device nodes cannot be made without privileges
                    tar.extract(member, str(where), set_attrs=not member.issym())
        except (tarfile.TarError, OSError) as exc:
            raise ValueError(f"cannot extract the archive: {exc}") from None


async def head(request: web.Request) -> web.Response:
    entry = await find(request)
    path = _query_path(request)
    data = await asyncio.to_thread(_stat_blocking, entry, path)
    if data is None:
        raise not_found(f"Could not find the file {path} in container {entry.name}")
    return web.Response(status=200, headers={STAT_HEADER: _stat_header(data),
                                             "Content-Type": "application/json"})


async def get(request: web.Request) -> web.StreamResponse:
    entry = await find(request)
    path = _query_path(request)
    with tempfile.TemporaryFile(prefix="oc-archive-") as tmp:
        data = await asyncio.to_thread(_tar_blocking, entry, path, tmp)
        if data is None:
            raise not_found(f"Could not find the file {path} in container {entry.name}")
        size = tmp.tell()
        tmp.seek(0)
        resp = web.StreamResponse(headers={STAT_HEADER: _stat_header(data),
                                           "Content-Type": "application/x-tar"})
        resp.content_length = size
        await resp.prepare(request)
        while chunk := await asyncio.to_thread(tmp.read, 1 << 20):
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def put(request: web.Request) -> web.Response:
    from ...errors import ContainerError

    entry = await find(request)
    path = _query_path(request)
    no_over = (request.query.get("noOverwriteDirNonDir") or "").lower() in ("1", "true")
    with tempfile.TemporaryFile(prefix="oc-archive-") as tmp:
        while chunk := await request.content.read(1 << 20):
            await asyncio.to_thread(tmp.write, chunk)
        tmp.seek(0)
        if request.headers.get("Content-Encoding", "") in ("gzip", "x-gzip"):
            import gzip

            raw: IO[bytes] = gzip.GzipFile(fileobj=tmp)  # type: ignore[assignment]
        else:
            raw = tmp
        try:
            await asyncio.to_thread(_extract_blocking, entry, path, raw, no_over)
        except ContainerError:
            raise not_found(f"Could not find the file {path} in container "
                            f"{entry.name}") from None
        except ValueError as exc:
            raise bad_request(str(exc)) from None
    return web.Response(status=200)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("HEAD", "/containers/{id}/archive", head),
        ("GET", "/containers/{id}/archive", get),
        ("PUT", "/containers/{id}/archive", put),
    ]
