"""The synthetic images' blobs and expected trees agree with each other and with real tools."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

from tests.fixtures import images as recipes
from tests.fixtures import layout as L
from tests.fixtures.publish import ImageInfo, ImageSet
from tests.fixtures.push import RegistryClient
from tests.fixtures.registry import Registry
from tests.fixtures.trees import TreeEntry, apply_layer_tars, scan_tree

pytestmark = pytest.mark.integration

TREE_IMAGES = ("busybox", "busybox-oci", "layers", "zstd", "uncompressed")


def _layer_tars(registry: Registry, info: ImageInfo) -> list[bytes]:
    client = RegistryClient(registry.url)
    out = []
    for desc in info.layers:
        blob = client.get_blob(info.repository, desc["digest"])
        assert L.sha256_digest(blob) == desc["digest"]
        if desc["mediaType"].endswith("gzip"):
            blob = gzip.decompress(blob)
        elif desc["mediaType"].endswith("zstd"):
            blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        out.append(blob)
    return out


def test_layers_expected_tree_is_self_consistent() -> None:
    tars = [L.layer_tar(recipes.layers_layer1()), L.layer_tar(recipes.layers_layer2())]
    assert apply_layer_tars(tars) == recipes.layers_expected_tree()
    tree = recipes.layers_expected_tree()
    assert len(recipes.LONG_PATH) > 100
    assert "topfile" not in tree and "etc/subfile" not in tree
    assert [p for p in tree if p.startswith("opq/")] == ["opq/new.txt"]
    assert tree["bin/suid"].mode == 0o4755
    assert tree["data/hard.txt"].hardlink_of == "data/a.txt"


@pytest.mark.parametrize("name", TREE_IMAGES)
def test_pushed_layers_produce_expected_tree(
    registry: Registry, test_images: ImageSet, name: str
) -> None:
    info = test_images[name]
    assert info.expected_tree is not None
    assert apply_layer_tars(_layer_tars(registry, info)) == info.expected_tree


def test_image_configs_match_manifest(registry: Registry, test_images: ImageSet) -> None:
    client = RegistryClient(registry.url)
    for name in (*TREE_IMAGES, "multiarch"):  # (.values() would pull in the lazy ones)
        info = test_images[name]
        if info.config_digest is None:
            continue
        cfg = json.loads(client.get_blob(info.repository, info.config_digest))
        assert cfg["config"] == info.config
        assert len(cfg["rootfs"]["diff_ids"]) == len(info.layers)


def _comparable(tree: dict[str, TreeEntry]) -> dict[str, tuple[str, str | None, str | None]]:
    return {p: (e.kind, e.target, e.sha256) for p, e in tree.items()}


@pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("umoci")),
                    reason="skopeo/umoci not installed")
@pytest.mark.parametrize("name", ["layers", "busybox"])
def test_umoci_unpacks_to_expected_tree(
    registry: Registry, test_images: ImageSet, tmp_path: Path, name: str
) -> None:
    """An independent implementation (skopeo copy + umoci unpack) agrees with the tree."""
    info = test_images[name]
    assert info.expected_tree is not None
    layout_dir = tmp_path / "oci"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
         f"docker://{info.reference}", f"oci:{layout_dir}:latest"],
        check=True, capture_output=True, timeout=120,
    )
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout_dir}:latest",
                    str(bundle)], check=True, capture_output=True, timeout=120)
    got = scan_tree(bundle / "rootfs")
    assert _comparable(got) == _comparable(dict(info.expected_tree))
    for path, entry in info.expected_tree.items():
        if entry.kind == "file":
            assert got[path].mode == entry.mode, path
        if entry.hardlink_of:
            assert got[path].hardlink_of == entry.hardlink_of
