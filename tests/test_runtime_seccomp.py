"""The ENOSYS seccomp wrapper: statx & co fall back to calls an old proot translates."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from opencontainer.runtime import seccomp, syscalls
from opencontainer.runtime.proot import ProotCapabilities
from opencontainer.runtime.runscript import write_run_sh
from opencontainer.runtime.spec import ContainerSpec
from opencontainer.runtime.testing import make_busybox_rootfs

STATX_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <errno.h>
#include <string.h>
int main(int argc, char **argv) {
    struct statx stx;
    if (statx(AT_FDCWD, argv[1], 0, STATX_SIZE, &stx) != 0) {
        printf("statx-error %s\n", strerror(errno));
        /* what coreutils does on ENOSYS: fall back to stat */
        struct stat st;
        if (errno == ENOSYS && stat(argv[1], &st) == 0) {
            printf("fallback-size %lld\n", (long long)st.st_size);
            return 0;
        }
        return 1;
    }
    printf("size %lld\n", (long long)stx.stx_size);
    return 0;
}
"""


def test_filter_shape() -> None:
    prog = seccomp.build_filter([332, 437], 0xC000003E)
    assert len(prog) % 8 == 0
    insns = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    assert insns[-1] == (0x06, 0, 0, seccomp.SECCOMP_RET_ERRNO | 38)
    assert insns[-2] == (0x06, 0, 0, seccomp.SECCOMP_RET_ALLOW)
    # each JEQ on a number jumps exactly to the ERRNO return
    for idx, (code, jt, _jf, _k) in enumerate(insns[3:-2], start=3):
        assert code == 0x15 and idx + 1 + jt == len(insns) - 1


def test_unknown_names_ignored() -> None:
    assert seccomp.resolve_names(["nosuchcall", ""]) == []


def test_wrapper_makes_statx_enosys() -> None:
    if syscalls.number("statx") is None:
        pytest.skip("no statx number for this machine")
    code = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        "b = ctypes.create_string_buffer(256); "
        f"r = libc.syscall({syscalls.number('statx')}, -100, b'/', 0, 0x200, b); "
        "print(r, ctypes.get_errno())"
    )
    res = subprocess.run(
        [sys.executable, "-m", "opencontainer.runtime.seccomp", "--enosys", "statx,openat2", "--",
         sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["-1", "38"]
    # other syscalls work
    res = subprocess.run(
        [sys.executable, "-m", "opencontainer.runtime.seccomp", "--enosys", "statx", "--",
         "ls", "/"], capture_output=True, text=True, check=True)
    assert "proc" in res.stdout.split()


def test_wrapper_usage_errors() -> None:
    assert seccomp.main(["--bogus"]) == 2
    assert seccomp.main(["--enosys", "statx"]) == 2


@pytest.fixture(scope="module")
def statx_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the statx test program")
    root = make_busybox_rootfs(tmp_path_factory.mktemp("statx") / "rootfs")
    src = root.parent / "statx.c"
    src.write_text(STATX_C)
    res = subprocess.run(["gcc", "-static", "-O1", "-o", str(root / "bin" / "statx-test"),
                          str(src)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot build a static test program: {res.stderr[-300:]}")
    (root / "only-in-container").write_bytes(b"1234567")
    return root


@pytest.mark.integration
def test_statx_sees_container_files(proot: Path, statx_rootfs: Path, tmp_path: Path) -> None:
    """On every proot, statx of a container-only path sees the container's file."""
    caps = ProotCapabilities.detect(proot)
    spec = ContainerSpec(name="statx", rootfs=statx_rootfs,
                         argv=["/bin/statx-test", "/only-in-container"],
                         env={"PATH": "/bin"})
    run_sh = write_run_sh(spec, caps, proot, tmp_path / "c" / "run.sh")
    res = subprocess.run(["bash", str(run_sh)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split()[-1] == "7"
    if not caps.statx:
        # the old proot: statx was refused with ENOSYS (glibc's statx() then emulates it with
        # fstatat, which proot translates)
        assert "/runtime/seccomp.py --enosys" in run_sh.read_text()


@pytest.mark.integration
def test_old_proot_without_filter_sees_host(statx_rootfs: Path, tmp_path: Path) -> None:
    """Why the filter exists: Debian's proot 5.1.0 passes statx through untranslated."""
    proot = Path("/usr/bin/proot")
    if not proot.exists() or ProotCapabilities.detect(proot).statx:
        pytest.skip("needs a proot that does not translate statx")
    res = subprocess.run([str(proot), "-r", str(statx_rootfs), "-w", "/", "/bin/statx-test",
                          "/only-in-container"], capture_output=True, text=True, timeout=60)
    assert "No such file" in res.stdout


def test_filter_with_two_answers() -> None:
    prog = seccomp.build_filter([332], 0xC000003E, succeed=[92, 93])
    insns = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    rets = {idx: k for idx, (code, _jt, _jf, k) in enumerate(insns) if code == 0x06}
    assert sorted(rets.values()) == sorted([seccomp.SECCOMP_RET_ALLOW,
                                            seccomp.SECCOMP_RET_ERRNO | 38,
                                            seccomp.SECCOMP_RET_ERRNO | 0])
    targets = {}
    for idx, (code, jt, _jf, k) in enumerate(insns[3:], start=3):
        if code == 0x15:
            targets[k] = rets[idx + 1 + jt]
    assert targets == {332: seccomp.SECCOMP_RET_ERRNO | 38, 92: seccomp.SECCOMP_RET_ERRNO,
                       93: seccomp.SECCOMP_RET_ERRNO}


def test_succeed_answers_chown_without_running_it(tmp_path: Path) -> None:
    """The fake-root answer: chown of anything to any id returns 0 and changes nothing."""
    if syscalls.number("fchownat") is None:
        pytest.skip("no chown numbers for this machine")
    f = tmp_path / "f"
    f.write_text("x")
    before = f.stat()
    code = (f"import os; os.chown({str(f)!r}, 12345, 54321); os.chown('/no/such/file', 1, 1); "
            f"print('ok', os.stat({str(f)!r}).st_uid)")
    res = subprocess.run(
        [sys.executable, "-m", "opencontainer.runtime.seccomp", "--succeed",
         ",".join(syscalls.CHOWN_FAMILY), "--", sys.executable, "-c", code],
        capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["ok", str(before.st_uid)]
    # without the filter the same call fails
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0
