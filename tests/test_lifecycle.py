"""One lifecycle for every container: standalone containers are projects of one, supervised by
the engine like compose services (restart policies, health checks, events, one log format),
and the status table is the only writer of a container's status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.api.control import ControlClient
from opencontainer.engine.lifecycle import ALLOWED_FROM, Status, TransitionError, transition
from opencontainer.engine.state import ContainerState, ProjectState, kill_leftovers
from opencontainer.runtime import procfs

from .test_runtime_cli import occ  # noqa: F401  (the fixture)


# -- the table ---------------------------------------------------------------------------------
def test_every_status_is_in_the_table_and_bad_moves_are_refused() -> None:
    assert set(ALLOWED_FROM) == set(Status) - {Status.CREATED}
    st = ContainerState(name="c", service="s")
    transition(st, "starting")
    transition(st, "running", pid=42, pid_start=7)
    assert (st.status, st.pid, st.pgid, st.pid_start) == ("running", 42, 42, 7)
    with pytest.raises(TransitionError):
        transition(st, "removing")  # a running container is stopped first
    transition(st, "exited", exit_code=3)
    assert (st.status, st.exit_code, st.pid) == ("exited", 3, None)
    transition(st, "removing")
    transition(st, "dead", error="removal failed: EBUSY")
    assert st.status == "dead" and "EBUSY" in st.error
    transition(st, "removing")  # rm -f again


def test_leftovers_of_a_dead_supervisor_become_exited(tmp_path: Path) -> None:
    state = ProjectState(tmp_path)
    st = ContainerState(name="c", service="s")
    transition(st, "starting")
    transition(st, "running", pid=2**22 + 1, pid_start=1)  # no such process
    (tmp_path / "c").mkdir()
    state.write_container(st)
    kill_leftovers(state)
    again = state.read_container("c")
    assert again is not None and (again.status, again.exit_code) == ("exited", 137)


# -- end to end ----------------------------------------------------------------------------------
def _state(env: dict[str, str], name: str) -> dict[str, Any]:
    path = Path(env["OPENCONTAINER_HOME"]) / "data" / "containers" / name / name / "state.json"
    return dict(json.loads(path.read_text()))


def _socket(env: dict[str, str], name: str) -> Path:
    home = Path(env["OPENCONTAINER_HOME"])
    return ProjectState(home / "data" / "containers" / name, home / "run").socket


def _wait(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def events_of() -> Iterator[Any]:
    """Collect a supervisor's events (its control socket) in a thread."""
    threads: list[threading.Thread] = []

    def start(sock: Path) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []

        def read() -> None:
            try:
                for msg in ControlClient(sock, timeout=60).stream("events"):
                    if "event" in msg:
                        got.append(msg["event"])
            except Exception:
                return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        threads.append(t)
        return got

    yield start


def test_run_d_restart_always_comes_back_after_kill_9(occ: Any, events_of: Any) -> None:  # noqa: F811
    res = occ("run", "-d", "--restart", "always", "--name", "r", "busybox", "sh", "-c",
              "echo started; sleep 1000")
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    assert len(cid) == 64
    _wait(lambda: _state(occ.env, "r")["status"] == "running")
    first = _state(occ.env, "r")
    events = events_of(_socket(occ.env, "r"))
    time.sleep(0.3)
    main = procfs.container_main(first["pid"])
    assert main, "the container's main process"
    procfs.kill_quietly(main, 9)
    _wait(lambda: _state(occ.env, "r")["restart_count"] == 1
          and _state(occ.env, "r")["status"] == "running")
    again = _state(occ.env, "r")
    assert again["pid"] != first["pid"]
    _wait(lambda: any(e["type"] == "start" for e in events))
    kinds = [e["type"] for e in events]
    assert "die" in kinds and "restart-scheduled" in kinds and "start" in kinds
    die = next(e for e in events if e["type"] == "die")
    assert die["restarting"] is True and die["container"] == "r"
    ps = occ("ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert "r Up" in ps
    logs = occ("logs", "r").stdout
    assert logs.count("started") == 2  # one log, both runs
    # a manual stop is final: no restart, and the supervisor goes with the container
    assert occ("stop", "-t", "1", "r").returncode == 0
    assert _state(occ.env, "r")["status"] == "exited"
    _wait(lambda: not _socket(occ.env, "r").exists())
    assert "Exited" in occ("ps", "-a", "--filter", "name=r").stdout
    assert occ("start", "r").returncode == 0
    _wait(lambda: _state(occ.env, "r")["status"] == "running")
    assert occ("rm", "-f", cid[:12]).returncode == 0
    assert occ("ps", "-aq").stdout == ""
    assert not (Path(occ.env["OPENCONTAINER_HOME"]) / "data" / "containers" / "r").exists()


def test_health_flags_and_on_failure(occ: Any) -> None:  # noqa: F811
    res = occ("run", "-d", "--name", "h", "--health-cmd", "test -e /tmp/ok",
              "--health-interval", "200ms", "--health-retries", "1", "busybox", "sh", "-c",
              "sleep 1; touch /tmp/ok; sleep 1000")
    assert res.returncode == 0, res.stderr
    _wait(lambda: "(healthy)" in occ("ps", "--filter", "name=h").stdout)
    info = json.loads(occ("inspect", "h").stdout)[0]
    assert info["State"]["Health"]["Status"] == "healthy"
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /tmp/ok"]
    assert occ("ps", "-q", "--filter", "health=healthy").stdout.strip() == info["Id"][:12]
    assert occ("rm", "-f", "h").returncode == 0
    res = occ("run", "-d", "--name", "f", "--restart", "on-failure:2", "busybox", "sh", "-c",
              "exit 4")
    assert res.returncode == 0, res.stderr
    _wait(lambda: _state(occ.env, "f")["status"] == "exited"
          and _state(occ.env, "f")["restart_count"] == 2)
    info = json.loads(occ("inspect", "f").stdout)[0]
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                   "MaximumRetryCount": 2}
    assert info["State"]["ExitCode"] == 4 and info["RestartCount"] == 2
    res = occ("run", "--rm", "--restart", "always", "busybox", "true")
    assert res.returncode != 0 and "--restart and --rm" in res.stderr
    res = occ("run", "--health-interval", "1s", "busybox", "true")
    assert res.returncode != 0 and "--health-cmd" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_d_rm_removes_itself_and_start_a(occ: Any) -> None:  # noqa: F811
    res = occ("run", "-d", "--rm", "--name", "gone", "busybox", "sh", "-c", "sleep 0.5")
    assert res.returncode == 0, res.stderr
    _wait(lambda: "gone" not in occ("ps", "-a", "--format", "{{.Names}}").stdout)
    gone = Path(occ.env["OPENCONTAINER_HOME"]) / "data" / "containers" / "gone"
    _wait(lambda: not gone.exists(), 10)  # its supervisor, then its folder
    assert occ("create", "--name", "again", "busybox", "sh", "-c", "echo $((1+2))").returncode == 0
    assert "Created" in occ("ps", "-a").stdout
    for _ in range(2):
        res = occ("start", "-a", "again")
        assert (res.returncode, res.stdout) == (0, "3\n")
    assert occ("logs", "again").stdout == "3\n3\n"
