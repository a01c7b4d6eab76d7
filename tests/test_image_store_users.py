"""Containers register as users of an unpacked image tree; ``rmi`` and ``gc`` respect them."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from opencontainer.cli.main import CliContext, main
from opencontainer.errors import ImageError
from opencontainer.image.store import ImageRecord, ImageStore, LayerInfo

from .image_helpers import f, make_tar, sha


def add_test_image(store: ImageStore, reference: str | None, *, marker: str = "x") -> ImageRecord:
    """A one-layer image stored without a registry: blobs, unpacked tree, size file, record."""
    layer = make_tar([f("etc/marker", marker)])
    layer_digest = store.write_blob(layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
        }
    ).encode()
    config_digest = store.write_blob(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": config_digest, "size": len(config)},
            "layers": [{"digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    digest = store.write_blob(manifest)
    tree = store.rootfs_path(config_digest)
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "marker").write_text(marker)
    hexpart = config_digest.split(":", 1)[1]
    (store.rootfs_dir / f".{hexpart}.size").write_text(str(len(marker)))
    return store.add_image(
        reference=reference,
        digest=digest,
        config_digest=config_digest,
        layers=(LayerInfo(layer_digest, len(layer), "application/vnd.oci.image.layer.v1.tar"),),
        size=len(layer),
    )


def size_file(store: ImageStore, rec: ImageRecord) -> Path:
    return store.rootfs_dir / f".{rec.rootfs.name}.size"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def container(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "containers" / name
    path.mkdir(parents=True)
    return path


def test_add_list_remove_users(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "example.com/app:1")
    assert store.rootfs_users(rec.rootfs) == []
    one, two = container(tmp_path, "one"), container(tmp_path, "two")
    store.add_rootfs_user(rec.rootfs, one)
    store.add_rootfs_user(rec.rootfs, one)  # idempotent
    store.add_rootfs_user(rec.rootfs, two)
    assert store.rootfs_users(rec.rootfs) == [one, two]

    markers = sorted((store.users_dir / rec.rootfs.name).iterdir())
    assert len(markers) == 2
    key = hashlib.sha256(str(one).encode()).hexdigest()
    assert any(key.startswith(m.name) and len(m.name) >= 16 for m in markers)
    assert sorted(m.read_text() for m in markers) == [str(one), str(two)]

    store.remove_rootfs_user(rec.rootfs, one)
    assert store.rootfs_users(rec.rootfs) == [two]
    store.remove_rootfs_user(rec.rootfs, one)  # already gone: fine
    store.remove_rootfs_user(rec.rootfs, two)
    assert store.rootfs_users(rec.rootfs) == []
    assert not (store.users_dir / rec.rootfs.name).exists()


def test_relative_container_dir_is_made_absolute(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = add_test_image(store, "app:1")
    cdir = container(tmp_path, "rel")
    monkeypatch.chdir(cdir.parent)
    store.add_rootfs_user(rec.rootfs, Path("rel"))
    assert store.rootfs_users(rec.rootfs) == [cdir]
    store.remove_rootfs_user(rec.rootfs, cdir)
    assert store.rootfs_users(rec.rootfs) == []


def test_stale_marker_is_not_a_user_and_is_cleaned(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    alive, gone = container(tmp_path, "alive"), container(tmp_path, "gone")
    store.add_rootfs_user(rec.rootfs, alive)
    store.add_rootfs_user(rec.rootfs, gone)
    shutil.rmtree(gone)
    assert store.rootfs_users(rec.rootfs) == [alive]
    assert [m.read_text() for m in (store.users_dir / rec.rootfs.name).iterdir()] == [str(alive)]

    shutil.rmtree(alive)
    assert store.rootfs_users(rec.rootfs) == []
    assert not (store.users_dir / rec.rootfs.name).exists()


def test_garbage_marker_is_stale(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    folder = store.users_dir / rec.rootfs.name
    folder.mkdir(parents=True)
    (folder / ("0" * 32)).write_text("")  # empty: must not count as the current directory
    (folder / ("1" * 32)).write_text("relative/dir")
    assert store.rootfs_users(rec.rootfs) == []
    assert not folder.exists()


def test_rmi_refused_while_used_and_force_keeps_tree(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "example.com/app:1")
    user = container(tmp_path, "web-1")
    store.add_rootfs_user(rec.rootfs, user)

    with pytest.raises(ImageError) as err:
        store.remove("example.com/app:1")
    assert str(err.value) == (
        'conflict: unable to remove repository reference "example.com/app:1" (must force) - '
        f"container web-1 is using its referenced image {rec.short_id}"
    )
    assert err.value.exit_code == 1
    assert store.resolve("example.com/app:1").digest == rec.digest  # nothing changed

    done = store.remove("example.com/app:1", force=True)
    assert done[0] == "Untagged: example.com/app:1"
    assert done[-1] == f"Deleted: {rec.config_digest}"
    assert store.list_images() == []
    assert (rec.rootfs / "etc" / "marker").read_text() == "x"
    assert size_file(store, rec).exists()

    store.gc()  # still used: kept
    assert rec.rootfs.is_dir() and size_file(store, rec).exists()

    store.remove_rootfs_user(rec.rootfs, user)
    store.gc()
    assert not rec.rootfs.exists()
    assert not size_file(store, rec).exists()
    assert list(store.blobs.iterdir()) == []


def test_untag_with_other_tags_is_allowed_while_used(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    store.tag("app:1", "app:2")
    store.add_rootfs_user(rec.rootfs, container(tmp_path, "c1"))
    assert store.remove("app:1") == ["Untagged: app:1"]
    assert store.resolve("app:2").digest == rec.digest
    with pytest.raises(ImageError, match="container c1 is using"):
        store.remove("app:2")


def test_rmi_by_id_is_refused_too(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    store.add_rootfs_user(rec.rootfs, container(tmp_path, "c1"))
    with pytest.raises(ImageError, match=f'reference "{rec.short_id}"'):
        store.remove(rec.short_id)


def test_stale_user_does_not_block_rmi(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    user = container(tmp_path, "c1")
    store.add_rootfs_user(rec.rootfs, user)
    shutil.rmtree(user)
    assert store.remove("app:1")[-1] == f"Deleted: {rec.config_digest}"
    assert not rec.rootfs.exists()
    assert not store.users_dir.joinpath(rec.rootfs.name).exists()


def test_gc_keeps_used_tree_of_untagged_image(store: ImageStore, tmp_path: Path) -> None:
    used = add_test_image(store, "app:1", marker="used")
    other = add_test_image(store, "other:1", marker="other")
    assert used.config_digest != other.config_digest
    user = container(tmp_path, "c1")
    store.add_rootfs_user(used.rootfs, user)
    # the record disappears behind the store's back (as after `rmi -f`, or an old refs.json)
    data = json.loads(store.refs_file.read_text())
    del data["refs"]["docker.io/library/app:1"]
    del data["images"][used.digest]
    store.refs_file.write_text(json.dumps(data))

    store.gc()
    assert used.rootfs.is_dir() and size_file(store, used).exists()
    assert other.rootfs.is_dir()
    assert [r.digest for r in store.list_images()] == [other.digest]
    # blobs only the unpacked tree needed may go; the other image's stay
    assert not store.has_blob(used.digest)
    assert store.has_blob(other.digest) and store.has_blob(other.config_digest)

    shutil.rmtree(user)  # the container vanished without unregistering: stale
    store.gc()
    assert not used.rootfs.exists() and not size_file(store, used).exists()
    assert other.rootfs.is_dir()


def test_gc_still_sweeps_unknown_trees(store: ImageStore, tmp_path: Path) -> None:
    rec = add_test_image(store, "app:1")
    store.add_rootfs_user(rec.rootfs, container(tmp_path, "c1"))
    leftover = store.rootfs_dir / ".tmp-0123456789abcdef-1-2"
    leftover.mkdir()
    orphan = store.rootfs_dir / ("f" * 64)
    orphan.mkdir()
    store.gc()
    assert rec.rootfs.is_dir()
    assert not leftover.exists() and not orphan.exists()


def run_cli(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"OPENCONTAINER_HOME": str(tmp_path / "oc-home"), "HOME": str(tmp_path)}
    code = main(list(argv), ctx=CliContext(stdout=out, stderr=err, env=env))
    return code, out.getvalue(), err.getvalue()


def test_cli_rmi_refused_then_forced(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "oc-home" / "data" / "store")
    rec = add_test_image(store, "busybox:latest")
    store.add_rootfs_user(rec.rootfs, container(tmp_path, "quirky_name"))

    code, out, err = run_cli(tmp_path, "rmi", "busybox")
    assert code == 1
    assert out == ""
    assert err == (
        'Error: conflict: unable to remove repository reference "busybox" (must force) - '
        f"container quirky_name is using its referenced image {rec.short_id}\n"
    )
    assert "Traceback" not in err

    code, out, err = run_cli(tmp_path, "images", "-q")
    assert (code, out.strip()) == (0, rec.short_id)

    code, out, err = run_cli(tmp_path, "rmi", "-f", "busybox")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Untagged: busybox:latest"
    assert lines[-1] == f"Deleted: {rec.config_digest}"
    assert rec.rootfs.is_dir()

    code, out, err = run_cli(tmp_path, "images")
    assert code == 0 and out.splitlines()[1:] == []
    code, out, err = run_cli(tmp_path, "images", "-q")
    assert (code, out) == (0, "")
