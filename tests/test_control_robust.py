"""Nothing a client sends to the control socket ends the supervisor (and with it every
container), and a signal is checked before anything is sent: ``compose kill -s 99999``
used to reach ``kill(2)``, whose EINVAL ended the supervisor."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from opencontainer.api.control import ControlClient, ControlServer
from opencontainer.errors import ConfigError
from opencontainer.paths import Paths
from opencontainer.runtime.signals import parse_signal


def test_parse_signal_accepts_names_and_numbers_and_refuses_the_rest() -> None:
    assert parse_signal("SIGTERM") == parse_signal("TERM") == parse_signal("term") == 15
    assert parse_signal("9") == parse_signal(9) == 9
    assert parse_signal(64) == 64 and parse_signal("1") == 1
    for bad in ("99999", 99999, 0, "0", -9, "-9", "NOPE", "SIG", "", True):
        with pytest.raises(ConfigError) as info:
            parse_signal(bad)  # type: ignore[arg-type]
        assert info.value.exit_code == 125
        assert str(info.value).count(".") == 1 and "\n" not in str(info.value)


class _Project:
    name = "p"


class FakeSupervisor:
    """What the control server asks of a supervisor; ``kill`` fails as an unchecked signal
    number once did (EINVAL from os.kill), ``stop`` with a bug of its own."""

    project = _Project()

    def __init__(self) -> None:
        self.kills: list[str] = []

    def ps(self) -> list[Any]:
        return []

    async def kill(self, services: tuple[str, ...], sig: str,
                   names: tuple[str, ...] = ()) -> list[str]:
        self.kills.append(sig)
        import os

        os.kill(os.getpid(), parse_signal(sig) + 100_000)  # EINVAL, were it reached
        return []

    async def stop(self, services: tuple[str, ...], timeout: float | None,
                   names: tuple[str, ...] = (), sig: str | None = None) -> list[str]:
        raise KeyError("a bug")


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


MALFORMED = [b"not json\n", b"[1, 2]\n", b"\"ping\"\n", b"{\"op\": 3}\n", b"\xff\xfe\n",
             b"{\"op\": \"kill\", \"services\": 5}\n", b"{\"op\": \"stop\", \"timeout\": \"x\"}\n",
             b"{\"op\": \"kill\", \"signal\": [1]}\n", b"{\"op\": \"up\", \"options\": []}\n",
             b"{\"op\": \"nope\"}\n", b"{\"op\": \"ping\"", b""]


@pytest.mark.anyio
async def test_the_control_socket_survives_any_request(tmp_path: Path) -> None:
    sup = FakeSupervisor()
    path = tmp_path / "sup.sock"
    server = ControlServer(object(), sup, path)  # type: ignore[arg-type]
    client = ControlClient(path)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        replies = []
        for data in MALFORMED:
            replies.append(await anyio.to_thread.run_sync(raw, path, data))
            assert await anyio.to_thread.run_sync(client.alive), data
        for reply, data in zip(replies, MALFORMED, strict=True):
            if reply:  # a request cut short may go unanswered, but never kills the server
                msg = json.loads(reply)
                assert msg["ok"] is False and msg["error"], data
        r = await anyio.to_thread.run_sync(lambda: client.request("kill", signal="99999"))
        assert r == {"ok": False, "error": r["error"]} and "invalid signal" in r["error"]
        assert sup.kills == []  # refused before the supervisor was asked
        r = await anyio.to_thread.run_sync(lambda: client.request("kill", signal="TERM"))
        assert not r["ok"] and "internal error (OSError" in r["error"]  # answered, not fatal
        r = await anyio.to_thread.run_sync(lambda: client.request("stop"))
        assert not r["ok"] and "internal error (KeyError" in r["error"]
        assert await anyio.to_thread.run_sync(client.alive)
        tg.cancel_scope.cancel()


@pytest.mark.integration
def test_a_bad_signal_and_garbage_leave_the_stack_running(  # type: ignore[no-untyped-def]
        oc, oc_env, proot_54: Path, test_images, tmp_path: Path) -> None:
    from opencontainer.engine.state import ProjectState

    test_images["busybox"]
    proj = tmp_path / "sturdy"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        "services:\n  svc:\n    image: busybox\n    command: [sleep, '600']\n"
        "  other:\n    image: busybox\n    command: [sleep, '600']\n")
    env = {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}

    def states() -> dict[str, str]:
        r = oc("compose", "ps", "-a", "--format", "json", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        rows = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
        return {row["Service"]: row["State"] for row in rows}

    try:
        r = oc("up", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        pid = int((proj / ".containers" / "supervisor.pid").read_text())
        for sig in ("99999", "0", "NOPE"):
            r = oc("compose", "kill", "-s", sig, "svc", cwd=proj, env=env)
            assert r.returncode == 125, r.stderr
            assert r.stderr.strip().startswith("Error: invalid signal")
            assert r.stderr.strip().count("\n") == 0
        sock = ProjectState(proj / ".containers", Paths.from_env({**oc_env, **env}).runtime).socket
        for data in MALFORMED:
            raw(sock, data)
        # straight to the supervisor, past the CLI's check
        reply = json.loads(raw(sock, b'{"op": "kill", "services": ["svc"], "signal": 99999}\n'))
        assert reply["ok"] is False and "invalid signal" in reply["error"]
        time.sleep(0.3)
        assert states() == {"svc": "running", "other": "running"}
        assert ControlClient(sock).alive()
        assert int((proj / ".containers" / "supervisor.pid").read_text()) == pid
        # a good one works (KILL: `sleep` as pid 1 of a native container ignores TERM, as in
        # docker)
        r = oc("compose", "kill", "-s", "KILL", "svc", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 10
        while states()["svc"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert states() == {"svc": "exited", "other": "running"}
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


def test_a_supervisor_that_ends_while_asked_is_not_an_error(tmp_path: Path) -> None:
    """docker-compose v1's ``down`` stops a standalone container and removes it at once; the
    container's supervisor ends on its own meanwhile (closing its socket first, letting go of
    its lock last). ``rm`` acts on the files it left instead of failing with "cannot reach
    the supervisor"."""
    import fcntl
    import os
    import threading
    from types import SimpleNamespace

    from opencontainer.engine import containers as ops
    from opencontainer.engine.state import ProjectState

    state = ProjectState(tmp_path)
    fd = os.open(state.lock_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # alive, but its socket is already gone
    threading.Timer(0.5, os.close, (fd,)).start()
    entry: Any = SimpleNamespace(name="stack_app_1", project=SimpleNamespace(state=state))
    started = time.monotonic()
    assert ops._supervised(entry, "down") is None
    assert 0.4 < time.monotonic() - started < 5
    assert not state.supervisor_alive()
    assert ops._supervised(entry, "down") is None  # none at all: nothing to ask
