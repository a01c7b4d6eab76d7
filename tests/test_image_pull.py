"""Pulling the fixture images from a real docker-registry (integration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencontainer.engine.events import Event, LayerDone, Pulled, PullStarted
from opencontainer.errors import ImageNotFound, RegistryError
from opencontainer.image.platform import Platform
from opencontainer.image.pull import ensure_image, pull
from opencontainer.image.registries_conf import load as load_conf
from opencontainer.image.store import ImageStore
from opencontainer.paths import Paths

from .fixtures.trees import TreeEntry, scan_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env({"OPENCONTAINER_HOME": str(tmp_path / "oc"), "HOME": str(tmp_path)})


@pytest.fixture
def env(tmp_path: Path, registries_conf: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path / "home"),
        "OPENCONTAINER_REGISTRIES_CONF": str(registries_conf),
    }


def rootless(entry: TreeEntry) -> TreeEntry:
    """What an unprivileged unpack keeps of an expected entry."""
    mode = entry.mode
    if entry.kind == "dir":
        mode |= 0o700
    elif entry.kind == "file":
        mode |= 0o400
    return attrs.evolve(entry, mode=mode, uid=0, gid=0, content=None)


def comparable(tree: dict[str, TreeEntry]) -> dict[str, TreeEntry]:
    return {k: rootless(v) for k, v in tree.items()}


@pytest.mark.parametrize("name", ["busybox", "busybox-oci", "zstd", "uncompressed", "layers"])
async def test_pull_fixture_images(
    name: str, test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    info = test_images[name]
    events: list[Event] = []
    rec = await pull(info.reference, paths=paths, env=env, progress=events.append)
    assert rec.digest == info.digest
    assert rec.rootfs.is_dir()
    assert (rec.rootfs / "bin").exists() or info.expected_tree is not None
    if info.config_digest:
        assert rec.config_digest == info.config_digest
    assert rec.config.cmd == tuple(info.config.get("Cmd") or ()) or info.config.get("Cmd") is None
    assert isinstance(events[0], PullStarted) and isinstance(events[-1], Pulled)
    assert sum(isinstance(e, LayerDone) for e in events) == len(info.layers)
    if info.expected_tree is not None:
        assert comparable(scan_tree(rec.rootfs)) == comparable(dict(info.expected_tree))
    # resolve from the store; a second pull is a no-op that reuses everything
    store = ImageStore(paths.store)
    assert store.resolve(info.reference).digest == info.digest
    again: list[Event] = []
    rec2 = await pull(info.reference, paths=paths, env=env, progress=again.append)
    assert rec2.rootfs == rec.rootfs
    assert all(e.cached for e in again if isinstance(e, LayerDone))
    assert not list(store.blobs.glob("*.partial"))


async def test_docker_hub_name_goes_to_the_mirror(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    info = test_images["busybox"]
    assert info.docker_reference
    rec = await pull(info.docker_reference, paths=paths, env=env)
    assert rec.digest == info.digest
    store = ImageStore(paths.store)
    assert store.resolve("busybox").digest == info.digest  # docker.io/library/busybox:latest


async def test_multiarch_picks_host_and_explicit_platform(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    info = test_images["multiarch"]
    host = Platform.host()
    rec = await pull(info.reference, paths=paths, env=env)
    assert rec.index_digest == info.digest
    expected_host = next(
        d for p, d in info.platforms.items() if p.split("/")[1] == host.architecture
    )
    assert rec.digest == expected_host
    assert rec.config.architecture == host.architecture
    arm = await pull(info.reference, paths=paths, env=env, platform="linux/arm64")
    assert arm.digest == info.platforms["linux/arm64/v8"]
    assert arm.config.architecture == "arm64"
    with pytest.raises(ImageNotFound, match="no matching manifest for linux/s390x"):
        await pull(info.reference, paths=paths, env=env, platform="linux/s390x")


async def test_unknown_tag_and_repo(test_images: Any, registry: Any, paths: Paths,
                                    env: dict[str, str]) -> None:
    with pytest.raises(ImageNotFound, match=r"manifest for .* not found"):
        await pull(f"{registry.host}/library/busybox:no-such-tag", paths=paths, env=env)
    with pytest.raises(ImageNotFound):
        await pull(f"{registry.host}/nope/nothing:latest", paths=paths, env=env)
    assert not ImageStore(paths.store).list_images()


async def test_unreachable_and_blocked(tmp_path: Path, paths: Paths) -> None:
    from .fixtures.procs import free_port

    port = free_port()
    with pytest.raises(RegistryError, match="cannot reach registry"):
        await pull(f"127.0.0.1:{port}/x/y:1", paths=paths, env={"HOME": str(tmp_path)})
    conf = tmp_path / "blocked.conf"
    conf.write_text('[[registry]]\nprefix = "evil.example.com"\nblocked = true\n')
    with pytest.raises(RegistryError, match="blocked"):
        await pull("evil.example.com/x:1", paths=paths, registries_conf=load_conf(path=conf))


async def test_ensure_image_policies(test_images: Any, paths: Paths, env: dict[str, str]) -> None:
    ref = test_images["busybox"].reference
    with pytest.raises(ImageNotFound, match="opencontainer pull"):
        await ensure_image(ref, paths=paths, policy="never", env=env)
    rec = await ensure_image(ref, paths=paths, policy="missing", env=env)
    assert (await ensure_image(ref, paths=paths, policy="never")).digest == rec.digest
    assert (await ensure_image(ref, paths=paths, policy="always", env=env)).digest == rec.digest


async def test_shared_layers_stored_once_and_rmi_gc(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    a = await pull(test_images["busybox"].reference, paths=paths, env=env)
    b = await pull(test_images["busybox-oci"].reference, paths=paths, env=env)
    store = ImageStore(paths.store)
    assert len(store.list_images()) == 2
    blobs_before = {p.name for p in store.blobs.iterdir()}
    store.remove(test_images["busybox"].reference)
    assert not a.rootfs.exists() or a.config_digest == b.config_digest
    assert b.rootfs.is_dir()
    blobs_after = {p.name for p in store.blobs.iterdir()}
    assert blobs_after <= blobs_before
    for layer in b.layers:
        assert store.has_blob(layer.digest)
    refs = json.loads(store.refs_file.read_text())
    assert test_images["busybox"].reference not in refs["refs"]


@pytest.mark.slow
async def test_pull_service_images_by_docker_hub_name(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    from opencontainer.cli.images import image_inspect_dict

    pg_info = test_images["postgres"]
    events: list[Event] = []
    pg = await pull("postgres:15", paths=paths, env=env, progress=events.append)
    assert pg.digest == pg_info.digest
    assert pg.reference == "docker.io/library/postgres:15"
    assert pg.config.exposed_ports == ("5432/tcp",)
    assert pg.config.stop_signal == "SIGINT"
    assert (pg.rootfs / "usr" / "lib" / "postgresql").is_dir()
    # redis shares layers with postgres: those are not downloaded again
    again: list[Event] = []
    redis = await pull("redis:7", paths=paths, env=env, progress=again.append)
    assert redis.config.cmd and redis.config.cmd[0] == "redis-server"
    shared = {lyr.digest for lyr in pg.layers}
    assert shared & {lyr.digest for lyr in redis.layers}
    for e in again:
        if isinstance(e, LayerDone):
            assert e.cached == (e.digest in shared)
    doc = image_inspect_dict(ImageStore(paths.store).resolve("postgres:15"))
    assert doc["Id"] == pg.config_digest
    assert doc["RepoTags"] == ["postgres:15"]
    assert doc["RepoDigests"] == [f"postgres@{pg.digest}"]
    assert doc["Config"]["ExposedPorts"] == {"5432/tcp": {}}
    assert doc["Os"] == "linux" and doc["RootFS"]["Layers"] == list(pg.config.diff_ids)
    json.dumps(doc)


async def test_explicit_platform_mismatch_on_single_manifest(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    other = "linux/arm64" if Platform.host().architecture != "arm64" else "linux/amd64"
    with pytest.raises(ImageNotFound, match="does not match the specified platform"):
        await pull(test_images["busybox-oci"].reference, paths=paths, env=env, platform=other)
    host = str(Platform.host())
    rec = await pull(test_images["busybox-oci"].reference, paths=paths, env=env, platform=host)
    assert rec.rootfs.is_dir()


async def test_concurrent_pulls_in_one_process(
    test_images: Any, paths: Paths, env: dict[str, str]
) -> None:
    import anyio

    refs = [test_images["layers"].reference] * 2 + [test_images["busybox"].reference]
    results: list[Any] = []

    async def one(ref: str) -> None:
        results.append(await pull(ref, paths=paths, env=env))

    async with anyio.create_task_group() as tg:
        for ref in refs:
            tg.start_soon(one, ref)
    assert {r.digest for r in results} == {
        test_images["layers"].digest, test_images["busybox"].digest
    }
    store = ImageStore(paths.store)
    assert len(store.list_images()) == 2
    assert not list(store.blobs.glob("*.partial"))
