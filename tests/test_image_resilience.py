"""Corrupt blobs, kill -9 mid-pull and resume, concurrent pulls (integration)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.errors import DigestMismatch
from opencontainer.image.pull import pull
from opencontainer.image.store import ImageStore
from opencontainer.paths import Paths

from .fixtures.trees import scan_tree
from .image_helpers import RegistryProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(registry: Any, test_images: Any) -> Iterator[RegistryProxy]:
    p = RegistryProxy(registry.url).start()
    try:
        yield p
    finally:
        p.stop()


def _paths(root: Path) -> Paths:
    return Paths.from_env({"OPENCONTAINER_HOME": str(root), "HOME": str(root)})


def _assert_nothing_stored(store: ImageStore, digests: list[str]) -> None:
    assert store.list_images() == []
    for d in digests:
        assert not store.has_blob(d)
        assert not store.partial_path(d).exists()
    # other layers cancelled mid-download may stay as resumable *.partial, nothing else
    if store.rootfs_dir.exists():
        assert [p.name for p in store.rootfs_dir.iterdir() if not p.name.startswith(".")] == []
        assert not [p for p in store.rootfs_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("what", ["layer", "config"])
async def test_corrupted_blob_is_rejected(
    what: str, proxy: RegistryProxy, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["layers"]
    digest = info.layers[-1]["digest"] if what == "layer" else info.config_digest
    proxy.corrupt.add(digest)
    paths = _paths(tmp_path / "oc")
    ref = f"{proxy.host}/{info.repository}:{info.tag}"
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        await pull(ref, paths=paths, env={"HOME": str(tmp_path)})
    _assert_nothing_stored(ImageStore(paths.store), [digest])
    # the same store pulls fine once the proxy behaves
    proxy.corrupt.clear()
    rec = await pull(ref, paths=paths, env={"HOME": str(tmp_path)})
    assert rec.digest == info.digest


def test_corrupted_blob_cli_message(oc: Any, proxy: RegistryProxy, test_images: Any) -> None:
    info = test_images["busybox"]
    proxy.corrupt.add(info.layers[0]["digest"])
    r = oc("pull", f"{proxy.host}/{info.repository}:{info.tag}")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: blob sha256:")
    assert "nothing was stored" in lines[0]


def test_kill9_mid_pull_then_resume(
    oc_env: dict[str, str], proxy: RegistryProxy, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["busybox"]
    layer = max(info.layers, key=lambda x: x["size"])
    proxy.stall[layer["digest"]] = layer["size"] // 2
    ref = f"{proxy.host}/{info.repository}:{info.tag}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencontainer", "pull", ref], env=oc_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    store = ImageStore(Paths.from_env(oc_env).store)
    try:
        assert proxy.stalled.wait(60), "the pull never reached the stalled blob"
        partial = store.partial_path(layer["digest"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size >= layer["size"] // 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # nothing half-visible: no image, no tree, the layer only as *.partial
    assert store.list_images() == []
    assert not store.has_blob(layer["digest"])
    assert partial.exists()
    assert not [p for p in store.rootfs_dir.iterdir() if not p.name.startswith(".")]

    proxy.release()
    proxy.requests.clear()
    r = subprocess.run(
        [sys.executable, "-m", "opencontainer", "pull", ref], env=oc_env,
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    ranges = [rng for (_, path, rng) in proxy.requests if path.endswith(layer["digest"])]
    assert ranges and ranges[0] is not None and ranges[0].startswith("bytes=")  # resumed
    rec = store.resolve(ref)
    assert rec.digest == info.digest
    assert not list(store.blobs.glob("*.partial"))
    assert not [p for p in store.rootfs_dir.iterdir() if p.name.startswith(".tmp-")]
    # identical to a clean pull elsewhere
    clean_env = {**oc_env, "OPENCONTAINER_HOME": str(tmp_path / "clean")}
    r = subprocess.run(
        [sys.executable, "-m", "opencontainer", "pull", info.reference], env=clean_env,
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    clean = ImageStore(Paths.from_env(clean_env).store).resolve(info.reference)
    assert clean.config_digest == rec.config_digest
    assert [lyr.digest for lyr in clean.layers] == [lyr.digest for lyr in rec.layers]
    assert scan_tree(clean.rootfs) == scan_tree(rec.rootfs)


def test_concurrent_pulls_of_the_same_image(oc_env: dict[str, str], test_images: Any) -> None:
    info = test_images["layers"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "opencontainer", "pull", info.reference], env=oc_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    store = ImageStore(Paths.from_env(oc_env).store)
    images = store.list_images()
    assert len(images) == 1 and images[0].digest == info.digest
    assert not list(store.blobs.glob("*.partial"))
    refs = json.loads(store.refs_file.read_text())
    assert list(refs["refs"].values()) == [info.digest]
    assert [p.name for p in store.rootfs_dir.iterdir() if not p.name.startswith(".")] == [
        info.config_digest.split(":", 1)[1]
    ]


async def test_transient_errors_are_retried(
    proxy: RegistryProxy, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["busybox"]
    layer = info.layers[0]["digest"]
    proxy.fail_first[layer] = 2
    proxy.fail_first[info.tag] = 1  # the manifest too
    rec = await pull(f"{proxy.host}/{info.repository}:{info.tag}", paths=_paths(tmp_path / "oc"),
                     env={"HOME": str(tmp_path)})
    assert rec.digest == info.digest
    assert proxy.fail_first[layer] == 0


async def test_redirect_drops_authorization_across_hosts(
    registry: Any, test_images: Any, tmp_path: Path
) -> None:
    import base64

    from opencontainer.image.auth import Credentials

    info = test_images["busybox"]
    storage = RegistryProxy(registry.url).start()  # the "blob storage" on another host name
    front = RegistryProxy(registry.url).start()
    try:
        port = storage.host.rsplit(":", 1)[1]
        front.redirect_blobs_to = f"http://localhost:{port}"
        front.require_basic = "Basic " + base64.b64encode(b"u:p").decode()
        rec = await pull(
            f"{front.host}/{info.repository}:{info.tag}", paths=_paths(tmp_path / "oc"),
            env={"HOME": str(tmp_path)}, credentials={front.host: Credentials("u", "p")},
        )
        assert rec.digest == info.digest
        assert any(auth for _, auth in front.auth_seen)
        blob_requests = [(p, a) for p, a in storage.auth_seen if "/blobs/" in p]
        assert blob_requests and all(a is None for _, a in blob_requests)
    finally:
        front.stop()
        storage.stop()


@pytest.mark.parametrize("ignore_range", [False, True], ids=["range", "no-range"])
async def test_resume_from_existing_partial(
    ignore_range: bool, proxy: RegistryProxy, registry: Any, test_images: Any, tmp_path: Path
) -> None:
    from .fixtures.push import RegistryClient

    info = test_images["busybox"]
    layer = info.layers[0]["digest"]
    blob = RegistryClient(registry.url).get_blob(info.repository, layer)
    paths = _paths(tmp_path / "oc")
    store = ImageStore(paths.store)
    store.blobs.mkdir(parents=True)
    store.partial_path(layer).write_bytes(blob[: len(blob) // 3])
    proxy.ignore_range = ignore_range
    rec = await pull(f"{proxy.host}/{info.repository}:{info.tag}", paths=paths,
                     env={"HOME": str(tmp_path)})
    assert rec.digest == info.digest
    assert store.blob_path(layer).read_bytes() == blob
    ranges = [r for _, p, r in proxy.requests if p.endswith(layer)]
    assert ranges == [f"bytes={len(blob) // 3}-"]


async def test_corrupt_partial_is_discarded(
    proxy: RegistryProxy, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["busybox"]
    layer = info.layers[0]["digest"]
    paths = _paths(tmp_path / "oc")
    store = ImageStore(paths.store)
    store.blobs.mkdir(parents=True)
    store.partial_path(layer).write_bytes(b"garbage that is not the blob")
    ref = f"{proxy.host}/{info.repository}:{info.tag}"
    with pytest.raises(DigestMismatch):
        await pull(ref, paths=paths, env={"HOME": str(tmp_path)})
    assert not store.partial_path(layer).exists()
    assert (await pull(ref, paths=paths, env={"HOME": str(tmp_path)})).digest == info.digest
