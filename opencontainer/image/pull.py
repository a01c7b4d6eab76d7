"""Pulling: resolve the reference, pick the platform, download and unpack, record.

``pull`` downloads every missing layer concurrently (``concurrency`` at a time, in layer order)
straight into the blob store while one worker thread applies the layers in order as they
arrive (see :mod:`.unpack` for why). The tree is renamed into place only when every blob and
every diff_id verified; then the manifest is stored and the reference recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.from_thread
import anyio.to_thread
import structlog

from .._version import __version__
from ..engine.events import Event, LayerDone, LayerProgress, Pulled, PullStarted
from ..errors import (
    DigestMismatch,
    ImageNotFound,
    OpenContainerError,
    RegistryError,
    UnpackError,
)
from .auth import Authenticator, Credentials, DockerConfig
from .platform import Platform, select_manifest
from .policy import POLICIES, local_image
from .reference import parse_reference
from .registries_conf import RegistriesConf
from .registries_conf import load as load_registries_conf
from .registry import INDEX_TYPES, Manifest, RegistryClient, RetryPolicy
from .store import ImageRecord, ImageStore, LayerInfo, flock_async, remove_tree
from .unpack import Aborted, LayerSource, unpack_layers

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 3
PROGRESS_EVERY = 512 * 1024

ProgressFn = Callable[[Event], None]
# blobs are hashed as sent: no transport compression
SESSION_HEADERS = {"Accept-Encoding": "identity", "User-Agent": f"opencontainer/{__version__}"}


class _Emitter:
    def __init__(self, ref: str, bus: Any, progress: ProgressFn | None) -> None:
        self.ref = ref
        self.bus = bus
        self.progress = progress

    def __call__(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.publish_nowait(event)
        if self.progress is not None:
            self.progress(event)


_flock = flock_async  # the store's: commit and build take it without this module


async def _resolve(
    session: aiohttp.ClientSession,
    conf: RegistriesConf,
    ref_text: str,
    auth: Authenticator,
    retry: RetryPolicy,
) -> tuple[RegistryClient, Manifest]:
    ref = parse_reference(ref_text)
    endpoints = conf.endpoints(ref)
    error: OpenContainerError | None = None
    for ep in endpoints:
        client = RegistryClient(session, ep, auth, retry=retry, display=ref.familiar_name())
        try:
            manifest = await client.get_manifest(ref.reference, shown=ref.familiar())
            return client, manifest
        except OpenContainerError as exc:
            if not ep.mirror:
                raise
            log.info("mirror failed, trying the next source", mirror=ep.host, error=str(exc))
            error = exc
    assert error is not None
    raise error


async def pull(
    ref: str,
    *,
    paths: Any,
    platform: str | None = None,
    bus: Any = None,
    registries_conf: RegistriesConf | Path | None = None,
    docker_config: DockerConfig | Path | None = None,
    quiet: bool = False,
    env: Mapping[str, str] | None = None,
    credentials: Mapping[str, Credentials] | None = None,
    progress: ProgressFn | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ImageRecord:
    """Pull ``ref`` into the store of ``paths`` and return its record."""
    env = os.environ if env is None else env
    parsed = parse_reference(ref)
    name = str(parsed)
    emit = _Emitter(name, bus, None if quiet else progress)
    conf = (
        registries_conf
        if isinstance(registries_conf, RegistriesConf)
        else load_registries_conf(env, path=registries_conf)
    )
    dconf = (
        docker_config
        if isinstance(docker_config, DockerConfig)
        else DockerConfig.from_env(env, docker_config)
    )
    auth = Authenticator(dconf, credentials)
    wanted = Platform.parse(platform) if platform else Platform.host()
    retry = retry or RetryPolicy()
    store = ImageStore(paths.store)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=connector, auto_decompress=False, headers=SESSION_HEADERS
    ) as session:
        client, manifest = await _resolve(session, conf, name, auth, retry)
        index: Manifest | None = None
        if manifest.media_type in INDEX_TYPES or "manifests" in manifest.json():
            index = manifest
            desc = select_manifest(
                index.json(), wanted, explicit=platform is not None, name=parsed.familiar()
            )
            manifest = await client.get_manifest(str(desc["digest"]), shown=parsed.familiar())
        m = manifest.json()
        if "config" not in m or "layers" not in m:
            raise RegistryError(f"the manifest of {parsed.familiar()} has no config or layers.")
        config_digest = str(m["config"]["digest"])
        layers = tuple(
            LayerInfo(
                digest=str(layer["digest"]),
                size=int(layer.get("size", 0)),
                media_type=str(layer.get("mediaType", "")),
            )
            for layer in m["layers"]
        )
        store.root.mkdir(parents=True, exist_ok=True)
        with store.pull_guard():
            if not store.has_blob(config_digest):
                store.write_blob(await client.get_blob_bytes(config_digest), config_digest)
            config = json.loads(store.read_blob(config_digest))
            if platform is not None and index is None and not wanted.matches(config):
                actual = Platform(
                    str(config.get("os")), str(config.get("architecture")), config.get("variant")
                )
                raise ImageNotFound(
                    f"image {parsed.familiar()} was found but does not match the specified "
                    f"platform: wanted {wanted}, actual {actual}."
                )
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
            if len(diff_ids) != len(layers):
                raise RegistryError(
                    f"the config of {parsed.familiar()} lists {len(diff_ids)} layers but the "
                    f"manifest has {len(layers)}."
                )
            layers = tuple(
                LayerInfo(lyr.digest, lyr.size, lyr.media_type, str(diff))
                for lyr, diff in zip(layers, diff_ids, strict=True)
            )
            emit(PullStarted(ref=name, layers=len(layers)))
            size = await _materialise(store, client, config_digest, layers, emit, name, concurrency)
            store.write_blob(manifest.data, manifest.digest)
            if index is not None:
                store.write_blob(index.data, index.digest)
            rec = store.add_image(
                reference=name,
                digest=manifest.digest,
                config_digest=config_digest,
                layers=layers,
                size=size,
                index_digest=index.digest if index else None,
                media_type=manifest.media_type,
            )
    emit(Pulled(ref=name, digest=index.digest if index else manifest.digest))
    return rec


async def _materialise(
    store: ImageStore,
    client: RegistryClient,
    config_digest: str,
    layers: tuple[LayerInfo, ...],
    emit: _Emitter,
    name: str,
    concurrency: int,
) -> int:
    """Make sure every blob is stored and the rootfs exists; returns the unpacked size."""
    rootfs = store.rootfs_path(config_digest)
    hexpart = config_digest.split(":", 1)[1]
    size_file = store.rootfs_dir / f".{hexpart}.size"
    async with _flock(store.lock_path(f"rootfs-{hexpart}")):
        need_tree = not rootfs.is_dir()
        missing = [lyr for lyr in layers if not store.has_blob(lyr.digest)]
        if not need_tree and not missing:
            for lyr in layers:
                emit(LayerDone(ref=name, digest=lyr.digest, size=lyr.size, cached=True))
            return _read_size(size_file, layers)
        store.blobs.mkdir(parents=True, exist_ok=True)
        sources = [
            LayerSource.complete(lyr.digest, store.blob_path(lyr.digest))
            if store.has_blob(lyr.digest)
            else LayerSource(
                lyr.digest, store.partial_path(lyr.digest), store.blob_path(lyr.digest)
            )
            for lyr in layers
        ]
        sem = anyio.Semaphore(max(1, concurrency))

        async def download(lyr: LayerInfo, src: LayerSource) -> None:
            try:
                async with sem, _flock(store.lock_path(lyr.digest.split(":", 1)[1])):
                    if store.has_blob(lyr.digest):  # another process finished it meanwhile
                        src.finish()
                        emit(LayerDone(ref=name, digest=lyr.digest, size=lyr.size, cached=True))
                        return
                    last = [0]

                    def on_progress(done: int) -> None:
                        src.advance(done)
                        if done - last[0] >= PROGRESS_EVERY or done == lyr.size:
                            last[0] = done
                            emit(LayerProgress(ref=name, digest=lyr.digest, done=done,
                                               total=lyr.size))

                    await client.download_blob(
                        lyr.digest, src.partial, size=lyr.size or None,
                        on_started=src.started, on_progress=on_progress,
                    )
                    src.finish()
                emit(LayerDone(ref=name, digest=lyr.digest, size=lyr.size))
            except BaseException as exc:
                if isinstance(exc, Exception):
                    for s in sources:
                        s.fail(exc)
                else:
                    for s in sources:
                        s.abort()
                    raise

        for lyr in layers:
            if store.has_blob(lyr.digest):
                emit(LayerDone(ref=name, digest=lyr.digest, size=lyr.size, cached=True))
            else:
                emit(LayerProgress(ref=name, digest=lyr.digest, done=0, total=lyr.size))

        if not need_tree:
            failure: BaseException | None = None
            async with anyio.create_task_group() as tg:
                for lyr, src in zip(layers, sources, strict=True):
                    if lyr in missing:
                        tg.start_soon(download, lyr, src)
            for src in sources:  # surface a download failure
                if src.error is not None:
                    failure = src.error
            if failure is not None:
                raise failure
            return _read_size(size_file, layers)

        store.sweep_rootfs_tmp(config_digest)
        tmp = store.new_rootfs_tmp(config_digest)
        failure = None
        total = 0
        try:
            async with anyio.create_task_group() as tg:
                for lyr, src in zip(layers, sources, strict=True):
                    if lyr in missing:
                        tg.start_soon(download, lyr, src)
                def applied(i: int, size: int) -> None:
                    event = LayerProgress(
                        ref=name, digest=layers[i].digest, done=size, total=size,
                        phase="extracting",
                    )
                    anyio.from_thread.run_sync(emit, event)

                settled = False  # the unpacking thread has returned (or raised)
                watch = anyio.CancelScope()

                async def abort_when_cancelled() -> None:
                    # the unpacking thread cannot be cancelled: when we are (Ctrl-C), it is
                    # told to stop instead of waiting for bytes a stalled download never sends
                    with watch:
                        try:
                            await anyio.sleep_forever()
                        finally:
                            if not settled:
                                for s in sources:
                                    s.abort()

                tg.start_soon(abort_when_cancelled)
                try:
                    total = await anyio.to_thread.run_sync(
                        lambda: unpack_layers(
                            tmp, sources, [lyr.diff_id or None for lyr in layers],
                            on_layer_done=applied,
                        )
                    )
                except UnpackError as exc:
                    # let the downloads finish: a corrupt download explains a broken layer
                    failure = exc
                except BaseException as exc:
                    failure = exc
                    for s in sources:
                        s.abort()
                    tg.cancel_scope.cancel()
                finally:
                    settled = True
                    watch.cancel()
            if failure is not None:
                errors = [e for e in (s.error for s in sources) if e is not None]
                mismatches = [e for e in errors if isinstance(e, DigestMismatch)]
                if mismatches:
                    raise mismatches[0]
                if isinstance(failure, Aborted) and errors:
                    raise errors[0]
                raise failure
            os.rename(tmp, rootfs)
        except BaseException:
            remove_tree(tmp)  # sync: must also run when cancelled
            raise
        with contextlib.suppress(OSError):
            size_file.write_text(str(total))
        return total


def _read_size(size_file: Path, layers: tuple[LayerInfo, ...]) -> int:
    try:
        return int(size_file.read_text())
    except (OSError, ValueError):
        return sum(lyr.size for lyr in layers)


async def ensure_image(
    ref: str,
    *,
    paths: Any,
    policy: str = "missing",
    platform: str | None = None,
    bus: Any = None,
    **kwargs: Any,
) -> ImageRecord:
    """The local image for ``ref``, pulling according to the compose ``pull_policy``."""
    rec = local_image(ref, ImageStore(paths.store), policy)
    if rec is not None:
        return rec
    return await pull(ref, paths=paths, platform=platform, bus=bus, **kwargs)


__all__ = ["POLICIES", "ensure_image", "pull"]
