"""FixtureCache: build once, rename into place, read-only cache fallback (unit tests)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.fixtures.cache import FixtureCache, recipe_hash


def test_builds_once_and_reuses(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(dest: Path) -> None:
        calls.append(dest)
        (dest / "out").write_text("x")

    cache = FixtureCache(tmp_path / "c")
    first = cache.get_or_build("thing-1", build)
    second = cache.get_or_build("thing-1", build)
    assert first == second == tmp_path / "c" / "thing-1"
    assert (first / "out").read_text() == "x"
    assert len(calls) == 1
    assert calls[0] != first  # built elsewhere, then renamed in


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build(dest: Path) -> None:
        (dest / "partial").write_text("x")
        raise RuntimeError("boom")

    cache = FixtureCache(tmp_path / "c")
    with pytest.raises(RuntimeError):
        cache.get_or_build("bad", build)
    assert cache.lookup("bad") is None
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")] == []


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def build(dest: Path) -> None:
        with lock:
            calls.append(1)
        (dest / "out").write_text("x")

    cache = FixtureCache(tmp_path / "c")
    threads = [threading.Thread(target=cache.get_or_build, args=("k", build)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_cache_falls_back(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        cache = FixtureCache(ro, tmp_path / "fallback")

        def build(dest: Path) -> None:
            (dest / "f").write_text("y")

        path = cache.get_or_build("k", build)
        assert path == tmp_path / "fallback" / "k"
    finally:
        ro.chmod(0o755)


def test_recipe_hash_is_stable() -> None:
    assert recipe_hash({"b": 1, "a": [1, 2]}) == recipe_hash({"a": [1, 2], "b": 1})
    assert recipe_hash({"a": 1}) != recipe_hash({"a": 2})
