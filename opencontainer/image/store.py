"""The content-addressed image store.

Layout under ``paths.store``::

    blobs/sha256/<hex>          every blob (layers, configs, manifests, indexes), verified
    blobs/sha256/<hex>.partial  a download in progress (resumed or swept later)
    rootfs/<config-hex>/        the unpacked full image tree (read-only for everybody else)
    rootfs/.tmp-*               an unpack in progress (swept when its owner is gone)
    locks/<name>.lock           flock files: one per blob / rootfs being written, ``refs``, ``gc``,
                                ``users``
    refs.json                   {"refs": {ref: manifest-digest}, "images": {digest: record}}
    users/<config-hex>/<key>    one marker per container using ``rootfs/<config-hex>`` as its
                                (read-only, overlay lower) root; content: the container dir

A blob becomes visible (its final name) only after every byte hashed to its digest: downloads go
to ``*.partial`` and are renamed. Writers of the same blob serialise on the blob's lock, so two
processes pulling the same image never corrupt each other; a ``kill -9`` leaves only
``*.partial`` files and temp dirs, which the next pull resumes or sweeps. ``refs.json`` is
rewritten with :func:`opencontainer.paths.atomic_write` under the ``refs`` lock.

Pulls hold the ``gc`` lock shared; garbage collection (after ``rmi``) takes it exclusively and
simply skips when a pull is running.

Containers live in many places (the user's data dir, each compose project's ``.containers/``),
so the store cannot list them: a container registers itself as a *user* of the tree it is built
on (:meth:`ImageStore.add_rootfs_user`) and unregisters when it is removed. A marker whose
container dir no longer exists is stale and is dropped when seen. ``gc`` never deletes a tree
with live users, even when no image refers to it any more, and ``rmi`` refuses (without ``-f``)
to delete an image whose tree is in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import paths
from ..errors import DigestMismatch, ImageError, ImageNotFound, InvalidReference, StateError
from ..logs import logger
from ..paths import atomic_write, file_lock
from .reference import parse_reference

log = logger(__name__)

_HEX_ID = re.compile(r"(?:sha256:)?([a-f0-9]{4,64})")


def _t(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if value else ()


@attrs.frozen
class ImageConfig:
    """The runtime-relevant part of an image config (``config`` in the OCI config JSON)."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    stop_signal: str | None = None
    healthcheck: dict[str, Any] | None = None
    os: str = "linux"
    architecture: str = ""
    variant: str | None = None
    created: str | None = None
    diff_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageConfig:
        cfg = data.get("config") or {}
        ep = cfg.get("Entrypoint")
        cmd = cfg.get("Cmd")
        return cls(
            entrypoint=_t(ep) if ep is not None else None,
            cmd=_t(cmd) if cmd is not None else None,
            env=_t(cfg.get("Env")),
            working_dir=str(cfg.get("WorkingDir") or ""),
            user=str(cfg.get("User") or ""),
            exposed_ports=tuple(sorted(cfg.get("ExposedPorts") or {})),
            volumes=tuple(sorted(cfg.get("Volumes") or {})),
            labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
            stop_signal=cfg.get("StopSignal") or None,
            healthcheck=cfg.get("Healthcheck") or None,
            os=str(data.get("os") or "linux"),
            architecture=str(data.get("architecture") or ""),
            variant=data.get("variant") or None,
            created=data.get("created") or None,
            diff_ids=_t((data.get("rootfs") or {}).get("diff_ids")),
        )


@attrs.frozen
class LayerInfo:
    digest: str
    size: int
    media_type: str = ""
    diff_id: str = ""


@attrs.frozen
class ImageRecord:
    """A pulled (or loaded) image. ``id`` is the config digest, as in Docker."""

    reference: str
    digest: str  # manifest digest of the platform manifest
    config_digest: str
    config: ImageConfig
    layers: tuple[LayerInfo, ...]
    size: int
    created: str | None
    rootfs: Path
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    index_digest: str | None = None
    media_type: str = ""
    pulled_at: float = 0.0
    # a build step's image (the build cache's): hidden from ``images`` unless ``-a``
    intermediate: bool = False

    @property
    def id(self) -> str:
        return self.config_digest

    @property
    def short_id(self) -> str:
        return self.config_digest.split(":", 1)[-1][:12]


@attrs.frozen(kw_only=True)
class NewImage:
    """An image for :meth:`ImageStore.add_images` to record (its blobs already stored)."""

    reference: str | None
    digest: str
    config_digest: str
    layers: tuple[LayerInfo, ...]
    size: int
    index_digest: str | None = None
    media_type: str = ""
    intermediate: bool = False
    tags: tuple[str, ...] = ()  # tags to point at it (without a repo digest, as ``tag``)


def digest_bytes(data: bytes) -> str:
    import hashlib  # here, not at the top: loading OpenSSL costs every ``images`` ~2 ms

    return "sha256:" + hashlib.sha256(data).hexdigest()


def split_digest(digest: str) -> tuple[str, str]:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[a-f0-9]{64}", hexpart):
        raise DigestMismatch(f"unsupported or malformed digest {digest!r}.")
    return algo, hexpart


@contextlib.contextmanager
def shared_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class ImageStore:
    """The store under ``root`` (``paths.store``). Cheap to construct; creates dirs lazily."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.rootfs_dir = self.root / "rootfs"
        self.locks = self.root / "locks"
        self.refs_file = self.root / "refs.json"
        self.users_dir = self.root / "users"

    # -- blobs ---------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / split_digest(digest)[1]

    def partial_path(self, digest: str) -> Path:
        return self.blobs / (split_digest(digest)[1] + ".partial")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise ImageNotFound(f"blob {digest} is missing from the image store.") from exc

    def write_blob(self, data: bytes, digest: str | None = None, *,
                   durable: bool = True) -> str:
        """Store small ``data`` (manifest, config); verifies ``digest`` when given.
        ``durable=False``: not fsynced (a build step's image: the cache's, made again when
        lost); a durable write of a blob already there syncs it."""
        actual = digest_bytes(data)
        if digest is not None and actual != digest:
            raise DigestMismatch(f"content for {digest} hashes to {actual}; nothing was stored.")
        path = self.blob_path(actual)
        if not path.exists():
            self.blobs.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, durable=durable)
        elif durable:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        return actual

    def lock_path(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    @contextlib.contextmanager
    def blob_lock(self, digest: str) -> Iterator[int]:
        with file_lock(self.lock_path(split_digest(digest)[1])) as fd:
            yield fd

    def pull_guard(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) while pulling/loading, so that gc leaves new blobs alone."""
        return shared_lock(self.lock_path("gc"))

    # -- rootfs --------------------------------------------------------------------------------
    def rootfs_path(self, config_digest: str) -> Path:
        return self.rootfs_dir / split_digest(config_digest)[1]

    def new_rootfs_tmp(self, config_digest: str) -> Path:
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        hexpart = split_digest(config_digest)[1]
        tmp = self.rootfs_dir / f".tmp-{hexpart[:16]}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir(mode=0o755)
        return tmp

    def sweep_rootfs_tmp(self, config_digest: str) -> None:
        """Remove temp trees of ``config_digest`` (call with the rootfs lock held)."""
        prefix = f".tmp-{split_digest(config_digest)[1][:16]}-"
        if not self.rootfs_dir.is_dir():
            return
        for entry in self.rootfs_dir.iterdir():
            if entry.name.startswith(prefix):
                remove_tree(entry)

    # -- rootfs users ---------------------------------------------------------------------------
    @staticmethod
    def _tree_key(tree: Path) -> str:
        name = Path(tree).name
        if name in ("", ".", "..") or name.startswith("."):
            raise ValueError(f"{tree} is not an image rootfs tree of the store.")
        return name

    @staticmethod
    def _user_key(container_dir: Path) -> tuple[str, str]:
        """(marker name, absolute path) for ``container_dir``."""
        import hashlib

        absolute = os.path.abspath(container_dir)
        return hashlib.sha256(absolute.encode()).hexdigest()[:32], absolute

    def add_rootfs_user(self, tree: Path, container_dir: Path, *, durable: bool = True) -> None:
        """Record that the container in ``container_dir`` uses ``tree`` (a :meth:`rootfs_path`).

        Idempotent. ``durable=False``: the marker is not fsynced (a ``--rm`` container's: a
        crash ends it anyway). Waits for a running ``gc`` to finish, so that a ``gc`` that
        started before the marker was written cannot still delete the tree afterwards:
        callers check that the tree exists *after* registering.
        """
        hexpart = self._tree_key(tree)
        key, absolute = self._user_key(container_dir)
        with shared_lock(self.lock_path("gc")), file_lock(self.lock_path("users")):
            atomic_write(self.users_dir / hexpart / key, absolute, durable=durable)

    def remove_rootfs_user(self, tree: Path, container_dir: Path) -> None:
        """Forget that ``container_dir`` uses ``tree`` (a missing marker is fine)."""
        hexpart = self._tree_key(tree)
        key, _ = self._user_key(container_dir)
        with file_lock(self.lock_path("users")):
            (self.users_dir / hexpart / key).unlink(missing_ok=True)
            self._rmdir_if_empty(self.users_dir / hexpart)

    def rootfs_users(self, tree: Path) -> list[Path]:
        """The container dirs (sorted) that still exist and use ``tree``; drops stale markers."""
        hexpart = self._tree_key(tree)
        folder = self.users_dir / hexpart
        if not folder.is_dir():
            return []
        with file_lock(self.lock_path("users")):
            return self._live_users(folder)

    def _live_users(self, folder: Path) -> list[Path]:
        """Scan one ``users/<hex>`` folder (``users`` lock held)."""
        live: list[Path] = []
        try:
            markers = list(folder.iterdir())
        except FileNotFoundError:
            return live
        for marker in markers:
            if marker.name.startswith("."):  # an atomic_write in progress (or left by a kill)
                continue
            try:
                content = marker.read_text().removesuffix("\n")
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError):
                content = ""
            user = Path(content)
            if content and user.is_absolute() and user.is_dir():
                live.append(user)
            else:
                log.debug("dropping stale rootfs user", marker=str(marker), container=content)
                marker.unlink(missing_ok=True)
        if not live:
            self._rmdir_if_empty(folder)
        return sorted(live)

    def _used_trees(self) -> set[str]:
        """Names of the trees under ``rootfs/`` that have live users."""
        if not self.users_dir.is_dir():
            return set()
        used: set[str] = set()
        with file_lock(self.lock_path("users")):
            for folder in self.users_dir.iterdir():
                if folder.is_dir() and self._live_users(folder):
                    used.add(folder.name)
        return used

    @staticmethod
    def _rmdir_if_empty(folder: Path) -> None:
        with contextlib.suppress(OSError):  # missing, or not empty
            folder.rmdir()

    # -- refs ----------------------------------------------------------------------------------
    def _read_refs(self) -> dict[str, Any]:
        try:
            data = json.loads(self.refs_file.read_text())
        except FileNotFoundError:
            return {"version": 1, "refs": {}, "images": {}}
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.refs_file} is unreadable ({exc}).") from exc
        data.setdefault("refs", {})
        data.setdefault("images", {})
        return data  # type: ignore[no-any-return]

    def _write_refs(self, data: dict[str, Any], *, sync_dir: bool = True) -> None:
        atomic_write(self.refs_file, json.dumps(data, indent=1, sort_keys=True) + "\n",
                     sync_dir=sync_dir)

    def add_image(
        self,
        *,
        reference: str | None,
        digest: str,
        config_digest: str,
        layers: tuple[LayerInfo, ...],
        size: int,
        index_digest: str | None = None,
        media_type: str = "",
        intermediate: bool = False,
    ) -> ImageRecord:
        """Record an image and point ``reference`` (normalised) at it. ``intermediate``: a
        build step's image (a new record only; an image recorded as a result stays one)."""
        return self.add_images([NewImage(
            reference=reference, digest=digest, config_digest=config_digest, layers=layers,
            size=size, index_digest=index_digest, media_type=media_type,
            intermediate=intermediate)])[0]

    def add_images(self, new: list[NewImage], *, durable: bool = True) -> list[ImageRecord]:
        """:meth:`add_image` for each of ``new``, in order, with one write of the index.
        ``durable=False``: the index is still written whole (its data synced) but its rename
        is not: a crash may forget these images, never the others (a build's, whose layers
        and tree are not synced either)."""
        configs = {n.config_digest: ImageConfig.from_json(json.loads(
            self.read_blob(n.config_digest))) for n in new}
        out: list[ImageRecord] = []
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            images = data["images"]
            refs: dict[str, str] = data["refs"]
            for n in new:
                entry = images.get(n.digest) or {}
                if n.intermediate and (not entry or entry.get("intermediate")):
                    entry["intermediate"] = True
                else:
                    entry.pop("intermediate", None)
                repo_digests = set(entry.get("repo_digests", []))
                if n.reference:
                    ref = parse_reference(n.reference)
                    if ref.digest is None:
                        # a tag moves: drop it from the image it pointed at before
                        refs[str(ref)] = n.digest
                    repo_digests.add(f"{ref.repository}@{n.index_digest or n.digest}")
                entry.update(
                    {
                        "config": n.config_digest,
                        "layers": [attrs.asdict(layer) for layer in n.layers],
                        "size": n.size,
                        "created": configs[n.config_digest].created,
                        "index_digest": n.index_digest or entry.get("index_digest"),
                        "media_type": n.media_type or entry.get("media_type", ""),
                        "repo_digests": sorted(repo_digests),
                        "pulled_at": time.time(),
                    }
                )
                images[n.digest] = entry
                for tag in n.tags:
                    refs[str(parse_reference(tag))] = n.digest
            self._write_refs(data, sync_dir=durable)
            for n in new:
                shown = n.reference or (n.tags[0] if n.tags else None)
                out.append(self._record(n.digest, images[n.digest], refs, shown,
                                        configs[n.config_digest]))
        return out

    def tag(self, source: str, target: str) -> None:
        rec = self.resolve(source)
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            data["refs"][str(parse_reference(target))] = rec.digest
            self._write_refs(data)

    def set_intermediate(self, digest: str, intermediate: bool) -> list[str]:
        """Mark image ``digest`` a build intermediate (dropping its tags: what was untagged)
        or a result (shown by ``images``)."""
        done: list[str] = []
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            entry = data["images"].get(digest)
            if entry is None:
                return done
            if intermediate:
                entry["intermediate"] = True
                for t in [r for r, d in data["refs"].items() if d == digest]:
                    del data["refs"][t]
                    done.append(f"untagged: {parse_reference(t).familiar()}")
            else:
                entry.pop("intermediate", None)
            self._write_refs(data)
        return done

    def add_repo_digest(self, digest: str, repo_digest: str) -> None:
        """Remember that image ``digest`` is also ``repository@manifest-digest`` (a push)."""
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            entry = data["images"].get(digest)
            if entry is None:
                return
            entry["repo_digests"] = sorted({*entry.get("repo_digests", []), repo_digest})
            self._write_refs(data)

    def untag(self, ref: str) -> bool:
        """Drop the tag ``ref`` (the image stays, even without tags); False if not a tag."""
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            key = str(parse_reference(ref))
            if key not in data["refs"]:
                return False
            del data["refs"][key]
            self._write_refs(data)
            return True

    def forget(self, digest: str) -> list[str]:
        """Forget the image ``digest`` and its tags (prune); the caller runs :meth:`gc`."""
        done: list[str] = []
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            entry = data["images"].pop(digest, None)
            if entry is None:
                return done
            for t in [r for r, d in data["refs"].items() if d == digest]:
                del data["refs"][t]
                done.append(f"untagged: {parse_reference(t).familiar()}")
            for rd in entry.get("repo_digests", []):
                done.append(f"untagged: {parse_reference(rd).familiar()}")
            done.append(f"deleted: {entry['config']}")
            self._write_refs(data)
        return done

    def _record(
        self, digest: str, entry: Mapping[str, Any], refs: Mapping[str, str], reference: str | None,
        config: ImageConfig | None = None,
    ) -> ImageRecord:
        config_digest = entry["config"]
        tags = tuple(sorted(r for r, d in refs.items() if d == digest))
        if config is None:
            config = ImageConfig.from_json(json.loads(self.read_blob(config_digest)))
        ref = reference or (tags[0] if tags else (entry.get("repo_digests") or [digest])[0])
        return ImageRecord(
            reference=str(parse_reference(ref)) if reference else ref,
            digest=digest,
            config_digest=config_digest,
            config=config,
            layers=tuple(LayerInfo(**layer) for layer in entry.get("layers", [])),
            size=int(entry.get("size", 0)),
            created=entry.get("created"),
            rootfs=self.rootfs_path(config_digest),
            repo_tags=tags,
            repo_digests=tuple(entry.get("repo_digests", [])),
            index_digest=entry.get("index_digest"),
            media_type=entry.get("media_type", ""),
            pulled_at=float(entry.get("pulled_at", 0.0)),
            intermediate=bool(entry.get("intermediate", False)),
        )

    def resolve(self, ref: str) -> ImageRecord:
        """The local image for ``ref`` (name, name:tag, name@digest, or an image-id prefix)."""
        data = self._read_refs()
        refs: dict[str, str] = data["refs"]
        images: dict[str, Any] = data["images"]
        found = self._find(ref, refs, images)
        if found is None or found not in images:
            raise ImageNotFound(
                f"image {ref} is not in the local store; run 'opencontainer pull {ref}' first."
            )
        rec = self._record(found, images[found], refs, None)
        try:
            parsed = parse_reference(ref)
            if str(parsed) in refs:
                rec = attrs.evolve(rec, reference=str(parsed))
        except InvalidReference:
            pass
        return rec

    def _find(self, ref: str, refs: Mapping[str, str], images: Mapping[str, Any]) -> str | None:
        id_match = _HEX_ID.fullmatch(ref)
        if id_match:
            prefix = id_match.group(1)
            hits = {
                d
                for d, e in images.items()
                if e["config"].split(":", 1)[1].startswith(prefix)
                or d.split(":", 1)[1].startswith(prefix)
            }
            if len(hits) == 1:
                return hits.pop()
        try:
            parsed = parse_reference(ref)
        except InvalidReference:
            return None
        if parsed.digest:
            if parsed.digest in images:
                return parsed.digest
            want = f"{parsed.repository}@{parsed.digest}"
            for d, e in images.items():
                if want in e.get("repo_digests", []):
                    return d
            return None
        return refs.get(str(parsed))

    def list_images(self) -> list[ImageRecord]:
        data = self._read_refs()
        out = []
        for digest, entry in data["images"].items():
            try:
                out.append(self._record(digest, entry, data["refs"], None))
            except ImageNotFound:
                continue
        out.sort(key=lambda r: r.pulled_at, reverse=True)
        return out

    def remove(self, ref: str, *, force: bool = False) -> list[str]:
        """Untag ``ref``; when no tag is left, forget the image and collect garbage.

        Returns what was done, docker-style (``Untagged: …`` / ``Deleted: …``). Forgetting an
        image whose tree containers still use needs ``force``; the tree then stays on disk
        (``gc`` keeps it) until its last user is gone.
        """
        rec = self.resolve(ref)
        done: list[str] = []
        with file_lock(self.lock_path("refs")):
            data = self._read_refs()
            refs: dict[str, str] = data["refs"]
            try:
                parsed: str | None = str(parse_reference(ref))
            except InvalidReference:
                parsed = None
            tags = [r for r, d in refs.items() if d == rec.digest]
            if parsed in refs and len(tags) > 1 and not force:
                del refs[parsed]
                done.append(f"Untagged: {parse_reference(parsed).familiar()}")
            else:
                if not force:
                    self._refuse_if_used(ref, rec, data["images"])
                for t in tags:
                    del refs[t]
                    done.append(f"Untagged: {parse_reference(t).familiar()}")
                for rd in data["images"][rec.digest].get("repo_digests", []):
                    done.append(f"Untagged: {parse_reference(rd).familiar()}")
                del data["images"][rec.digest]
                done.append(f"Deleted: {rec.config_digest}")
            self._write_refs(data)
        self.gc()
        return done

    def _refuse_if_used(self, ref: str, rec: ImageRecord, images: Mapping[str, Any]) -> None:
        """Raise when forgetting ``rec`` would leave containers without their image."""
        if any(d != rec.digest and e["config"] == rec.config_digest for d, e in images.items()):
            return  # another record (same image id) keeps the tree
        users = self.rootfs_users(rec.rootfs)
        if users:
            raise ImageError(
                f'conflict: unable to remove repository reference "{ref}" (must force) - '
                f"container {users[0].name} is using its referenced image {rec.short_id}"
            )

    def gc(self) -> None:
        """Delete blobs and rootfs trees no image refers to (skipped while a pull runs).

        A tree that containers still use (see :meth:`rootfs_users`) is kept, with its size file,
        even when no image refers to it any more; its blobs may go.
        """
        try:
            with file_lock(self.lock_path("gc"), blocking=False):
                data = self._read_refs()
                keep: set[str] = set()
                for digest, entry in data["images"].items():
                    keep.add(digest)
                    keep.add(entry["config"])
                    if entry.get("index_digest"):
                        keep.add(entry["index_digest"])
                    keep.update(layer["digest"] for layer in entry.get("layers", []))
                keep_hex = {d.split(":", 1)[1] for d in keep}
                configs = {e["config"].split(":", 1)[1] for e in data["images"].values()}
                configs |= self._used_trees()
                if self.blobs.is_dir():
                    for blob in self.blobs.iterdir():
                        name = blob.name.removesuffix(".partial")
                        if name not in keep_hex:
                            with contextlib.suppress(FileNotFoundError):
                                blob.unlink()
                if self.rootfs_dir.is_dir():
                    for tree in self.rootfs_dir.iterdir():
                        name = tree.name
                        if name.startswith(".") and name.endswith(".size"):
                            name = name[1:-5]
                        if name not in configs:  # includes stale .tmp-* trees
                            remove_tree(tree)
        except StateError:
            log.debug("gc skipped: a pull is running")


def remove_tree(path: Path) -> None:
    """The store's ``rm -rf`` (sweeps, gc, failed pulls): never raises."""
    paths.remove_tree(path, ignore_errors=True)



@contextlib.asynccontextmanager
async def flock_async(path: Path) -> AsyncIterator[None]:
    """An exclusive flock on ``path`` (created), waited for without blocking the event loop."""
    import anyio

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)

__all__ = [
    "ImageConfig",
    "ImageRecord",
    "ImageStore",
    "LayerInfo",
    "NewImage",
    "digest_bytes",
    "flock_async",
    "remove_tree",
    "split_digest",
]
