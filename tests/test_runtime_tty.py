"""``run -i`` pipes stdin; ``run -it`` gives a real TTY (window size, Ctrl-C to the container)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def env(oc_env: dict[str, str], proot: Path, test_images: Any) -> dict[str, str]:
    oc_env["OPENCONTAINER_PROOT"] = str(proot)
    return oc_env


def test_interactive_pipes_stdin(oc: Any, env: dict[str, str]) -> None:
    res = oc("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="abc\n",
             env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "abc\ndone\n"
    # without -i the container's stdin is empty
    res = oc("run", "--rm", "busybox", "cat", input="ignored\n", env=env)
    assert res.returncode == 0 and res.stdout == ""


class Pty:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opencontainer", *args], stdin=slave, stdout=slave,
            stderr=slave, env=env, cwd=cwd, start_new_session=True,
        )
        os.close(slave)
        self.out = b""

    def read_until(self, needle: bytes, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        os.set_blocking(self.master, False)
        while needle not in self.out and time.monotonic() < deadline:
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk
        assert needle in self.out, self.out
        return self.out

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 60) -> int:
        """Read until the terminal closes (EIO once every slave fd is gone), then reap."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
                continue
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_tty_shell(env: dict[str, str], tmp_path: Path) -> None:
    t = Pty(["run", "--rm", "-it", "busybox", "sh"], env, tmp_path)
    try:
        t.read_until(b"# ")
        t.send(b"stty size; tty; echo $((6*7)); exit 5\r")
        t.read_until(b"42")
        assert t.wait() == 5
        assert b"40 120" in t.out and b"/dev/pts/" in t.out
    finally:
        t.close()


def test_tty_ctrl_c_reaches_the_container(env: dict[str, str], tmp_path: Path) -> None:
    script = "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.1; done"
    t = Pty(["run", "--rm", "-it", "busybox", "sh", "-c", script], env, tmp_path)
    try:
        t.read_until(b"ready")
        t.send(b"\x03")
        t.read_until(b"got-int")
        assert t.wait() == 9
    finally:
        t.close()
