"""Overlay roots: copy-on-write containers in a user namespace (when the kernel allows it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.errors import ContainerError
from opencontainer.paths import remove_tree
from opencontainer.runtime import overlay
from opencontainer.runtime.nsexec import escape_option, mount_options
from opencontainer.runtime.overlay import Layers, OverlayLayout
from opencontainer.runtime.proot import ProotCapabilities
from opencontainer.runtime.runscript import write_run_sh
from opencontainer.runtime.spec import build_spec, resolve_user
from opencontainer.runtime.testing import make_busybox_rootfs

from .test_runtime_rootfs import MUTATE, image, tree  # noqa: F401  (the fixture)


def supported(tmp_path: Path) -> bool:
    (tmp_path / "low").mkdir(exist_ok=True)
    (tmp_path / "top").mkdir(exist_ok=True)
    ok, _ = overlay.overlay_supported(tmp_path / "low", tmp_path / "top", None)
    return ok


@pytest.fixture
def need_overlay(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not supported(tmp_path_factory.mktemp("overlay-probe")):
        if os.environ.get("CI"):
            pytest.fail("unprivileged overlayfs is expected to work on the CI machines")
        pytest.skip("this kernel does not let a normal user mount an overlay")


# -- the host-side reader ---------------------------------------------------------------------


def _whiteout(p: Path) -> None:
    os.mknod(p, 0o600 | 0o020000, os.makedev(0, 0))


def test_layers_lookup_whiteouts_and_opaque(tmp_path: Path) -> None:
    low, up = tmp_path / "low", tmp_path / "up"
    for d in (low / "etc", low / "var" / "lib", low / "opq", up / "etc", up / "opq"):
        d.mkdir(parents=True)
    (low / "etc" / "passwd").write_text("low\n")
    (low / "etc" / "gone").write_text("x\n")
    (low / "opq" / "hidden").write_text("x\n")
    (up / "etc" / "passwd").write_text("up\n")
    (low / "etc" / "link").symlink_to("/var/lib")
    try:
        _whiteout(up / "etc" / "gone")
    except PermissionError:
        pytest.skip("mknod of a whiteout needs CAP_MKNOD here")
    try:
        os.setxattr(up / "opq", overlay.OPAQUE_XATTR, b"y")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    layers = Layers((up, low))
    assert layers.lookup(["etc", "passwd"]) == up / "etc" / "passwd"
    assert layers.lookup(["etc", "gone"]) is None
    assert layers.lookup(["opq", "hidden"]) is None
    assert layers.lookup(["var", "lib"]) == low / "var" / "lib"
    assert layers.lookup(["nope"]) is None
    assert layers.resolve("/etc/link/x")[0] == ["var", "lib", "x"]
    made = layers.ensure_dir(["var", "lib", "new"])
    assert made == up / "var" / "lib" / "new" and made.is_dir()
    assert (up / "var").stat().st_mode & 0o777 == (low / "var").stat().st_mode & 0o777


def test_resolve_user_reads_the_upper_layer_first(tmp_path: Path) -> None:
    low = make_busybox_rootfs(tmp_path / "low")
    up = tmp_path / "up"
    (up / "etc").mkdir(parents=True)
    (up / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nnewuser:x:4321:4321::/h:/bin/sh\n")
    assert resolve_user(Layers((up, low)), "newuser").uid == 4321
    with pytest.raises(ContainerError):
        resolve_user(low, "newuser")


def test_mount_options_escape() -> None:
    assert escape_option("/a,b:c\\d") == "/a\\,b\\:c\\\\d"
    assert mount_options("/l", "/u", "/w").endswith(",userxattr")
    assert mount_options("/l", "/u", "/w", volatile=True).endswith(",userxattr,volatile")


def test_mode_from_env() -> None:
    assert overlay.mode_from_env({}) == "auto"
    assert overlay.mode_from_env({"OPENCONTAINER_ROOTFS": "copy"}) == "copy"
    with pytest.raises(ContainerError, match="OPENCONTAINER_ROOTFS"):
        overlay.mode_from_env({"OPENCONTAINER_ROOTFS": "zfs"})


def test_choose_copy_and_unsafe_paths(tmp_path: Path) -> None:
    img, cdir = tmp_path / "img", tmp_path / "c"
    img.mkdir()
    cdir.mkdir()
    assert overlay.choose(img, cdir, None, {"OPENCONTAINER_ROOTFS": "copy"}) is False
    odd = tmp_path / "a,b"
    odd.mkdir()
    assert overlay.choose(img, odd / "c", None, {}) is False
    with pytest.raises(ContainerError, match="cannot name"):
        overlay.choose(img, odd / "c", None, {"OPENCONTAINER_ROOTFS": "overlay"})


def test_probe_result_is_cached(tmp_path: Path, need_overlay: None) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "u").mkdir()
    ok, why = overlay.overlay_supported(tmp_path / "l", tmp_path / "u", tmp_path / "cache")
    assert ok and why is None
    data = json.loads((tmp_path / "cache" / "overlay-probe.json").read_text())
    assert list(data.values()) == [{"ok": True, "why": None}]
    assert not [p for p in (tmp_path / "u").iterdir()]  # the probe cleaned up


def test_cached_yes_is_not_trusted_once_user_namespaces_are_gone(
        tmp_path: Path, need_overlay: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Android, an AppArmor profile or a sysctl can take user namespaces away with the same
    kernel, uid and filesystems: a cached "works" must not keep choosing overlay then."""
    from structlog.testing import capture_logs

    (tmp_path / "l").mkdir()
    (tmp_path / "u").mkdir()
    cache = tmp_path / "cache"
    assert overlay.overlay_supported(tmp_path / "l", tmp_path / "u", cache) == (True, None)
    monkeypatch.setattr(overlay, "userns_works", lambda: False)
    monkeypatch.setattr(overlay, "_probe", lambda *a: "unshare(user, mount namespace): denied")
    with capture_logs() as logs:
        ok, why = overlay.overlay_supported(tmp_path / "l", tmp_path / "u", cache)
    assert not ok and why and "denied" in why
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "copied root filesystems" in logs[0]["event"]
    data = json.loads((cache / "overlay-probe.json").read_text())
    assert list(data.values()) == [{"ok": False, "why": why}]
    # the new verdict is cached: no second warning
    with capture_logs() as logs:
        assert overlay.overlay_supported(tmp_path / "l", tmp_path / "u", cache)[0] is False
    assert logs == []


def test_userns_works_here(need_overlay: None) -> None:
    assert overlay.userns_works()


# -- nsexec -----------------------------------------------------------------------------------


def _layout(tmp_path: Path, lower: Path) -> OverlayLayout:
    cdir = tmp_path / "c"
    cdir.mkdir()
    layout = OverlayLayout.for_container(lower, cdir)
    overlay.prepare_dirs(layout)
    return layout


def test_nsexec_errors_are_one_sentence(tmp_path: Path) -> None:
    layout = OverlayLayout(str(tmp_path / "missing"), str(tmp_path / "u"), str(tmp_path / "w"),
                           str(tmp_path / "m"))
    res = subprocess.run([*overlay.nsexec_prefix(layout), "true"], env=overlay.helper_env(),
                         capture_output=True, text=True, check=False)
    assert res.returncode == 125
    assert res.stderr.count("\n") == 1 and "image's root filesystem" in res.stderr
    (tmp_path / "pid").write_text("999999999 1\n")
    res = subprocess.run([sys.executable, "-m", "opencontainer.runtime.nsexec",
                          "--join-pidfile", str(tmp_path / "pid"), "--", "true"],
                         env=overlay.helper_env(), capture_output=True, text=True, check=False)
    assert res.returncode == 125 and "not running" in res.stderr


def test_merged_view_of_a_stopped_container(tmp_path: Path, need_overlay: None) -> None:
    low = tmp_path / "low"
    low.mkdir()
    (low / "f").write_text("lower\n")
    layout = _layout(tmp_path, low)
    with overlay.merged_view(layout) as root:
        assert (root / "f").read_text() == "lower\n"
        (root / "f").write_text("changed\n")
        (root / "new").write_text("new\n")
    assert (low / "f").read_text() == "lower\n"
    assert (Path(layout.upper) / "f").read_text() == "changed\n"
    assert (Path(layout.upper) / "new").exists()
    remove_tree(Path(layout.merged).parent)
    assert not Path(layout.merged).parent.exists()


# -- with proot ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_isolation_overlay(proot: Path, image: Path, tmp_path: Path,  # noqa: F811
                           need_overlay: None) -> None:
    """The isolation test of test_runtime_rootfs, on overlay roots: the kernel copies up."""
    before = tree(image)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    l1 = _layout(tmp_path / "1", image)
    l2 = _layout(tmp_path / "2", image)
    caps = ProotCapabilities.detect(proot)
    spec = build_spec(name="c1", rootfs=Path(l1.merged), image_config=None,
                      command=["sh", "-c", MUTATE], overlay=l1)
    run_sh = write_run_sh(spec, caps, proot, Path(l1.merged).parent / "run.sh")
    assert "runtime/step.py nsexec --lower" in run_sh.read_text()
    res = subprocess.run(["bash", str(run_sh)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    up = Path(l1.upper)
    assert (up / "etc" / "motd").read_text() == "changed\n"
    assert (up / "data" / "a").read_text() == "AAAA\nappended\n"
    assert (up / "etc" / "ro.conf").read_text() == "written\n"
    assert tree(image) == before
    assert not list(Path(l2.upper).iterdir())
    with overlay.merged_view(l1) as root:
        assert not (root / "data" / "exec.sh").exists()
        assert (root / "etc" / "os-release.moved").exists()
        assert (root / "data" / "new-file").read_text() == "new\n"
    with overlay.merged_view(l2) as root:
        assert (root / "etc" / "motd").read_text() == "original motd\n"


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], proot: Path, test_images: Any) -> Iterator[Any]:
    oc_env["OPENCONTAINER_PROOT"] = str(proot)
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


@pytest.mark.integration
def test_cli_overlay_end_to_end(occ: Any, oc_env: dict[str, str], tmp_path: Path,
                                need_overlay: None) -> None:
    res = occ("create", "--name", "ov", "busybox", "sh", "-c",
              "echo made > /made; rm /etc/group; sleep 30")
    assert res.returncode == 0, res.stderr
    info = json.loads(occ("inspect", "ov").stdout)[0]
    assert info["GraphDriver"]["Name"] == "overlay"
    cdir = Path(info["OpenContainer"]["Dir"])
    lower = Path(info["GraphDriver"]["Data"]["LowerDir"])
    assert not any(Path(info["GraphDriver"]["Data"]["UpperDir"]).iterdir())
    assert not any((cdir / "rootfs").iterdir())  # a mount point, nothing copied
    # the image cannot go while the container uses it
    res = occ("rmi", "busybox")
    assert res.returncode == 1 and "must force" in res.stderr
    assert occ("start", "ov").returncode == 0
    # the container's command runs right after start: wait for it (a loaded machine)
    res = occ("exec", "ov", "sh", "-c", "i=0; while [ ! -e /made ] && [ $i -lt 100 ]; do "
              "sleep 0.1; i=$((i+1)); done; sleep 0.2; cat /made; "
              "test -e /etc/group || echo gone")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "made\ngone\n"
    # cp in and out of the running container, through its own mount
    src = tmp_path / "in.txt"
    src.write_text("copied in\n")
    assert occ("cp", str(src), "ov:/in.txt").returncode == 0
    assert occ("exec", "ov", "cat", "/in.txt").stdout == "copied in\n"
    assert occ("stop", "-t", "1", "ov").returncode == 0
    # stopped: export and cp see the merged tree (a holder mounts it for the moment)
    out = tmp_path / "ov.tar"
    assert occ("export", "-o", str(out), "ov").returncode == 0
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
    assert {"made", "in.txt", "bin/busybox"} <= names and "etc/group" not in names
    assert occ("cp", "ov:/made", str(tmp_path / "made")).returncode == 0
    assert (tmp_path / "made").read_text() == "made\n"
    assert (lower / "etc" / "group").exists() and not (lower / "made").exists()
    assert occ("rm", "ov").returncode == 0
    assert not cdir.exists()
    assert occ("rmi", "busybox").returncode == 0


@pytest.mark.integration
def test_cli_copy_mode_still_works(occ: Any, oc_env: dict[str, str]) -> None:
    oc_env["OPENCONTAINER_ROOTFS"] = "copy"
    res = occ("run", "--name", "cp1", "busybox", "sh", "-c", "echo hi > /x; cat /x")
    assert res.returncode == 0 and res.stdout == "hi\n", res.stderr
    info = json.loads(occ("inspect", "cp1").stdout)[0]
    assert info["GraphDriver"]["Name"] == "copy"
    assert (Path(info["OpenContainer"]["Rootfs"]) / "x").read_text() == "hi\n"


def test_nsexec_starts_no_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first child of a container's pid is taken for its main process: nsexec (which
    *is* that pid until it execs proot) must never fork, nor must loading libc.
    ctypes.util.find_library did (it runs ldconfig), and containers were killed when ldconfig
    exited."""
    from opencontainer.runtime import kernel

    def no(*_a: object, **_k: object) -> None:
        raise AssertionError("nsexec started a process")

    monkeypatch.setattr(subprocess, "Popen", no)
    monkeypatch.setattr(os, "fork", no)
    monkeypatch.setattr(os, "posix_spawn", no)
    assert kernel.libc().unshare is not None


@pytest.mark.integration
def test_hostname_and_read_only_volumes(occ: Any, tmp_path: Path, need_overlay: None) -> None:
    """In its own namespaces a container gets its hostname and real ``:ro`` volumes."""
    ro = tmp_path / "ro"
    rw = ro / "rw"  # a read-write volume inside a read-only one's source stays writable
    rw.mkdir(parents=True)
    (ro / "f").write_text("keep\n")
    # the container's own folder lies under this read-only source: it must still start
    home = Path(occ.env["OPENCONTAINER_HOME"]).parent
    res = occ("run", "--rm", "--hostname", "web1", "-v", f"{ro}:/data:ro", "-v", f"{rw}:/out",
              "-v", f"{home}:/home-ro:ro", "busybox", "sh", "-c",
              "hostname; cat /data/f; echo x > /data/f || echo refused; echo ok > /out/f")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "web1\nkeep\nrefused\n", res.stdout
    assert "Read-only file system" in res.stderr
    assert (ro / "f").read_text() == "keep\n"
    assert (rw / "f").read_text() == "ok\n"
    # exec joins the same namespaces: same hostname
    assert occ("run", "-d", "--name", "h", "--hostname", "box", "busybox", "sleep", "30"
               ).returncode == 0
    res = occ("exec", "h", "hostname")
    assert res.returncode == 0 and res.stdout == "box\n", res.stderr
    occ("rm", "-f", "h")
