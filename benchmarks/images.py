"""The benchmark images: the test fixtures' images, pushed to this run's registry.

- ``busybox``: the fixtures' synthetic ``library/busybox:latest`` (tests/fixtures/images.py);
- ``multi``: the fixtures' Debian service image (tests/fixtures/services.py): one Debian
  bookworm rootfs with postgresql-15, redis-server, nodejs + node-pg, python3 + python3-redis +
  python3-psycopg2, in 4 layers, pushed as ``library/postgres:15`` (the stand-in).

Both come from the fixtures' build cache (``OPENCONTAINER_TEST_CACHE``, default
/var/tmp/opencontainer-test-cache). The service image is built on first use when the cache
lacks it, which needs root and mmdebstrap (or run ``python -m tests.fixtures.prepare`` as root
once). An unpacked tree (for ``cp -a`` and the proot loops) is made with skopeo + umoci from the
registry, outside any timing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tests.fixtures.cache import FixtureCache, cache_root, recipe_hash
from tests.fixtures.images import build_synthetic, synthetic_recipe
from tests.fixtures.publish import ImageInfo, publish
from tests.fixtures.push import RegistryClient
from tests.fixtures.services import (
    build_service_layers,
    can_build,
    service_recipe,
    write_service_set,
)

from .core import NotAvailable


@attrs.frozen
class PushedImage:
    """An image on this run's registry: ``reference`` is ``HOST/repository:tag``."""

    name: str
    reference: str
    layers: tuple[Mapping[str, Any], ...]

    @property
    def size(self) -> int:
        """Bytes of all layer blobs (the compressed download)."""
        return sum(int(layer.get("size", 0)) for layer in self.layers)


def _run(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-1500:]}")


def fixture_cache() -> FixtureCache:
    return FixtureCache(cache_root(), fallback=Path(os.environ.get("TMPDIR", "/tmp")) /
                        f"oc-bench-cache-{os.getuid()}")


def _pushed(info: ImageInfo) -> PushedImage:
    return PushedImage(info.name, info.reference, tuple(info.layers))


def push_busybox(host: str) -> PushedImage:
    cache = fixture_cache()
    set_dir = cache.get_or_build("synthetic-" + recipe_hash(synthetic_recipe()), build_synthetic)
    infos = publish(RegistryClient(f"http://{host}"), host, set_dir, names=["busybox"])
    return _pushed(infos["busybox"])


def push_service(host: str, workdir: Path) -> PushedImage:
    """The Debian service image as ``library/postgres:15``."""
    cache = fixture_cache()
    key = "service-layers-" + recipe_hash(service_recipe())
    layers_dir = cache.lookup(key)
    if layers_dir is None:
        ok, why = can_build()
        if not ok:
            raise NotAvailable(f"the Debian service image is not built: {why}")
        layers_dir = cache.get_or_build(key, build_service_layers)
    set_dir = workdir / "service-set"
    set_dir.mkdir(parents=True, exist_ok=True)
    write_service_set(layers_dir, set_dir)
    infos = publish(RegistryClient(f"http://{host}"), host, set_dir, names=["postgres"])
    return _pushed(infos["postgres"])


def unpack(reference: str, dest: Path) -> Path:
    """``skopeo copy`` + ``umoci unpack --rootless`` of ``reference`` into ``dest``; the rootfs."""
    rootfs = dest / "bundle" / "rootfs"
    if not rootfs.exists():
        dest.mkdir(parents=True, exist_ok=True)
        _run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{reference}",
              f"oci:{dest}/oci:latest"])
        _run(["umoci", "unpack", "--rootless", "--image", f"{dest}/oci:latest",
              str(dest / "bundle")])
    return rootfs
