"""The build cache: BuildKit-style keys (parent key + instruction + content checksums) to the
state a step left (config, layers, and the step's image in the store: its tree only when it
was a result; otherwise a hit applies the step's layer).

Entries live in ``<store>/build-cache/<key>.json``; the images they point at are images of the
store marked intermediate (hidden from ``images`` unless ``-a``; ``image prune`` leaves them and
the results the cache still names). ``builder prune`` removes the entries and the intermediate
images (never a result, a tagged image, or one a container uses).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ImageNotFound
from ..image.store import ImageStore
from ..paths import atomic_write


def chain(parent: str, *parts: str) -> str:
    h = hashlib.sha256(parent.encode())
    for p in parts:
        h.update(b"\0" + p.encode())
    return h.hexdigest()


class BuildCache:
    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.root = store.root / "build-cache"

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The state cached under ``key`` (None: none, or its image is gone from the store)."""
        try:
            data: dict[str, Any] = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        image = data.get("image")
        if image:
            try:
                rec = self.store.resolve(image)
            except ImageNotFound:
                return None
            # a step's image keeps no tree: its layer on top of the files before will do
            layers = data.get("layers") or []
            if not rec.rootfs.is_dir() and not (
                    layers and self.store.blob_path(str(layers[-1]["digest"])).is_file()):
                return None
        return data

    def put(self, key: str, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path(key), json.dumps(state, sort_keys=True), durable=False)

    def entries(self) -> list[Path]:
        try:
            return sorted(self.root.glob("*.json"))
        except OSError:
            return []

    def images(self) -> set[str]:
        """The images (manifest digests) the entries refer to."""
        out: set[str] = set()
        for path in self.entries():
            try:
                image = json.loads(path.read_text()).get("image")
            except (OSError, ValueError):
                continue
            if image:
                out.add(str(image))
        return out

    def prune(self, keep: Iterable[str] = ()) -> tuple[int, int]:
        """Forget every entry and the build's step images (intermediates: never a result, a
        tagged image or one a container uses); (entries, bytes reclaimed, roughly)."""
        images: set[str] = set()
        count = 0
        for path in self.entries():
            try:
                data = json.loads(path.read_text())
                if data.get("image"):
                    images.add(str(data["image"]))
            except (OSError, ValueError):
                pass
            path.unlink(missing_ok=True)
            count += 1
        # step images no entry names (a RUN's config-only state) are the builder's too
        images.update(rec.digest for rec in self.store.list_images() if rec.intermediate)
        kept = set(keep)
        reclaimed = 0
        for digest in images - kept:
            try:
                rec = self.store.resolve(digest)
            except ImageNotFound:
                continue
            if rec.repo_tags or not rec.intermediate:
                continue
            if self.store.rootfs_users(rec.rootfs):
                continue
            reclaimed += rec.size
            self.store.forget(rec.digest)
        if images:
            self.store.gc()
        return count, reclaimed


__all__ = ["BuildCache", "chain"]
