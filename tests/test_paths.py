"""Paths: OPENCONTAINER_HOME, XDG, proot lookup, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from opencontainer.errors import ProotError, StateError
from opencontainer.paths import (
    Paths,
    atomic_write,
    file_lock,
    project_state_dir,
    proot_binary,
    validate_name,
)


def test_home_holds_everything(tmp_path: Path) -> None:
    p = Paths.from_env({"OPENCONTAINER_HOME": str(tmp_path), "HOME": "/nonexistent"})
    for d in (p.data, p.cache, p.config, p.state, p.runtime, p.store, p.containers):
        assert d.is_relative_to(tmp_path)


def test_xdg_defaults(tmp_path: Path) -> None:
    p = Paths.from_env({"HOME": str(tmp_path)})
    assert p.data == tmp_path / ".local/share/opencontainer"
    assert p.cache == tmp_path / ".cache/opencontainer"
    assert p.config == tmp_path / ".config/opencontainer"
    p2 = Paths.from_env({"HOME": str(tmp_path), "XDG_DATA_HOME": "/x/data"})
    assert p2.data == Path("/x/data/opencontainer")


def test_project_state_dir(tmp_path: Path) -> None:
    assert project_state_dir(tmp_path, {}) == tmp_path / ".containers"
    assert project_state_dir(tmp_path, {"OPENCONTAINER_PROJECT_STATE": "/s"}) == Path("/s")


def test_proot_missing_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ProotError) as exc:
        proot_binary({"PATH": str(tmp_path)})
    assert "apt install proot" in str(exc.value)
    assert "OPENCONTAINER_PROOT" in str(exc.value)
    with pytest.raises(ProotError):
        proot_binary({"OPENCONTAINER_PROOT": str(tmp_path / "nope")})


def test_proot_from_env(tmp_path: Path) -> None:
    fake = tmp_path / "proot"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert proot_binary({"OPENCONTAINER_PROOT": str(fake)}) == fake
    assert proot_binary({"PATH": str(tmp_path)}) == fake


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    atomic_write(target, "one")
    atomic_write(target, b"two", mode=0o600)
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["state.json"]


def test_file_lock_nonblocking(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with file_lock(lock), pytest.raises(StateError), file_lock(lock, blocking=False):
        pass


def test_validate_name() -> None:
    assert validate_name("container", "web-1") == "web-1"
    with pytest.raises(Exception, match="invalid container name"):
        validate_name("container", "-bad")
