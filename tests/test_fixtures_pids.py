"""The stack tests' "no process left" helper sees processes by command line, cwd and root."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .test_stack_busybox import alive_pids_under


def test_alive_pids_under_sees_cwd_and_command_line(tmp_path: Path) -> None:
    inside = tmp_path / "proj" / "sub"
    inside.mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    by_cwd = subprocess.Popen(["sleep", "30"], cwd=inside)  # its command line names no path
    by_cmd = subprocess.Popen(["sh", "-c", "sleep 30; : " + str(tmp_path / "proj")])
    try:
        found = alive_pids_under(tmp_path / "proj")
        assert by_cwd.pid in found and by_cmd.pid in found
        assert by_cwd.pid not in alive_pids_under(other)
        assert by_cwd.pid not in alive_pids_under(tmp_path / "pro")  # a prefix is not "under"
    finally:
        for p in (by_cwd, by_cmd):
            p.kill()
            p.wait()
    assert by_cwd.pid not in alive_pids_under(tmp_path / "proj")
