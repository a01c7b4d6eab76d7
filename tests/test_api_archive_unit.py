"""PUT /containers/{id}/archive: what an archive may write (the destination may be a running
native container's root, seen through /proc/PID/root)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from opencontainer.api.docker.archive import _check_member


def _member(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def test_entries_inside_the_destination_pass(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    m = _member("./srv//hello.txt")
    _check_member(m, tmp_path)
    assert m.name == "srv/hello.txt"


def test_a_destination_under_proc_root_is_not_resolved_on_the_host(tmp_path: Path) -> None:
    # /proc/self/root is a magic link to "/": realpath would put every entry outside it
    dest = Path(f"/proc/{os.getpid()}/root") / str(tmp_path).lstrip("/")
    (tmp_path / "srv").mkdir()
    _check_member(_member("srv/hello.txt"), dest)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../etc/passwd"])
def test_dotdot_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="leaves the destination"):
        _check_member(_member(name), tmp_path)


def test_an_entry_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to("/etc")
    with pytest.raises(ValueError, match="symbolic link"):
        _check_member(_member("out/passwd"), tmp_path)
