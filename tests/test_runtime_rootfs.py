"""Per-container root filesystems: a faithful private copy; nothing leaks back."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from opencontainer.errors import ContainerError
from opencontainer.paths import remove_tree
from opencontainer.runtime import rootfs as rootfs_mod
from opencontainer.runtime.proot import ProotCapabilities
from opencontainer.runtime.rootfs import create_rootfs
from opencontainer.runtime.runscript import write_run_sh
from opencontainer.runtime.spec import build_spec
from opencontainer.runtime.testing import make_busybox_rootfs


def digest(p: Path) -> str:
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest()
    except PermissionError:  # mode 000 as a normal user
        mode = stat.S_IMODE(p.stat().st_mode)
        p.chmod(mode | 0o400)
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest()
        finally:
            p.chmod(mode)


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """path -> (type, mode, content hash | link target, mtime) for everything under root."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("f", stat.S_IMODE(st.st_mode), digest(p), st.st_mtime_ns)
            else:
                out[rel] = ("o", stat.S_IFMT(st.st_mode))
    return out


@pytest.fixture
def image(tmp_path: Path) -> Path:
    root = make_busybox_rootfs(tmp_path / "image")
    (root / "etc" / "motd").write_text("original motd\n")
    (root / "etc" / "ro.conf").write_text("read only\n")
    (root / "etc" / "ro.conf").chmod(0o444)
    (root / "data").mkdir()
    (root / "data" / "a").write_text("AAAA\n")
    (root / "data" / "b").write_text("BBBB\n")
    os.link(root / "data" / "a", root / "data" / "a-hardlink")
    (root / "data" / "exec.sh").write_text("#!/bin/sh\necho x\n")
    (root / "data" / "exec.sh").chmod(0o750)
    (root / "data" / "dangling").symlink_to("/nowhere")
    (root / "data" / "empty-dir").mkdir()
    os.mkfifo(root / "data" / "fifo")
    (root / "locked").mkdir()
    (root / "locked" / "inside").write_text("in\n")
    (root / "locked").chmod(0o555)
    (root / "etc" / "shadow").write_text("root:*:1::::::\n")
    (root / "etc" / "shadow").chmod(0o000)
    os.utime(root / "data" / "b", ns=(1_000_000_000, 2_000_000_000))
    return root


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["auto", "python", "parallel"])
async def test_copy_is_faithful(image: Path, tmp_path: Path, method: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs_mod, "METHOD", method)
    dest = await create_rootfs(image, tmp_path / "c1" / "rootfs")
    a, b = tree(image), tree(dest)
    assert a.keys() == b.keys()
    for key in a:
        if a[key][0] == "d":
            # directories keep their mode (the python copier adds u+rwx for us)
            assert b[key][1] in (a[key][1], a[key][1] | 0o700)  # type: ignore[operator]
        else:
            assert a[key] == b[key], key
    # hardlinks inside the image stay linked inside the copy, never to the image
    assert (dest / "data" / "a").stat().st_ino != (image / "data" / "a").stat().st_ino
    if method != "parallel":
        assert (dest / "data" / "a").stat().st_ino == \
            (dest / "data" / "a-hardlink").stat().st_ino
    assert not (tmp_path / "c1" / "rootfs.partial").exists()
    remove_tree(dest)
    assert not dest.exists()


@pytest.mark.anyio
async def test_existing_dest_refused(image: Path, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(ContainerError):
        await create_rootfs(image, tmp_path / "x")
    with pytest.raises(ContainerError):
        await create_rootfs(tmp_path / "missing", tmp_path / "y")
    assert not (tmp_path / "y").exists()


MUTATE = r"""
set -e
echo changed > /etc/motd
echo appended >> /data/a
: > /data/b
chmod 644 /etc/ro.conf && echo written > /etc/ro.conf
rm /data/exec.sh
mv /etc/os-release /etc/os-release.moved
echo new > /data/new-file
rm -rf /data/empty-dir
echo ok
"""


@pytest.mark.integration
@pytest.mark.anyio
async def test_isolation(proot: Path, image: Path, tmp_path: Path) -> None:
    before = tree(image)
    c1 = await create_rootfs(image, tmp_path / "c1" / "rootfs")
    c2 = await create_rootfs(image, tmp_path / "c2" / "rootfs")
    c2_before = tree(c2)
    caps = ProotCapabilities.detect(proot)
    spec = build_spec(name="c1", rootfs=c1, image_config=None, command=["sh", "-c", MUTATE])
    run_sh = write_run_sh(spec, caps, proot, tmp_path / "c1" / "run.sh")
    res = subprocess.run(["bash", str(run_sh)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    # the container saw its changes
    assert (c1 / "etc" / "motd").read_text() == "changed\n"
    assert (c1 / "data" / "a").read_text() == "AAAA\nappended\n"
    assert (c1 / "data" / "a-hardlink").read_text() == "AAAA\nappended\n"
    assert (c1 / "etc" / "ro.conf").read_text() == "written\n"
    # ... and nobody else did
    assert tree(image) == before
    assert tree(c2) == c2_before


# -- filesystems that refuse hard links (Android 6+ app data, some FUSE / SD cards) -----------
def refuse_links(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``os.link`` fails with EACCES, as SELinux makes it on Android; returns the calls."""
    calls: list[str] = []

    def refuse(src: object, dst: object, *args: object, **kwargs: object) -> None:
        calls.append(str(dst))
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src), None, str(dst))

    monkeypatch.setattr(os, "link", refuse)
    return calls


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["auto", "cp", "python", "parallel"])
async def test_copy_without_hardlinks(image: Path, tmp_path: Path, method: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Where link() is refused the copy is still faithful: a hardlinked pair becomes two files
    with the same content, mode and mtime; shared symlinks become plain symlinks."""
    (image / "bin" / "tool").write_text("tool\n")
    (image / "bin" / "tool").chmod(0o751)
    os.link(image / "bin" / "tool", image / "bin" / "tool-too")
    monkeypatch.setattr(rootfs_mod, "METHOD", method)
    calls = refuse_links(monkeypatch)
    dest = await create_rootfs(image, tmp_path / "c1" / "rootfs")
    a, b = tree(image), tree(dest)
    assert a.keys() == b.keys()
    for key in a:
        if a[key][0] != "d":
            assert a[key] == b[key], key
    for one, other in (("data/a", "data/a-hardlink"), ("bin/tool", "bin/tool-too")):
        st1, st2 = (dest / one).stat(), (dest / other).stat()
        assert st1.st_ino != st2.st_ino and st1.st_nlink == st2.st_nlink == 1
        assert (dest / one).read_bytes() == (dest / other).read_bytes()
        assert (stat.S_IMODE(st1.st_mode), st1.st_mtime_ns) == \
            (stat.S_IMODE(st2.st_mode), st2.st_mtime_ns)
    sh = (dest / "bin" / "sh").lstat()
    assert stat.S_ISLNK(sh.st_mode) and sh.st_ino != (image / "bin" / "sh").lstat().st_ino
    assert len(calls) <= 2  # the filesystem said no once: no link() per file after that
