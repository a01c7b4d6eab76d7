"""Image archives: ``load`` (docker save / OCI layout tar), ``save``, ``import_rootfs``.

``save`` writes the layout Docker 25+ writes, which both ``docker load`` and OCI tools read:
``oci-layout``, ``index.json``, ``manifest.json`` (docker's list of Config/RepoTags/Layers) and
``blobs/sha256/*`` (our stored blobs, compressed as pulled). ``--format oci`` leaves out
``manifest.json``. ``load`` accepts that, the legacy docker layout (``<id>/layer.tar``) and plain
OCI image-layout archives (skopeo ``oci-archive:``), every blob hashed on the way into the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

import anyio
import anyio.to_thread

from ..errors import ConfigError, DigestMismatch, ImageError, ImageNotFound
from .platform import Platform
from .registry import DOCKER_MANIFEST, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST
from .store import ImageRecord, ImageStore, LayerInfo, digest_bytes, remove_tree
from .unpack import GZIP_MAGIC, ZSTD_MAGIC, LayerSource, unpack_layers

CHUNK = 1 << 20
OCI_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def _sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def _store_stream(
    store: ImageStore, src: IO[bytes], expected: str | None = None
) -> tuple[str, int, str]:
    """Copy a stream into the blob store (hashed); returns (digest, size, compression)."""
    store.blobs.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=store.blobs, suffix=".partial")
    hasher = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                if not head:
                    head = chunk[:4]
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
        digest = "sha256:" + hasher.hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatch(
                f"blob {expected} in the archive hashes to {digest}; nothing was stored."
            )
        final = store.blob_path(digest)
        if final.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, size, _sniff(head)


async def _build_rootfs(store: ImageStore, config_digest: str, layers: Sequence[LayerInfo]) -> int:
    """Unpack stored blobs into ``rootfs/<config>`` (if not there); returns the size."""
    from .pull import _flock, _read_size

    rootfs = store.rootfs_path(config_digest)
    hexpart = config_digest.split(":", 1)[1]
    size_file = store.rootfs_dir / f".{hexpart}.size"
    async with _flock(store.lock_path(f"rootfs-{hexpart}")):
        if rootfs.is_dir():
            return _read_size(size_file, tuple(layers))
        store.sweep_rootfs_tmp(config_digest)
        tmp = store.new_rootfs_tmp(config_digest)
        sources = [LayerSource.complete(lyr.digest, store.blob_path(lyr.digest)) for lyr in layers]
        try:
            total = await anyio.to_thread.run_sync(
                lambda: unpack_layers(tmp, sources, [lyr.diff_id or None for lyr in layers])
            )
            os.rename(tmp, rootfs)
        except BaseException:
            remove_tree(tmp)  # sync: must also run when cancelled
            raise
        size_file.write_text(str(total))
        return total


# -- load --------------------------------------------------------------------------------------
class _Archive:
    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.members = {m.name.removeprefix("./"): m for m in tf.getmembers()}

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(name)
        if member is None:
            raise ImageError(f"the archive has no {name}.")
        while member.islnk() or member.issym():
            target = member.linkname.removeprefix("./")
            if member.issym():
                target = os.path.normpath(os.path.join(os.path.dirname(member.name), target))
            member = self.members[target]
        fh = self.tf.extractfile(member)
        if fh is None:
            raise ImageError(f"{name} in the archive is not a file.")
        return fh

    def read(self, name: str) -> bytes:
        return self.open(name).read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise ImageError(f"{name} in the archive is not JSON.") from exc


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


async def load(source: Path | None, *, paths: Any) -> list[tuple[ImageRecord, str | None]]:
    """Load every image of a docker-save or OCI-layout tar; returns (record, tag) pairs."""
    store = ImageStore(paths.store)
    store.root.mkdir(parents=True, exist_ok=True)
    tmp_copy: Path | None = None
    if source is None:
        fd, name = tempfile.mkstemp(dir=store.root, suffix=".load.partial")
        tmp_copy = Path(name)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, CHUNK)
        source = tmp_copy
    try:
        try:
            tf = tarfile.open(source, "r:*")  # noqa: SIM115 - closed by the with below
        except tarfile.TarError as exc:
            raise ImageError(f"{source} is not a tar archive (plain, gzip, bzip2 or xz).") from exc
        except OSError as exc:
            raise ImageError(f"cannot read {source}: {exc.strerror}.") from exc
        with tf, store.pull_guard():
            arc = _Archive(tf)
            if arc.has("manifest.json"):
                return await _load_docker(store, arc)
            if arc.has("index.json"):
                return await _load_oci(store, arc)
            raise ImageError(
                f"{source} has neither manifest.json nor index.json: not an image archive."
            )
    finally:
        if tmp_copy is not None:
            tmp_copy.unlink(missing_ok=True)


async def _load_docker(store: ImageStore, arc: _Archive) -> list[tuple[ImageRecord, str | None]]:
    out: list[tuple[ImageRecord, str | None]] = []
    for entry in arc.json("manifest.json"):
        config_bytes = arc.read(entry["Config"])
        config_digest = store.write_blob(config_bytes)
        config = json.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = []
        for i, name in enumerate(entry["Layers"]):
            expected = None
            if name.startswith("blobs/sha256/"):
                expected = "sha256:" + name.rsplit("/", 1)[1]
            digest, size, comp = _store_stream(store, arc.open(name), expected)
            layers.append(
                LayerInfo(digest, size, OCI_LAYER[comp], diff_ids[i] if i < len(diff_ids) else "")
            )
        manifest = _manifest(config_digest, len(config_bytes), layers)
        digest = store.write_blob(manifest)
        size = await _build_rootfs(store, config_digest, layers)
        tags = entry.get("RepoTags") or [None]
        for tag in tags:
            rec = store.add_image(
                reference=tag, digest=digest, config_digest=config_digest,
                layers=tuple(layers), size=size, media_type=OCI_MANIFEST,
            )
            out.append((rec, tag))
    return out


def _manifest(config_digest: str, config_size: int, layers: Sequence[LayerInfo]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": lyr.media_type, "digest": lyr.digest, "size": lyr.size}
                   for lyr in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def _load_oci(store: ImageStore, arc: _Archive) -> list[tuple[ImageRecord, str | None]]:
    out: list[tuple[ImageRecord, str | None]] = []
    index = arc.json("index.json")
    host = Platform.host()
    for desc in index.get("manifests") or []:
        annotations = desc.get("annotations") or {}
        tag = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME)
        digest = desc["digest"]
        data = arc.read(_blob_name(digest))
        if digest_bytes(data) != digest:
            raise DigestMismatch(f"manifest {digest} in the archive does not match its digest.")
        doc = json.loads(data)
        index_digest = None
        if desc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            from .platform import select_manifest

            index_digest = store.write_blob(data)
            child = select_manifest(doc, host, explicit=False, name=tag or digest)
            digest = child["digest"]
            data = arc.read(_blob_name(digest))
            doc = json.loads(data)
        store.write_blob(data, digest)
        config_digest = doc["config"]["digest"]
        store.write_blob(arc.read(_blob_name(config_digest)), config_digest)
        config = json.loads(store.read_blob(config_digest))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = []
        for i, layer in enumerate(doc["layers"]):
            if not store.has_blob(layer["digest"]):
                _store_stream(store, arc.open(_blob_name(layer["digest"])), layer["digest"])
            layers.append(LayerInfo(layer["digest"], int(layer["size"]), layer.get("mediaType", ""),
                                    diff_ids[i] if i < len(diff_ids) else ""))
        size = await _build_rootfs(store, config_digest, layers)
        if tag and ("/" not in tag and ":" not in tag):
            tag = None  # a bare ref.name like "latest" has no repository
        rec = store.add_image(
            reference=tag, digest=digest, config_digest=config_digest, layers=tuple(layers),
            size=size, index_digest=index_digest, media_type=doc.get("mediaType", OCI_MANIFEST),
        )
        out.append((rec, tag))
    return out


# -- save --------------------------------------------------------------------------------------
def save(refs: Iterable[str], out: Path | BinaryIO, *, paths: Any, fmt: str = "docker") -> None:
    """Write the images ``refs`` as one tar (docker+OCI layout, or OCI only)."""
    from .reference import parse_reference

    store = ImageStore(paths.store)
    records = [(ref, store.resolve(ref)) for ref in refs]
    blobs: dict[str, None] = {}
    docker_manifest: list[dict[str, Any]] = []
    index_entries: list[dict[str, Any]] = []
    for ref, rec in records:
        for d in (rec.config_digest, rec.digest, *(lyr.digest for lyr in rec.layers)):
            if not store.has_blob(d):
                raise ImageNotFound(f"blob {d} of {ref} is missing; pull the image again.")
            blobs[d] = None
        try:
            parsed = parse_reference(ref)
            tags = [parsed.familiar()] if parsed.tag else []
            full = str(parsed) if parsed.tag else None
        except ImageError:
            tags, full = [], None
        if not tags and rec.repo_tags:
            tags = [parse_reference(rec.repo_tags[0]).familiar()]
            full = rec.repo_tags[0]
        docker_manifest.append({
            "Config": _blob_name(rec.config_digest),
            "RepoTags": tags,
            "Layers": [_blob_name(lyr.digest) for lyr in rec.layers],
        })
        entry: dict[str, Any] = {
            "mediaType": rec.media_type or OCI_MANIFEST,
            "digest": rec.digest,
            "size": store.blob_path(rec.digest).stat().st_size,
        }
        if full:
            entry["annotations"] = {
                CONTAINERD_NAME: full,
                REF_NAME: parse_reference(full).tag or "latest",
            }
        index_entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
    now = int(time.time())

    def add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mtime = now
        ti.mode = 0o644
        tf.addfile(ti, io.BytesIO(data))

    def write(fileobj: BinaryIO) -> None:
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for d in ("blobs", "blobs/sha256"):
                ti = tarfile.TarInfo(d)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                ti.mtime = now
                tf.addfile(ti)
            for d in blobs:
                path = store.blob_path(d)
                ti = tarfile.TarInfo(_blob_name(d))
                ti.size = path.stat().st_size
                ti.mtime = now
                ti.mode = 0o644
                with open(path, "rb") as fh:
                    tf.addfile(ti, fh)
            add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add_bytes(tf, "index.json", json.dumps(index).encode())
            if fmt == "docker":
                add_bytes(tf, "manifest.json", json.dumps(docker_manifest).encode())
                repos: dict[str, dict[str, str]] = {}
                for ref, rec in records:
                    for t in docker_manifest[records.index((ref, rec))]["RepoTags"]:
                        name, _, tag = t.rpartition(":")
                        repos.setdefault(name, {})[tag] = rec.config_digest.split(":", 1)[1]
                add_bytes(tf, "repositories", json.dumps(repos).encode())

    if isinstance(out, Path):
        tmp = out.with_name(f".{out.name}.partial")
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, out)
    else:
        write(out)


# -- import ------------------------------------------------------------------------------------
def _exec_form(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"invalid JSON in --change: {value}.") from exc
        if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
            raise ConfigError(f"--change needs a JSON list of strings: {value}.")
        return parsed
    return ["/bin/sh", "-c", value]


def apply_changes(cfg: dict[str, Any], changes: Iterable[str]) -> None:
    """Apply Dockerfile-style ``--change`` instructions to a config's ``config`` section."""
    for change in changes:
        instr, _, value = change.strip().partition(" ")
        instr = instr.upper()
        value = value.strip()
        if instr == "CMD":
            cfg["Cmd"] = _exec_form(value)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _exec_form(value)
        elif instr == "ENV":
            pairs = (
                [p.split("=", 1) for p in shlex.split(value)]
                if "=" in value.split(" ", 1)[0]
                else [value.split(None, 1)]
            )
            env = [e for e in cfg.get("Env") or []]
            for pair in pairs:
                if len(pair) != 2:
                    raise ConfigError(f"invalid ENV in --change: {value}.")
                env = [e for e in env if not e.startswith(pair[0] + "=")] + [f"{pair[0]}={pair[1]}"]
            cfg["Env"] = env
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = value
        elif instr == "USER":
            cfg["User"] = value
        elif instr == "EXPOSE":
            for port in value.split():
                cfg.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif instr == "VOLUME":
            vols = _exec_form(value) if value.startswith("[") else value.split()
            for v in vols:
                cfg.setdefault("Volumes", {})[v] = {}
        elif instr == "LABEL":
            for item in shlex.split(value):
                k, _, v = item.partition("=")
                cfg.setdefault("Labels", {})[k] = v
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = value
        else:
            raise ConfigError(f"--change does not support the {instr} instruction.")


async def import_rootfs(
    source: Path | None,
    reference: str | None,
    *,
    paths: Any,
    changes: Iterable[str] = (),
    message: str = "",
    platform: str | None = None,
) -> ImageRecord:
    """A rootfs tarball (plain, gzip or zstd; ``None`` = stdin) as a one-layer image."""
    from .unpack import Applier, apply_layer

    store = ImageStore(paths.store)
    store.root.mkdir(parents=True, exist_ok=True)
    with store.pull_guard():
        try:
            if source is None:
                digest, size, comp = _store_stream(store, sys.stdin.buffer)
            else:
                with open(source, "rb") as fh:
                    digest, size, comp = _store_stream(store, fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"{source} does not exist.") from exc
        tmp = store.new_rootfs_tmp(digest)
        try:
            def unpack() -> tuple[str, int]:
                with open(store.blob_path(digest), "rb") as fh, Applier(tmp) as applier:
                    return apply_layer(applier, fh, name=str(source or "stdin"))

            diff_id, total = await anyio.to_thread.run_sync(unpack)
            plat = Platform.parse(platform) if platform else Platform.host()
            cfg: dict[str, Any] = {}
            apply_changes(cfg, changes)
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            config: dict[str, Any] = {
                "architecture": plat.architecture,
                "os": plat.os,
                "created": created,
                "config": cfg,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": created, "created_by": "opencontainer import",
                             "comment": message}],
            }
            if plat.variant:
                config["variant"] = plat.variant
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            config_digest = store.write_blob(config_bytes)
            layers = (LayerInfo(digest, size, OCI_LAYER[comp], diff_id),)
            manifest_digest = store.write_blob(_manifest(config_digest, len(config_bytes), layers))
            rootfs = store.rootfs_path(config_digest)
            if rootfs.exists():
                remove_tree(tmp)
            else:
                os.rename(tmp, rootfs)
            (store.rootfs_dir / f".{config_digest.split(':', 1)[1]}.size").write_text(str(total))
        except BaseException:
            remove_tree(tmp)
            raise
        return store.add_image(
            reference=reference, digest=manifest_digest, config_digest=config_digest,
            layers=layers, size=total, media_type=OCI_MANIFEST,
        )


__all__ = ["DOCKER_MANIFEST", "apply_changes", "import_rootfs", "load", "save"]
