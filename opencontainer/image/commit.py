"""A container's changes: ``diff`` (docker's ``A``/``C``/``D`` lines) and ``commit`` (those changes
as a new gzip layer on top of the image's layers, a new config, stored as an image).

The change set comes from where the container's writes are:

* an overlay root: its ``upper/`` dir *is* the change set. A whiteout (a ``0/0`` character
  device) is a deletion (``D``, an OCI ``.wh.<name>`` entry in the layer); a directory with
  ``user.overlay.opaque=y`` hides everything below it in the image (an OCI ``.wh..wh..opq``
  entry; the image's entries there are ``D``); anything else is ``C`` where the image has the
  path and ``A`` where it does not.
* a copied root: the tree is compared with the image's tree (type, mode, size, mtime, link
  target); a directory with a change below it is ``C``, as in docker.

What the runtime binds over the tree (``/proc``, ``/sys``, ``/dev``, ``/etc/hosts``,
``/etc/hostname``, ``/etc/resolv.conf`` and the container's mount points) is left out, as
docker leaves out its init layer and volumes. Ownership is not kept (the store's trees are
rootless): every entry of the layer belongs to root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
import attrs

from ..errors import ContainerError, ImageNotFound
from ..logs import logger
from .store import ImageRecord, ImageStore, LayerInfo, flock_async, remove_tree

log = logger(__name__)

ALWAYS_SKIPPED = ("/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OPAQUE_XATTR = "user.overlay.opaque"
READ = 1 << 20


@attrs.frozen
class Change:
    """One line of ``diff``: ``kind`` is ``A`` (added), ``C`` (changed) or ``D`` (deleted)."""

    kind: str
    path: str  # absolute container path
    host: Path | None = None  # where the entry is (None for D)
    opaque: bool = False  # an opaque directory (overlay): the image's entries below are gone

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _wanted(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _lookup(root: Path, parts: Sequence[str]) -> Path | None:
    """``parts`` in the plain tree ``root`` without following symlinks (None: not there)."""
    cur = root
    for i, part in enumerate(parts):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except OSError:
            return None
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            return None
    return cur


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def overlay_changes(upper: Path, lower: Path, skip: Iterable[str] = ()) -> list[Change]:
    """The changes recorded in an overlay ``upper`` dir over the image tree ``lower``, in tree
    order (a directory before what is in it)."""
    skipped = set(ALWAYS_SKIPPED) | set(skip)
    out: list[Change] = []

    def walk(parts: list[str], hidden: bool) -> None:
        here = upper.joinpath(*parts)
        names = _listdir(here)
        for name in names:
            sub = [*parts, name]
            path = "/" + "/".join(sub)
            if path in skipped:
                continue
            host = here / name
            try:
                st = os.lstat(host)
            except OSError:
                continue
            below = None if hidden else _lookup(lower, sub)
            if _is_whiteout(st):
                if below is not None:
                    out.append(Change("D", path))
                continue
            if not _wanted(st):
                continue
            kind = "C" if below is not None else "A"
            if stat.S_ISDIR(st.st_mode):
                opaque = _is_opaque(host)
                out.append(Change(kind, path, host, opaque=opaque))
                if opaque and below is not None and below.is_dir() and not below.is_symlink():
                    present = set(_listdir(host))
                    for gone in _listdir(below):
                        if gone not in present:
                            out.append(Change("D", f"{path}/{gone}"))
                walk(sub, hidden or opaque or below is None)
            else:
                out.append(Change(kind, path, host))

    walk([], False)
    return out


def _same(a: os.stat_result, b: os.stat_result, pa: Path, pb: Path) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    if stat.S_ISDIR(a.st_mode):
        return a.st_mtime_ns == b.st_mtime_ns
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def copy_changes(tree: Path, base: Path, skip: Iterable[str] = ()) -> list[Change]:
    """The changes of the copied root ``tree`` against the image tree ``base``."""
    skipped = set(ALWAYS_SKIPPED) | set(skip)

    def added(parts: list[str]) -> Iterator[Change]:
        here = tree.joinpath(*parts)
        for name in _listdir(here):
            sub = [*parts, name]
            host = here / name
            try:
                st = os.lstat(host)
            except OSError:
                continue
            if not _wanted(st) or "/" + "/".join(sub) in skipped:
                continue
            yield Change("A", "/" + "/".join(sub), host)
            if stat.S_ISDIR(st.st_mode):
                yield from added(sub)

    def walk(parts: list[str]) -> list[Change]:
        out: list[Change] = []
        new_dir, old_dir = tree.joinpath(*parts), base.joinpath(*parts)
        new_names, old_names = _listdir(new_dir), _listdir(old_dir)
        for name in sorted(set(new_names) | set(old_names)):
            sub = [*parts, name]
            path = "/" + "/".join(sub)
            if path in skipped:
                continue
            host, old = new_dir / name, old_dir / name
            if name not in new_names:
                with contextlib.suppress(OSError):
                    if _wanted(os.lstat(old)):
                        out.append(Change("D", path))
                continue
            try:
                st = os.lstat(host)
            except OSError:
                continue
            if not _wanted(st):
                continue
            try:
                ost: os.stat_result | None = os.lstat(old) if name in old_names else None
            except OSError:
                ost = None
            if ost is None or stat.S_IFMT(ost.st_mode) != stat.S_IFMT(st.st_mode):
                # new, or another kind of entry (it replaces the old one when applied)
                out.append(Change("A" if ost is None or not _wanted(ost) else "C", path, host))
                if stat.S_ISDIR(st.st_mode):
                    out.extend(added(sub))
                continue
            if stat.S_ISDIR(st.st_mode):
                inner = walk(sub)
                if inner or not _same(st, ost, host, old):
                    out.append(Change("C", path, host))
                out.extend(inner)
            elif not _same(st, ost, host, old):
                out.append(Change("C", path, host))
        return out

    return walk([])


Snapshot = dict[str, dict[str, tuple[Any, ...]]]


def _stamp(path: str, st: os.stat_result) -> tuple[Any, ...]:
    """What tells an entry changed: kind and mode; a symlink's target (its ctime moves with
    the link count of a tree's hardlinked symlinks); a file's or directory's size, inode,
    mtime and ctime (a write moves the ctime, even one that puts the mtime back)."""
    if stat.S_ISLNK(st.st_mode):
        return (st.st_mode, os.readlink(path))
    return (st.st_mode, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def snapshot(root: Path, skip: Iterable[str] = ()) -> Snapshot:
    """Every directory of the plain tree ``root`` (``""`` is the root, else ``/a/b``) with
    its entries' :func:`_stamp`: what :func:`snapshot_changes` compares with afterwards."""
    out: Snapshot = {}
    snapshot_into(root, "", set(ALWAYS_SKIPPED) | set(skip), out)
    return out


def snapshot_into(root: Path, top: str, skipped: set[str], out: Snapshot) -> None:
    """:func:`snapshot` of the directory ``top`` of ``root`` and everything below it, into
    ``out``."""
    stack = [top]
    while stack:
        rel = stack.pop()
        here: dict[str, tuple[Any, ...]] = {}
        out[rel] = here
        try:
            it = os.scandir(str(root) + rel if rel else root)
        except OSError:
            continue
        with it:
            for e in it:
                path = f"{rel}/{e.name}"
                if path in skipped:
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                    here[e.name] = _stamp(e.path, st)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)


def snapshot_changes(root: Path, before: Snapshot, skip: Iterable[str] = (),
                     after: Snapshot | None = None) -> list[Change]:
    """The changes made in the plain tree ``root`` since :func:`snapshot` took ``before``, in
    tree order, as :func:`copy_changes` finds them against a copy: a new or replaced entry
    is ``A``/``C`` with everything below it, a gone one ``D``, a directory with a change
    below it ``C``. ``after``, when given (empty), is filled with what :func:`snapshot`
    would return now: the walk stats every entry anyway (a build's next RUN compares with
    it instead of taking a snapshot of its own)."""
    skipped = set(ALWAYS_SKIPPED) | set(skip)
    base = str(root)

    def scan(rel: str) -> list[tuple[str, str, os.stat_result]]:
        """The entries of the directory ``rel``, sorted: name, host path, lstat (one
        scandir, no Path per entry: ~2x faster on a busybox tree than listdir + lstat)."""
        out: list[tuple[str, str, os.stat_result]] = []
        try:
            it = os.scandir(base + rel if rel else base)
        except OSError:
            return out
        with it:
            for e in it:
                try:
                    out.append((e.name, e.path, e.stat(follow_symlinks=False)))
                except OSError:  # gone since it was listed
                    continue
        out.sort(key=lambda t: t[0])
        return out

    def seen(rel: str) -> dict[str, tuple[Any, ...]] | None:
        if after is None:
            return None
        here: dict[str, tuple[Any, ...]] = {}
        after[rel] = here
        return here

    def added(rel: str) -> Iterator[Change]:
        here = seen(rel)
        for name, host, st in scan(rel):
            path = f"{rel}/{name}"
            if path in skipped:
                continue
            if here is not None:
                here[name] = _stamp(host, st)
            if not _wanted(st):  # a device, a fifo: never a directory
                continue
            yield Change("A", path, Path(host))
            if stat.S_ISDIR(st.st_mode):
                yield from added(path)

    def walk(rel: str) -> list[Change]:
        out: list[Change] = []
        here = seen(rel)
        old = before.get(rel, {})
        now = {name: (host, st) for name, host, st in scan(rel)}
        for name in sorted(now.keys() | old.keys()):
            path = f"{rel}/{name}"
            if path in skipped:
                continue
            was = old.get(name)
            found = now.get(name)
            if found is None:
                if was is not None and _wanted_mode(was[0]):
                    out.append(Change("D", path))
                continue
            host, st = found
            stamp = _stamp(host, st)
            if here is not None:
                here[name] = stamp
            if not _wanted(st):  # a device, a fifo: never a directory
                continue
            if was is None or stat.S_IFMT(was[0]) != stat.S_IFMT(st.st_mode):
                out.append(Change("A" if was is None or not _wanted_mode(was[0]) else "C",
                                  path, Path(host)))
                if stat.S_ISDIR(st.st_mode):
                    out.extend(added(path))
                continue
            same = stamp == was
            if stat.S_ISDIR(st.st_mode):
                inner = walk(path)
                if inner or not same:
                    out.append(Change("C", path, Path(host)))
                out.extend(inner)
            elif not same:
                out.append(Change("C", path, Path(host)))
        return out

    return walk("")


def _wanted_mode(mode: int) -> bool:
    return stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def diff_lines(changes: Iterable[Change]) -> list[str]:
    """docker's ``diff`` output: one ``K /path`` per path, sorted by path."""
    seen: dict[str, str] = {}
    for ch in changes:
        if ch.path not in seen or ch.kind == "C":
            seen[ch.path] = ch.kind
    return [f"{seen[p]} {p}" for p in sorted(seen)]


# -- the layer ---------------------------------------------------------------------------------
class HashingWriter:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.count += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


LAYER_GZIP_LEVEL = 3  # ISA-L's best: ~7x zlib 6's speed, ~10 % larger on source trees


def gzip_writer(out: Any) -> Any:
    """A gzip stream for a layer written to ``out``: ISA-L's deflate (python-isal, already
    what unpacks layers), a valid gzip member like zlib's (mtime 0, no name: the same
    changes give the same bytes)."""
    from isal import igzip

    return igzip.GzipFile(fileobj=out, mode="wb", compresslevel=LAYER_GZIP_LEVEL,  # type: ignore[no-untyped-call]
                          mtime=0)


def _entry(tf: tarfile.TarFile, host: Path, arcname: str) -> None:
    info = tf.gettarinfo(str(host), arcname=arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if not info.isreg():
        tf.addfile(info)
        return
    try:
        fh = open(host, "rb")  # noqa: SIM115
    except PermissionError:  # a mode 0000 file of the container: ours to read
        mode = os.lstat(host).st_mode
        os.chmod(host, stat.S_IMODE(mode) | stat.S_IRUSR)
        try:
            fh = open(host, "rb")  # noqa: SIM115
        finally:
            os.chmod(host, stat.S_IMODE(mode))
    with fh:
        tf.addfile(info, fh)


def write_layer(changes: Sequence[Change], out: IO[bytes]) -> tuple[str, str, int, int]:
    """Write ``changes`` as a gzip OCI layer to ``out``; returns (digest, diff_id, compressed
    size, uncompressed size)."""
    compressed = HashingWriter(out)
    with gzip_writer(compressed) as gz:
        plain = HashingWriter(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            for ch in changes:
                rel = ch.path.lstrip("/")
                if ch.kind == "D":
                    parent, _, name = rel.rpartition("/")
                    wh = tarfile.TarInfo((parent + "/" if parent else "") + ".wh." + name)
                    wh.mode = 0o644
                    tf.addfile(wh)
                    continue
                assert ch.host is not None
                try:
                    _entry(tf, ch.host, rel)
                except FileNotFoundError:  # gone while we read (a running container)
                    continue
                if ch.opaque:
                    opq = tarfile.TarInfo(rel + "/.wh..wh..opq")
                    opq.mode = 0o644
                    tf.addfile(opq)
    return compressed.digest, plain.digest, compressed.count, plain.count


# -- commit ------------------------------------------------------------------------------------
@attrs.frozen
class Container:
    """What commit and diff need of a container."""

    name: str
    rootfs: Path  # the copy, or the overlay mount point
    upper: Path | None  # the overlay's upper dir (None: a copied root)
    lower: Path | None  # the overlay's lower dir (the image tree)
    image: str  # the image reference it was created from
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)
    labels: Mapping[str, str] = attrs.field(factory=dict)
    exposed_ports: tuple[str, ...] = ()
    mount_targets: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: Any) -> Container:
        layout = spec.overlay
        return cls(
            name=spec.name,
            rootfs=Path(spec.rootfs),
            upper=Path(layout.upper) if layout is not None else None,
            lower=Path(layout.lower) if layout is not None else None,
            image=spec.image,
            argv=tuple(spec.argv),
            env=dict(spec.env),
            labels=dict(spec.labels),
            exposed_ports=tuple(spec.exposed_ports),
            mount_targets=tuple(m.target.rstrip("/") or "/" for m in spec.mounts),
        )


def base_image(store: ImageStore, container: Container) -> ImageRecord:
    """The image the container's tree was made from."""
    if container.lower is not None:
        want = "sha256:" + container.lower.name
        for rec in store.list_images():
            if rec.config_digest == want:
                return rec
        raise ImageNotFound(
            f"the image of container {container.name} ({container.image}) is no longer in the "
            "image store."
        )
    try:
        rec = store.resolve(container.image)
    except ImageNotFound:
        raise ImageNotFound(
            f"the image of container {container.name} ({container.image}) is no longer in the "
            "image store."
        ) from None
    if not rec.rootfs.is_dir():
        raise ImageNotFound(f"the tree of image {container.image} is missing from the store.")
    return rec


def changes_of(store: ImageStore, container: Container) -> list[Change]:
    if container.upper is not None and container.lower is not None:
        if not container.upper.is_dir():
            raise ContainerError(f"container {container.name} has no upper layer.")
        return overlay_changes(container.upper, container.lower, container.mount_targets)
    if not container.rootfs.is_dir():
        raise ContainerError(f"the root filesystem of container {container.name} is missing.")
    base = base_image(store, container)
    return copy_changes(container.rootfs, base.rootfs, container.mount_targets)


def _runtime_env(base_env: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The container's environment as an image's ``Env``: without what the runtime adds."""
    base_keys = {e.split("=", 1)[0] for e in base_env}
    out = list(base_env)
    for key, value in env.items():
        if key in ("HOSTNAME",) or (key == "HOME" and key not in base_keys):
            continue
        out = [e for e in out if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    return out


def new_config(
    base: dict[str, Any],
    container: Container,
    *,
    diff_id: str,
    changes: Sequence[str],
    message: str,
    author: str,
    created: str,
) -> dict[str, Any]:
    """The committed image's config: the container's command, environment, labels and ports
    over the image's, then ``--change``; one more diff_id and history entry."""
    from .archive import apply_changes  # not at import: it brings the registry client (aiohttp)

    cfg: dict[str, Any] = json.loads(json.dumps(base))
    c: dict[str, Any] = dict(cfg.get("config") or {})
    ep = list(c.get("Entrypoint") or [])
    argv = list(container.argv)
    if argv:
        if ep and argv[: len(ep)] == ep:
            c["Cmd"] = argv[len(ep):] or None
        else:
            c["Entrypoint"] = None
            c["Cmd"] = argv
    c["Env"] = _runtime_env(list(c.get("Env") or []), container.env)
    labels = {k: v for k, v in container.labels.items() if not k.startswith("com.docker.compose.")}
    if labels or c.get("Labels"):
        c["Labels"] = {**(c.get("Labels") or {}), **labels}
    for port in container.exposed_ports:
        c.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
    apply_changes(c, changes)
    cfg["config"] = c
    cfg["created"] = created
    if author:
        cfg["author"] = author
    cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    cfg["rootfs"]["diff_ids"] = [*cfg["rootfs"].get("diff_ids", []), diff_id]
    entry: dict[str, Any] = {"created": created, "created_by": " ".join(argv)}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    cfg["history"] = [*cfg.get("history", []), entry]
    cfg.pop("container", None)
    cfg.pop("container_config", None)
    return cfg


async def commit(
    container: Container,
    reference: str | None,
    *,
    paths: Any,
    changes: Sequence[str] = (),
    message: str = "",
    author: str = "",
) -> ImageRecord:
    """Store the container's changes as a new image (tagged ``reference`` when given)."""
    from .registry import DOCKER_MANIFEST, OCI_MANIFEST

    store = ImageStore(paths.store)
    store.root.mkdir(parents=True, exist_ok=True)
    with store.pull_guard():
        base = base_image(store, container)
        if not base.rootfs.is_dir():
            raise ImageNotFound(f"the tree of image {base.reference} is missing from the store.")
        found = await anyio.to_thread.run_sync(changes_of, store, container)
        store.blobs.mkdir(parents=True, exist_ok=True)
        partial = store.blobs / f".commit-{os.getpid()}-{time.monotonic_ns()}.partial"
        try:
            def write() -> tuple[str, str, int, int]:
                with open(partial, "wb") as fh:
                    return write_layer(found, fh)

            digest, diff_id, size, _plain = await anyio.to_thread.run_sync(write)
            final = store.blob_path(digest)
            if final.exists():
                partial.unlink()
            else:
                os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        base_manifest = json.loads(store.read_blob(base.digest))
        docker = str(base_manifest.get("mediaType") or base.media_type) == DOCKER_MANIFEST
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cfg = new_config(
            json.loads(store.read_blob(base.config_digest)), container, diff_id=diff_id,
            changes=changes, message=message, author=author, created=created,
        )
        config_bytes = json.dumps(cfg, separators=(",", ":")).encode()
        config_digest = store.write_blob(config_bytes)
        layer = LayerInfo(digest, size, DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP, diff_id)
        layers = (*base.layers, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [*base_manifest.get("layers", []),
                       {"mediaType": layer.media_type, "digest": digest, "size": size}],
        }
        manifest_digest = store.write_blob(json.dumps(manifest, separators=(",", ":")).encode())
        total = await build_tree(store, base, config_digest, digest)
        return store.add_image(
            reference=reference, digest=manifest_digest, config_digest=config_digest,
            layers=layers, size=total, media_type=str(manifest["mediaType"]),
        )


async def build_tree(store: ImageStore, base: ImageRecord | None, config_digest: str,
                     blob: str | None, *, what: str = "the committed layer") -> int:
    """``rootfs/<config>``: a copy of ``base``'s tree (an empty one without a base) with the
    layer ``blob`` applied (none: the copy alone); its size. Once per config, under the
    tree's lock; a failure leaves nothing half-made."""
    from ..runtime.rootfs import copy_rootfs
    from .unpack import Applier, apply_layer

    rootfs = store.rootfs_path(config_digest)
    hexpart = config_digest.split(":", 1)[1]
    size_file = store.rootfs_dir / f".{hexpart}.size"
    base_size = base.size if base is not None else 0
    async with flock_async(store.lock_path(f"rootfs-{hexpart}")):
        if rootfs.is_dir():
            with contextlib.suppress(OSError, ValueError):
                return int(size_file.read_text())
            return base_size
        store.sweep_rootfs_tmp(config_digest)
        tmp = store.new_rootfs_tmp(config_digest)
        try:
            if base is not None:
                tmp.rmdir()
                await copy_rootfs(base.rootfs, tmp)
            added = 0
            if blob is not None:
                def apply() -> int:
                    with open(store.blob_path(blob), "rb") as fh, Applier(tmp) as applier:
                        return apply_layer(applier, fh, name=what)[1]

                added = await anyio.to_thread.run_sync(apply)
            os.rename(tmp, rootfs)
        except BaseException:
            remove_tree(tmp)
            raise
        total = base_size + added
        with contextlib.suppress(OSError):
            size_file.write_text(str(total))
        return total


__all__ = [
    "Change",
    "Container",
    "base_image",
    "changes_of",
    "commit",
    "copy_changes",
    "diff_lines",
    "new_config",
    "overlay_changes",
    "snapshot",
    "snapshot_changes",
    "write_layer",
]
