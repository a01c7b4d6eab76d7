"""Real processes on a "filesystem" that refuses hard links, as Android 6+ app data does.

A seccomp filter (installed with ctypes, in a child process only) makes ``link()`` and
``linkat()`` fail with EACCES -- for that process and everything it starts (GNU ``cp``
included) -- exactly what SELinux answers an app on Android. Under it we unpack a layer
holding Debian's perl hardlink and copy an image tree with every copy method.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .image_helpers import f, hard, make_tar, sha, sym

# installs the filter; exits 77 where seccomp filters cannot be installed
NO_LINKS = textwrap.dedent(
    r"""
    import ctypes, errno, os, platform, struct, sys

    ARCH = {"x86_64": (0xC000003E, (86, 265)), "aarch64": (0xC00000B7, (37,))}
    arch, nrs = ARCH[platform.machine()]

    def insn(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)

    LD, JEQ, RET = 0x20, 0x15, 0x06
    ALLOW, DENY = 0x7FFF0000, 0x00050000 | errno.EACCES
    prog = insn(LD, 0, 0, 4) + insn(JEQ, 0, len(nrs) + 1, arch) + insn(LD, 0, 0, 0)
    for i, nr in enumerate(nrs):
        prog += insn(JEQ, len(nrs) - i, 0, nr)
    prog += insn(RET, 0, 0, ALLOW) + insn(RET, 0, 0, DENY)
    buf = ctypes.create_string_buffer(prog)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0 or \
            libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # NO_NEW_PRIVS, SECCOMP
        sys.exit(77)
    """
)

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"),
                                reason="the test's seccomp filter knows x86_64 and aarch64")


def run_without_links(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    res = subprocess.run([sys.executable, "-c", NO_LINKS + textwrap.dedent(code), *args],
                         capture_output=True, text=True, timeout=120, env=env, cwd=repo)
    if res.returncode == 77:
        pytest.skip("seccomp filters cannot be installed here")
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_the_filter_refuses_links_and_cp_a(tmp_path: Path) -> None:
    """The premise: under the filter, link() and plain ``cp -a`` of a hardlink fail."""
    (tmp_path / "a").write_text("a")
    os.link(tmp_path / "a", tmp_path / "b")
    res = run_without_links(
        """
        import os, subprocess, sys
        d = sys.argv[1]
        try:
            os.link(d + "/a", d + "/c")
        except PermissionError as exc:
            print("link", exc.errno)
        cp = subprocess.run(["cp", "-a", d, d + "-copy"], capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C"})
        print("cp", cp.returncode, "hard link" in cp.stderr)
        """,
        str(tmp_path),
    )
    assert res.stdout.split("\n")[:2] == ["link 13", "cp 1 True"]


def test_pull_unpack_and_copy_without_hard_links(tmp_path: Path) -> None:
    """A Debian-like layer (perl <-> perl5.36.0) unpacks, and a tree holding those hard links
    copies with every method, in a process where link()/linkat() fail with EACCES."""
    perl = b"\x7fELF" + os.urandom(3000)
    raw = make_tar([
        f("usr/bin/perl5.36.0", perl, 0o755),
        hard("usr/bin/perl", "usr/bin/perl5.36.0"),
        sym("usr/bin/perl-link", "perl"),
        hard("usr/bin/perl-link-too", "usr/bin/perl-link"),
        f("etc/os-release", "debian\n"),
    ])
    layer = tmp_path / "layer.tar"
    layer.write_bytes(raw)
    (tmp_path / "image").mkdir()
    # an image tree that holds hard links (unpacked where links work) for the copiers
    linked = tmp_path / "linked"
    (linked / "usr/bin").mkdir(parents=True)
    (linked / "etc").mkdir()
    (linked / "etc/os-release").write_text("debian\n")
    (linked / "usr/bin/perl5.36.0").write_bytes(perl)
    (linked / "usr/bin/perl5.36.0").chmod(0o755)
    os.link(linked / "usr/bin/perl5.36.0", linked / "usr/bin/perl")
    (linked / "usr/bin/perl-link").symlink_to("perl")
    os.link(linked / "usr/bin/perl-link", linked / "usr/bin/perl-link-too",
            follow_symlinks=False)
    res = run_without_links(
        """
        import json, sys
        from pathlib import Path
        import anyio
        from opencontainer.image.unpack import LayerSource, unpack_layers
        from opencontainer.runtime import rootfs

        layer, diff_id, tmp = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
        unpack_layers(tmp / "image", [LayerSource.complete("sha256:" + "0" * 64, layer)],
                      [diff_id])
        done = []
        for method in ("auto", "cp", "python", "parallel"):
            anyio.run(lambda: rootfs.copy_rootfs(tmp / "linked", tmp / method, method=method))
            done.append(method)
        # a cp -a that fails on a hard link (probe said yes) is rerun without links
        rootfs.hardlinks_work = lambda d: True
        anyio.run(lambda: rootfs.copy_rootfs(tmp / "linked", tmp / "retry", method="cp"))
        done.append("retry")
        print(json.dumps(done))
        """,
        str(layer), sha(raw), str(tmp_path),
    )
    assert json.loads(res.stdout.strip().splitlines()[-1]) == \
        ["auto", "cp", "python", "parallel", "retry"]
    for top in ("image", "auto", "cp", "python", "parallel", "retry"):
        bindir = tmp_path / top / "usr/bin"
        one, two = (bindir / "perl5.36.0").stat(), (bindir / "perl").stat()
        assert one.st_ino != two.st_ino and one.st_nlink == two.st_nlink == 1, top
        assert (bindir / "perl").read_bytes() == perl, top
        assert stat.S_IMODE(two.st_mode) == 0o755 and two.st_mtime_ns == one.st_mtime_ns, top
        assert os.readlink(bindir / "perl-link-too") == "perl", top
        assert (tmp_path / top / "etc/os-release").read_text() == "debian\n", top
