"""The proot binaries fixture."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.proot import version_of

pytestmark = pytest.mark.integration


def test_proot_binaries_report_their_version(proot_binaries: dict[str, Path]) -> None:
    assert set(proot_binaries) <= {"5.1.0", "5.4.0"}
    for version, path in proot_binaries.items():
        assert version_of(path) == version


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
