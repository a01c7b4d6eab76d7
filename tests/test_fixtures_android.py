"""The Android simulation wrapper (tests/fixtures/android.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opencontainer.runtime import syscalls
from tests.fixtures.android import ANDROID_PREFIX, numbers

pytestmark = pytest.mark.skipif(
    "unshare" not in numbers() or syscalls.audit_arch() is None,
    reason=f"no Android simulation for {syscalls.machine()}",
)

REPO = Path(__file__).resolve().parents[1]


def android(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LC_ALL": "C"}
    return subprocess.run([*ANDROID_PREFIX, *argv], capture_output=True, text=True, timeout=60,
                          check=False, cwd=cwd, env=env)


# raw syscalls through ctypes: what each returns (0 or the errno)
PROBE = textwrap.dedent("""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
    def call(nr, *args):
        r = libc.syscall(nr, *args)
        if r == 0:
            return 0
        if r > 0:  # a clone child: leave at once
            os.waitpid(r, 0)
            return 0
        return ctypes.get_errno()
    nr = dict(arg.split("=") for arg in sys.argv[1:])
    nr = {k: int(v) for k, v in nr.items()}
    def child_exit(flags):
        r = libc.syscall(nr["clone"], flags, 0, 0, 0, 0)
        if r == 0:
            os._exit(0)
        if r > 0:
            os.waitpid(r, 0)
            return 0
        return ctypes.get_errno()
    print("unshare_userns", libc.unshare(CLONE_NEWUSER) and ctypes.get_errno())
    print("unshare_none", libc.unshare(0) and ctypes.get_errno())
    print("clone_userns", child_exit(CLONE_NEWUSER | SIGCHLD))
    print("clone_plain", child_exit(SIGCHLD))
    print("clone3", ctypes.get_errno() if libc.syscall(nr["clone3"], 0, 0) < 0 else 0)
""")


def _probe(wrapped: bool) -> dict[str, int]:
    args = [f"{k}={v}" for k, v in numbers().items()]
    argv = [sys.executable, "-c", PROBE, *args]
    res = android(*argv) if wrapped else subprocess.run(argv, capture_output=True, text=True,
                                                        timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines()}


def test_user_namespaces_are_refused() -> None:
    got = _probe(wrapped=True)
    assert got["unshare_userns"] == 1  # EPERM
    assert got["clone_userns"] == 1
    assert got["clone3"] == 38  # ENOSYS: glibc falls back to clone
    assert got["unshare_none"] == 0 and got["clone_plain"] == 0


def test_without_the_wrapper_clone3_is_the_kernels() -> None:
    got = _probe(wrapped=False)
    assert got["clone3"] != 38 and got["unshare_none"] == 0 and got["clone_plain"] == 0


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare(1)")
def test_unshare_user_fails() -> None:
    res = android("unshare", "-U", "true")
    assert res.returncode != 0
    assert "Operation not permitted" in res.stderr


def test_hard_links_are_refused_symlinks_work(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    res = android("ln", "a", "b", cwd=tmp_path)
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert not (tmp_path / "b").exists()
    res = android(sys.executable, "-c", "import os; os.link('a', 'c')", cwd=tmp_path)
    assert "PermissionError" in res.stderr
    res = android("ln", "-s", "a", "s", cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "s").read_text() == "x"


def test_fork_exec_and_threads_work() -> None:
    script = textwrap.dedent("""
        import subprocess, threading
        out = []
        t = threading.Thread(target=lambda: out.append("thread"))
        t.start(); t.join()
        out.append(subprocess.run(["sh", "-c", "echo child"], capture_output=True,
                                  text=True, check=True).stdout.strip())
        print(" ".join(out))
    """)
    res = android(sys.executable, "-c", script)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "thread child"


def test_missing_command() -> None:
    res = android("/nonexistent/cmd")
    assert res.returncode == 127 and "cannot execute" in res.stderr


def test_overlay_probe_says_no_overlay(tmp_path: Path) -> None:
    """Our unprivileged overlay probe (a user + mount namespace) concludes "no overlay"."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    script = textwrap.dedent(f"""
        from pathlib import Path
        from opencontainer.runtime.overlay import overlay_supported
        ok, why = overlay_supported(Path({str(lower)!r}), Path({str(upper)!r}), None)
        print("ok" if ok else "no", why)
    """)
    res = android(sys.executable, "-c", script)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("no "), res.stdout
