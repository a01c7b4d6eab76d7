"""Restart policies and `up --foreground` with real proot and busybox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opencontainer.runtime.procfs import container_main
from tests.test_stack_busybox import no_pids_under

pytestmark = pytest.mark.integration


def state(proj: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((proj / ".containers" / name / "state.json").read_text())


def wait_until(pred, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    return False


def test_restart_policies(oc, proot_54: Path, test_images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    test_images["busybox"]
    proj = tmp_path / "rs"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        "services:\n"
        "  crash:\n    image: busybox\n    command: [sh, -c, 'echo crashing; exit 3']\n"
        "    restart: on-failure:3\n"
        "  keeper:\n    image: busybox\n    command: [sleep, '600']\n    restart: always\n")
    env = {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    try:
        r = oc("up", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: state(proj, "rs-crash-1")["status"] == "exited"
                          and state(proj, "rs-crash-1")["restart_count"] == 3)
        time.sleep(1.0)  # no fourth restart comes
        st = state(proj, "rs-crash-1")
        assert st["restart_count"] == 3 and st["exit_code"] == 3 and st["status"] == "exited"
        logs = oc("compose", "logs", "crash", cwd=proj, env=env).stdout
        assert logs.count("crashing") == 4

        first = state(proj, "rs-keeper-1")["pid"]
        main = container_main(first)
        assert main is not None, "the container's main process"
        os.kill(main, signal.SIGKILL)
        assert wait_until(lambda: state(proj, "rs-keeper-1")["pid"] not in (None, first)
                          and state(proj, "rs-keeper-1")["status"] == "running")
        assert state(proj, "rs-keeper-1")["restart_count"] == 1
        r = oc("compose", "stop", "keeper", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        # proot exits 255 when its tracee dies of a signal: reported as Docker's 128 + SIGTERM.
        # Natively `sleep` is pid 1 of its namespace and ignores SIGTERM, as in Docker: it is
        # killed after the grace period (128 + SIGKILL)
        st = state(proj, "rs-keeper-1")
        spec = json.loads((proj / ".containers" / "rs-keeper-1" / "spec.json").read_text())
        want = 137 if spec.get("backend") == "native" else 143
        assert (st["status"], st["exit_code"]) == ("exited", want)
        r = oc("down", "-t", "2", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        assert no_pids_under(proj) == []
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


def test_foreground_sigint_stops_in_dependency_order(oc_env, proot_54: Path, test_images,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    test_images["busybox"]
    proj = tmp_path / "fg"
    proj.mkdir()
    trap = "trap 'echo {0} stopping; sleep 0.3; exit 0' TERM; echo {0} ready; " \
           "while :; do sleep 0.1; done"
    (proj / "compose.yaml").write_text(
        "services:\n"
        f"  db:\n    image: busybox\n    command: [sh, -c, \"{trap.format('db')}\"]\n"
        f"  app:\n    image: busybox\n    command: [sh, -c, \"{trap.format('app')}\"]\n"
        "    depends_on: [db]\n")
    env = {**oc_env, "OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "opencontainer", "up", "--foreground",
                             "--no-color"], cwd=proj, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: "app ready" in (proj / ".containers" / "fg-app-1" /
                                                   "log.jsonl").read_text(), 60)
        assert wait_until(lambda: "db ready" in (proj / ".containers" / "fg-db-1" /
                                                  "log.jsonl").read_text(), 10)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    lines = out.splitlines()
    assert any(line.startswith("app-1  | app ready") for line in lines)
    assert "Gracefully stopping" in err
    assert "app-1 exited with code 0" in lines, out
    app_exit = lines.index("app-1 exited with code 0")
    db_exit = lines.index("db-1 exited with code 0")
    assert app_exit < db_exit
    assert lines.index("app-1  | app stopping") < lines.index("db-1   | db stopping")
    assert no_pids_under(proj) == []
