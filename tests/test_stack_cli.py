"""The compose commands end to end through the CLI, with the host /bin/sh runner
(``OPENCONTAINER_RUNNER=shell``: services' commands run on the host, no proot, no images), so
the detached supervisor, control socket and state files are exercised in a few seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_stack_busybox import no_pids_under

FOREVER = "trap 'exit 0' TERM; while :; do sleep 0.05; done"
COMPOSE = f"""
services:
  db:
    image: fake/db
    command: ["sh", "-c", "echo db up; touch ready; {FOREVER}"]
    healthcheck:
      test: ["CMD-SHELL", "test -f ready"]
      interval: 0.1s
      start_period: 10s
      start_interval: 0.1s
  init:
    image: fake/init
    command: ["sh", "-c", "echo init ran"]
  app:
    image: fake/app
    command: ["sh", "-c", "echo app up; {FOREVER}"]
    ports: ["127.0.0.1:{{port}}:{{port}}"]
    depends_on:
      db: {{{{condition: service_healthy}}}}
      init: {{{{condition: service_completed_successfully}}}}
"""


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "oc-home"
    proj = tmp_path / "proj"
    proj.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "OPENCONTAINER"))}
    env.update(OPENCONTAINER_HOME=str(home), HOME=str(tmp_path), OPENCONTAINER_RUNNER="shell",
               OPENCONTAINER_DISABLE_PLUGINS="1")

    def run(*args: str, ok: bool = True, extra: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "opencontainer", *args], cwd=proj,
                           env={**env, **(extra or {})}, capture_output=True, text=True,
                           timeout=timeout)
        if ok:
            assert r.returncode == 0, r.stderr + r.stdout
        return r

    run.proj = proj  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    yield run
    subprocess.run([sys.executable, "-m", "opencontainer", "down", "-t", "1"], cwd=proj,
                   env=env, capture_output=True, timeout=60)


def rows(cli) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    out = cli("compose", "ps", "-a", "--format", "json").stdout
    return {json.loads(x)["Service"]: json.loads(x) for x in out.splitlines() if x.strip()}


def test_compose_commands_roundtrip(cli) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.procs import free_port

    port = free_port()
    (cli.proj / "compose.yaml").write_text(COMPOSE.format(port=port))
    r = cli("up")
    assert "Container proj-db-1  Healthy" in r.stderr
    assert "Container proj-app-1  Started" in r.stderr
    ps = rows(cli)
    assert ps["db"]["Health"] == "healthy" and ps["app"]["State"] == "running"
    assert ps["init"]["State"] == "exited"
    assert ps["app"]["Publishers"] == [{"URL": "127.0.0.1", "TargetPort": port,
                                        "PublishedPort": port, "Protocol": "tcp"}]
    assert cli("compose", "ps", "--services").stdout.split() == ["app", "db"]
    ids = cli("compose", "ps", "-q").stdout.split()  # docker compose: the full IDs
    assert ids == [ps["app"]["ID"], ps["db"]["ID"]]
    assert all(len(i) == 64 and int(i, 16) >= 0 for i in ids)
    assert cli("compose", "port", "app", str(port)).stdout.strip() == f"127.0.0.1:{port}"
    assert "proj" in cli("compose", "ls").stdout
    logs = cli("compose", "logs", "--no-log-prefix", "init").stdout
    assert logs.strip() == "init ran"
    logs = cli("compose", "logs").stdout
    assert "db-1    | db up" in logs and "app-1   | app up" in logs
    assert cli("compose", "exec", "app", "sh", "-c", "echo in $CONTAINER_NAME").stdout \
        .strip() == "in proj-app-1"
    # stop / start / restart / kill through the control socket
    cli("compose", "stop", "app")
    assert rows(cli)["app"]["State"] == "exited"
    cli("compose", "start", "app")
    assert rows(cli)["app"]["State"] == "running"
    cli("compose", "restart", "db")
    assert rows(cli)["db"]["State"] == "running"
    top = cli("compose", "top", "app").stdout
    assert "proj-app-1" in top and "PID" in top
    cli("compose", "kill", "app")
    assert rows(cli)["app"]["ExitCode"] == 137
    r = cli("compose", "run", "--rm", "-e", "X=42", "app", "sh", "-c", "echo x=$X")
    assert r.stdout.strip() == "x=42"
    assert not any(p.name.startswith("proj-app-run") for p in (cli.proj / ".containers").iterdir())
    # a one-off is supervised like any container: its output is logged, its exit kept
    r = cli("compose", "run", "--name", "once", "app", "sh", "-c", "echo kept; exit 3", ok=False)
    assert (r.returncode, r.stdout) == (3, "kept\n")
    assert cli("logs", "once").stdout == "kept\n"
    assert "Exited (3)" in cli("ps", "-a", "--filter", "name=once").stdout
    cli("rm", "once")
    r = cli("compose", "run", "-d", "--name", "bg", "app", "sh", "-c", "echo bg; sleep 30")
    assert r.stdout.strip() == "bg"
    deadline = time.monotonic() + 20
    while "bg" not in cli("logs", "bg").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cli("logs", "bg").stdout == "bg\n"
    assert "Up " in cli("ps", "--filter", "name=bg").stdout
    cli("rm", "-f", "bg")
    logs = cli("compose", "-f", str(cli.proj / "compose.yaml"), "logs", "db").stdout
    assert "db-1  | db up" in logs
    r = cli("compose", "wait", "init")
    assert r.stdout.strip() == "0"
    # up again: nothing changes for what runs
    r = cli("up")
    assert "Created" not in r.stderr
    # a changed service is recreated, the others are kept
    (cli.proj / "compose.yaml").write_text(COMPOSE.format(port=port).replace("db up", "db up2"))
    r = cli("up")
    assert "Container proj-db-1  Created" in r.stderr
    assert "Container proj-init-1  Created" not in r.stderr
    cli("down")
    assert rows(cli) == {}
    assert no_pids_under(cli.proj) == []


def test_up_fails_with_the_reason(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.proj / "compose.yaml").write_text(
        "services:\n  db:\n    image: x\n    command: [sh, -c, 'exit 5']\n"
        "    healthcheck: {test: [CMD, 'true'], interval: 1s}\n"
        "  app:\n    image: x\n    command: [sleep, '60']\n"
        "    depends_on: {db: {condition: service_healthy}}\n")
    r = cli("up", ok=False)
    assert r.returncode == 1
    assert "Error: dependency failed to start: container proj-db-1 exited (5)." in r.stderr
    assert rows(cli)["app"]["State"] == "created"


def test_ps_and_logs_work_without_a_supervisor(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.proj / "compose.yaml").write_text(
        f"services:\n  a:\n    image: x\n    command: [sh, -c, \"echo hello; {FOREVER}\"]\n")
    cli("up")
    state = cli.proj / ".containers"
    pid = int((state / "supervisor.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while rows(cli)["a"]["State"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(cli)["a"]["State"] == "exited"
    assert "a-1  | hello" in cli("compose", "logs").stdout
    cli("down")
    assert no_pids_under(cli.proj) == []


def test_events_json_streams_from_the_supervisor(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.proj / "compose.yaml").write_text(
        f"services:\n  a:\n    image: x\n    command: [sh, -c, \"{FOREVER}\"]\n")
    cli("up")
    proc = subprocess.Popen([sys.executable, "-m", "opencontainer", "compose", "events",
                             "--json"], cwd=cli.proj, env=cli.env, stdout=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(1.0)
        cli("compose", "restart")
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen.append(json.loads(proc.stdout.readline())["type"])
            if "start" in seen:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert "kill" in seen and "die" in seen and "start" in seen


def test_unpublishable_port_is_refused_before_anything_starts(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.proj / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    command: [sleep, '60']\n    ports: ['8081:80']\n"
        "  b:\n    image: x\n    command: [sleep, '60']\n    ports: ['8082:80']\n")
    r = cli("up", ok=False)
    assert r.returncode == 1
    assert "both use container port 80" in r.stderr
    assert rows(cli) == {}


def test_abort_on_container_exit_returns_the_exit_code(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.proj / "compose.yaml").write_text(
        f"services:\n  web:\n    image: x\n    command: [sh, -c, \"{FOREVER}\"]\n"
        "  job:\n    image: x\n    command: [sh, -c, 'sleep 0.5; echo job done; exit 3']\n"
        "    depends_on: [web]\n")
    r = cli("up", "--abort-on-container-exit", "--exit-code-from", "job", ok=False)
    assert r.returncode == 3, r.stderr
    assert "job-1  | job done" in r.stdout
    assert "job-1 exited with code 3" in r.stdout
    assert "web-1 exited with code 0" in r.stdout
    assert rows(cli)["web"]["State"] == "exited"
