"""The plain registry fixture and the synthetic test images pushed to it."""

from __future__ import annotations

import gzip
import io
import json
import platform
import tarfile
from pathlib import Path

import pytest

from tests.fixtures import layout as L
from tests.fixtures.layout import sha256_digest
from tests.fixtures.procs import http_status
from tests.fixtures.publish import ImageSet, push_custom_image
from tests.fixtures.push import RegistryClient
from tests.fixtures.registry import Registry

pytestmark = pytest.mark.integration

SYNTHETIC = ("busybox", "busybox-oci", "layers", "zstd", "uncompressed", "multiarch")


def test_registry_answers(registry: Registry) -> None:
    assert registry.host.startswith("127.0.0.1:")
    assert registry.url == f"http://{registry.host}"
    assert http_status(registry.url + "/v2/") == 200


def test_all_synthetic_images_present(test_images: ImageSet) -> None:
    assert set(SYNTHETIC) <= set(test_images)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_manifest_by_tag_has_recorded_digest(
    registry: Registry, test_images: ImageSet, name: str
) -> None:
    info = test_images[name]
    assert info.reference == f"{registry.host}/{info.repository}:{info.tag}"
    client = RegistryClient(registry.url)
    resp = client.get_manifest(info.repository, info.tag)
    assert resp.headers["docker-content-digest"] == info.digest
    assert sha256_digest(resp.body) == info.digest
    assert resp.headers["content-type"] == info.media_type
    doc = json.loads(resp.body)
    children = [m["digest"] for m in doc.get("manifests", [])]
    manifests = [json.loads(client.get_manifest(info.repository, d).body) for d in children]
    for manifest in manifests or [doc]:
        for desc in [manifest["config"], *manifest["layers"]]:
            assert client.blob_exists(info.repository, desc["digest"]), desc


def test_busybox_is_docker_schema2(test_images: ImageSet) -> None:
    info = test_images["busybox"]
    assert info.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert info.repository == "library/busybox"
    assert info.docker_reference == "docker.io/library/busybox:latest"
    assert info.config["Cmd"] == ["sh"]
    assert info.expected_tree is not None
    assert info.expected_tree["bin/sh"].target == "busybox"
    assert info.expected_tree["tmp"].mode == 0o1777
    assert test_images["busybox-oci"].media_type == "application/vnd.oci.image.manifest.v1+json"


def test_layer_media_types(test_images: ImageSet) -> None:
    assert test_images["zstd"].layers[0]["mediaType"] == (
        "application/vnd.oci.image.layer.v1.tar+zstd"
    )
    assert test_images["uncompressed"].layers[0]["mediaType"] == (
        "application/vnd.oci.image.layer.v1.tar"
    )


def test_multiarch_index(registry: Registry, test_images: ImageSet) -> None:
    info = test_images["multiarch"]
    assert info.media_type == "application/vnd.oci.image.index.v1+json"
    assert set(info.platforms) == {"linux/amd64", "linux/arm64/v8"}
    if platform.machine() == "x86_64":
        assert info.extra["host_platform"] == "linux/amd64"
        assert info.extra["host_digest"] == info.platforms["linux/amd64"]
    client = RegistryClient(registry.url)
    for pstr, digest in info.platforms.items():
        manifest = client.get_manifest(info.repository, digest).json()
        marker = manifest["layers"][-1]["digest"]
        data = gzip.decompress(client.get_blob(info.repository, marker))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            fh = tar.extractfile("platform")
            assert fh is not None
            assert fh.read().decode() == pstr + "\n"


def test_push_custom_image(registry: Registry, tmp_path: Path) -> None:
    client = RegistryClient(registry.url)
    info = push_custom_image(
        client, registry.host, tmp_path, "oc-test/custom", "v1",
        [[L.file("etc/motd", "hi\n")], [L.file("etc/motd", "bye\n", 0o600)]],
        {"Cmd": ["cat", "/etc/motd"]},
    )
    assert info.reference == f"{registry.host}/oc-test/custom:v1"
    resp = client.get_manifest("oc-test/custom", "v1")
    assert resp.headers["docker-content-digest"] == info.digest
    assert len(info.layers) == 2
