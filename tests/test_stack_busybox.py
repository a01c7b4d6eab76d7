"""A whole busybox stack through the CLI, with real proot, images and clients, in every
platform profile (overlay root in a user namespace on proot 5.1.0 and 5.4.0, copied root,
Android: no user namespaces, no hard links, Termux's proot).

db: httpd serving a named volume, with a healthcheck; init: one-shot; app: waits for db healthy
and init completed, then fetches from ``db`` by service name. ``up`` returns when all are up,
``ps --format json`` is right, a host client reaches the published port (relayed on proot 5.1,
port-mapped on 5.4), ``logs`` shows prefixed lines, ``down`` leaves no process, the named volume
survives ``down`` and goes with ``down -v``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.procs import free_port

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  db:
    image: busybox
    command:
      - sh
      - -c
      - test -f /www/index.html || echo persisted > /www/index.html; echo db serving;
        exec httpd -f -p 8000 -h /www
    # as PID 1 of its own namespace (native backend) httpd, like sleep below, ignores
    # SIGTERM: docker compose, and we, then wait the grace period before SIGKILL
    stop_grace_period: 1s
    ports: ["{port}:8000"]
    volumes: ["www:/www"]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8000/"]
      interval: 1s
      start_period: 20s
      start_interval: 0.2s
  init:
    image: busybox
    command: ["sh", "-c", "echo init done"]
  app:
    image: busybox
    command: ["sh", "-c", "wget -q -O - http://db:8000/ && echo app fetched; exec sleep 600"]
    stop_grace_period: 1s
    depends_on:
      db: {{condition: service_healthy}}
      init: {{condition: service_completed_successfully}}
volumes:
  www: {{}}
"""


def alive_pids_under(root: Path) -> list[int]:
    """Live processes (not zombies, not this one) whose command line mentions ``root``, or
    whose cwd or root directory (``/proc/PID/cwd``, ``/proc/PID/root``) is ``root`` or below
    it. Links we may not read (other users' processes) are ignored."""
    top = os.path.realpath(root)
    out = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit() or int(e.name) == os.getpid():
            continue
        try:
            cmd = Path(e.path, "cmdline").read_bytes()
            stat = Path(e.path, "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if stat and stat[0] == "Z":
            continue
        if str(root).encode() in cmd or top.encode() in cmd:
            out.append(int(e.name))
            continue
        for link in ("cwd", "root"):
            try:
                where = os.readlink(os.path.join(e.path, link)).removesuffix(" (deleted)")
            except OSError:
                continue
            if where == top or where.startswith(top.rstrip("/") + "/"):
                out.append(int(e.name))
                break
    return out


def no_pids_under(root: Path, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := alive_pids_under(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def ps(oc, cwd: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    r = oc("compose", "ps", "-a", "--format", "json", cwd=cwd, check=True)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return {row["Service"]: row for row in rows}


def root_modes(proj: Path) -> set[str]:
    """The root modes the project's containers got: "overlay" (an upper/ beside rootfs/) or
    "copy"."""
    dirs = [d for d in (proj / ".containers").iterdir() if (d / "state.json").is_file()]
    assert dirs
    return {"overlay" if (d / "upper").is_dir() else "copy" for d in dirs}


def test_busybox_stack(poc, profile, test_images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    test_images["busybox"]  # pushed to the registry
    port = free_port()
    proj = tmp_path / "stack"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE.format(port=port))
    oc = poc
    env: dict[str, str] = {}

    def run(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        r = oc(*args, cwd=proj, env=env, timeout=120)
        if check:
            assert r.returncode == 0, r.stderr + r.stdout
        return r

    try:
        r = run("up")
        assert "Healthy" in r.stderr
        rows = ps(oc, proj)
        assert rows["db"]["State"] == "running" and rows["db"]["Health"] == "healthy"
        assert rows["app"]["State"] == "running"
        assert rows["init"]["State"] == "exited" and rows["init"]["ExitCode"] == 0
        assert rows["db"]["Publishers"][0]["PublishedPort"] == port
        assert rows["db"]["Publishers"][0]["TargetPort"] == 8000
        assert rows["db"]["Name"] == "stack-db-1" and rows["db"]["Project"] == "stack"
        assert root_modes(proj) == {profile.rootfs}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.read().decode().strip() == "persisted"
        deadline = time.monotonic() + 20
        while True:
            logs = run("compose", "logs").stdout
            if "app fetched" in logs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "db-1    | db serving" in logs
        assert "init-1  | init done" in logs
        assert "app-1   | persisted" in logs and "app-1   | app fetched" in logs
        r = run("compose", "exec", "-T", "db", "cat", "/www/index.html")
        assert r.stdout.strip() == "persisted"
        r = run("compose", "exec", "-T", "app", "sh", "-c", "grep -w db /etc/hosts")
        assert r.stdout.startswith("127.0.0.1")
        r = run("compose", "run", "--rm", "--no-deps", "init", "sh", "-c", "echo one-off")
        assert "one-off" in r.stdout
        # the volume is changed from inside, survives down and up
        (proj / ".containers" / "volumes" / "www" / "index.html").write_text("changed\n")
        run("down")
        assert no_pids_under(proj) == []
        assert run("compose", "ps", "-a").stdout.count("stack-") == 0
        assert (proj / ".containers" / "volumes" / "www" / "index.html").exists()
        run("up")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert resp.read().decode().strip() == "changed"
        run("down", "-v")
        assert not (proj / ".containers" / "volumes" / "www").exists()
        assert no_pids_under(proj) == []
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


def test_supervisor_kill_9_leaves_no_strays(oc, proot_54: Path, test_images,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    test_images["busybox"]
    proj = tmp_path / "crashy"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        "services:\n  a:\n    image: busybox\n    command: [sleep, '600']\n"
        "  b:\n    image: busybox\n    command: [sh, -c, 'sleep 600 & sleep 600']\n")
    env = {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    try:
        r = oc("up", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        pid = int((proj / ".containers" / "supervisor.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        assert alive_pids_under(proj)  # orphaned containers still run ...
        r = oc("compose", "ps", "-a", "--format", "json", cwd=proj, env=env)
        states = {json.loads(x)["Service"]: json.loads(x)["State"] for x in r.stdout.split("\n")
                  if x.strip()}
        assert states == {"a": "exited", "b": "exited"}  # ... but ps reports the truth
        r = oc("up", cwd=proj, env=env)  # a new supervisor cleans up and starts again
        assert r.returncode == 0, r.stderr
        rows = ps(oc, proj)
        assert {k: v["State"] for k, v in rows.items()} == {"a": "running", "b": "running"}
        pid2 = int((proj / ".containers" / "supervisor.pid").read_text())
        os.kill(pid2, signal.SIGKILL)
        time.sleep(0.3)
        r = oc("down", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        assert no_pids_under(proj) == []
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc/*/stat's ppid), zombies left out."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        if fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_process_cost_of_a_five_service_stack(oc_env, proot_availability, test_images,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    """Android 12+ kills "phantom" processes beyond 32 across all apps: a 5-service stack on
    Termux's proot (Android profile) costs the supervisor, one proot per container and the
    containers' own processes -- no wrappers, relays or helpers of ours beside them."""
    from tests.fixtures.plugin import make_profile

    test_images["busybox"]
    prof = make_profile("android-termux", proot_availability)
    proj = tmp_path / "five"
    proj.mkdir()
    services = "".join(
        f"  s{i}:\n    image: busybox\n    command: [sleep, '600']\n" for i in range(4))
    services += (f"  web:\n    image: busybox\n    command: [httpd, -f, -p, '80']\n"
                 f"    ports: ['{free_port()}:80']\n")
    (proj / "compose.yaml").write_text("services:\n" + services)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prof.prefix, sys.executable, "-m", "opencontainer", *args],
                              cwd=proj, env={**oc_env, **prof.env}, capture_output=True,
                              text=True, timeout=180)

    try:
        r = run("up")
        assert r.returncode == 0, r.stderr
        sup = int((proj / ".containers" / "supervisor.pid").read_text())
        time.sleep(1)
        procs = [sup, *descendants(sup)]
        print(f"processes of a 5-service stack: {len(procs)}")
        # the supervisor, 5 proot tracers, 5 container processes (sleep x4, httpd)
        assert len(procs) == 11, [Path(f"/proc/{p}/cmdline").read_bytes() for p in procs]
    finally:
        run("down", "-t", "1")
