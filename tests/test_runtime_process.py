"""ContainerProcess on real proot (5.1.0 and 5.4.0): exit codes, signals, stop, no survivors."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from opencontainer.runtime import procfs
from opencontainer.runtime.process import ContainerProcess, exit_code_of, parse_signal
from opencontainer.runtime.proot import ProotCapabilities
from opencontainer.runtime.runscript import write_run_sh
from opencontainer.runtime.spec import build_spec
from opencontainer.runtime.testing import make_busybox_rootfs


def test_parse_signal() -> None:
    assert parse_signal("SIGTERM") == parse_signal("term") == parse_signal("15") == 15
    assert parse_signal(9) == 9
    from opencontainer.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_signal("NOPE")


def test_exit_code_of() -> None:
    assert exit_code_of(3) == 3 and exit_code_of(-9) == 137 and exit_code_of(-15) == 143


@pytest.fixture(scope="module")
def bb_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("bbproc") / "rootfs")


async def start(proot: Path, rootfs: Path, tmp: Path, argv: Sequence[str],
                **kw: object) -> ContainerProcess:
    caps = ProotCapabilities.detect(proot)
    spec = build_spec(name="t", rootfs=rootfs, image_config=None, command=list(argv))
    run_sh = write_run_sh(spec, caps, proot, tmp / "c" / "run.sh")
    return await ContainerProcess.start(run_sh, **kw)  # type: ignore[arg-type]


async def read_all(stream: object) -> bytes:
    out = b""
    import anyio.abc

    assert isinstance(stream, anyio.abc.ByteReceiveStream)
    async for chunk in stream:
        out += chunk
    return out


def assert_all_gone(pids: Sequence[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p in pids if procfs.alive(p)]
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes survived: {left}")


pytestmark = pytest.mark.integration


@pytest.mark.anyio
async def test_output_and_exit_code(proot: Path, bb_rootfs: Path, tmp_path: Path) -> None:
    p = await start(proot, bb_rootfs, tmp_path, ["sh", "-c", "echo hi; echo err >&2; exit 3"])
    out, err = await read_all(p.stdout), await read_all(p.stderr)
    assert await p.wait() == 3
    assert out == b"hi\n" and b"err" in err
    await p.aclose()


@pytest.mark.anyio
async def test_stop_with_trap(proot: Path, bb_rootfs: Path, tmp_path: Path) -> None:
    p = await start(proot, bb_rootfs, tmp_path,
                    ["sh", "-c", "trap 'echo bye; exit 7' TERM; echo ready; "
                                 "while :; do sleep 0.1; done"], stderr=None)
    assert p.stdout is not None
    assert (await p.stdout.receive()).startswith(b"ready")
    tracee = await p.wait_tracee()
    assert tracee is not None and tracee != p.pid
    assert await p.stop(timeout=20) == 7
    await p.aclose()


@pytest.mark.anyio
async def test_stop_kills_after_grace(proot: Path, bb_rootfs: Path, tmp_path: Path) -> None:
    p = await start(proot, bb_rootfs, tmp_path,
                    ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
                    stderr=None)
    assert p.stdout is not None
    await p.stdout.receive()
    assert await p.stop(timeout=0.5) == 137
    await p.aclose()


@pytest.mark.anyio
async def test_no_process_survives_stop(proot: Path, bb_rootfs: Path, tmp_path: Path) -> None:
    # background children, a process in its own session, a double-forked daemon
    script = ("sleep 1001 & sleep 1002 & setsid sleep 1003 & "
              "(setsid sh -c 'sleep 1004' &) ; echo ready; wait")
    p = await start(proot, bb_rootfs, tmp_path, ["sh", "-c", script], stderr=None)
    assert p.stdout is not None
    await p.stdout.receive()
    await anyio.sleep(0.3)
    pids = p.all_pids()
    assert len(pids) >= 5  # sh, 4 sleeps (+ proot)
    assert await p.stop(timeout=1) == 143  # sh dies of the SIGTERM it does not handle
    await p.aclose()
    assert_all_gone(pids)


@pytest.mark.anyio
async def test_background_left_when_main_exits(proot: Path, bb_rootfs: Path,
                                               tmp_path: Path) -> None:
    """Docker semantics: the container ends with its main process, even on a proot without
    --kill-on-exit (which would otherwise wait for the background sleep)."""
    p = await start(proot, bb_rootfs, tmp_path, ["sh", "-c", "sleep 1000 & exit 4"],
                    stdout=None, stderr=None)
    with anyio.fail_after(30):
        code = await p.wait()
    assert code == 4
    await p.aclose()


@pytest.mark.anyio
async def test_signal_goes_to_the_main_process(proot: Path, bb_rootfs: Path,
                                               tmp_path: Path) -> None:
    p = await start(proot, bb_rootfs, tmp_path,
                    ["sh", "-c", "trap 'echo usr1' USR1; echo ready; "
                                 "while :; do sleep 0.1; done"], stderr=None)
    assert p.stdout is not None
    await p.stdout.receive()
    await p.wait_tracee()
    p.signal("USR1")
    with anyio.fail_after(10):
        assert b"usr1" in await p.stdout.receive()
    await p.kill()
    assert await p.wait() == 137
    await p.aclose()


@pytest.mark.anyio
async def test_tty(proot: Path, bb_rootfs: Path, tmp_path: Path) -> None:
    p = await start(proot, bb_rootfs, tmp_path, ["sh", "-c", "tty; stty size"], tty=True,
                    winsize=(33, 101))
    assert p.tty_master is not None
    code = await p.wait()
    out = b""
    while True:
        try:
            chunk = os.read(p.tty_master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert code == 0
    assert b"/dev/pts/" in out and b"33 101" in out
    await p.aclose()
