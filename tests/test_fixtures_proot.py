"""The proot binaries fixture."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.proot import version_of

pytestmark = pytest.mark.integration


def test_proot_binaries_report_their_version(proot_binaries: dict[str, Path]) -> None:
    assert set(proot_binaries) <= {"5.1.0", "5.4.0", "termux"}
    for version, path in proot_binaries.items():
        # Termux's fork calls itself 5.1.0 (its makefile's default version without git)
        assert version_of(path) == ("5.1.0" if version == "termux" else version)


def test_termux_proot_is_the_android_fork(proot_termux: Path) -> None:
    help_text = subprocess.run([str(proot_termux), "--help"], capture_output=True, text=True,
                               timeout=10, check=False).stdout
    assert "--sysvipc" in help_text and "--link2symlink" in help_text
    assert "\n  -p\n" in help_text  # -p takes no argument there


def test_proot_runs_busybox(proot: Path, tmp_path: Path) -> None:
    """Each proot version can run a static binary in a minimal rootfs."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (rootfs / "bin" / "busybox").chmod(0o755)
    res = subprocess.run(
        [str(proot), "-r", str(rootfs), "/bin/busybox", "echo", "hello from proot"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/bin"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello from proot"
