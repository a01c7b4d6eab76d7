"""The Debian stand-in images as a real stack: redis (named volume, healthcheck), a python app
that talks to it by service name once it is healthy, and a one-shot busybox job (nc) that
must complete successfully first. Redis starts like Docker Hub's: as root, chowns /data to the
redis user and drops to it with gosu. Runs in every platform profile (overlay roots on proot
5.1.0 and 5.4.0, copied roots, Android with Termux's proot); the host reaches redis on the
published port (port-mapped by proot 5.4, relayed by the engine otherwise)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.procs import free_port
from tests.test_stack_busybox import no_pids_under, ps, root_modes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPOSE = """
services:
  redis:
    image: redis:7
    ports: ["{port}:6379"]
    volumes: ["redisdata:/data"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      start_period: 30s
      start_interval: 0.2s
  seed:
    image: busybox
    command:
      - sh
      - -c
      - printf 'SET seeded yes\\r\\nQUIT\\r\\n' | nc redis 6379 | grep -q OK && echo seeded
    depends_on:
      redis: {{condition: service_healthy}}
  app:
    image: python:3.11-slim
    command:
      - python3
      - -u
      - -c
      - import redis, time; r = redis.Redis(host='redis', port=6379);
        print('app sees', r.get('seeded').decode()); r.set('from_app', 'hello');
        time.sleep(600)
    stop_grace_period: 1s  # PID 1 on the native backend: SIGTERM is ignored, as in Docker
    depends_on:
      redis: {{condition: service_healthy}}
      seed: {{condition: service_completed_successfully}}
volumes:
  redisdata: {{}}
"""


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()


def test_redis_python_stack(poc, profile, test_images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    test_images["redis"]
    test_images["python"]
    test_images["busybox"]
    port = free_port()
    proj = tmp_path / "web"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE.format(port=port))
    oc = poc
    env: dict[str, str] = {}

    def run(*args: str):  # type: ignore[no-untyped-def]
        r = oc(*args, cwd=proj, env=env, timeout=180)
        if r.returncode != 0:  # what the containers said, in the failure
            logs = oc("compose", "logs", "--no-color", cwd=proj, env=env, timeout=60)
            raise AssertionError(r.stderr + r.stdout + "\n--- logs:\n" + logs.stdout)
        return r

    try:
        run("up")
        rows = ps(oc, proj)
        assert rows["redis"]["Health"] == "healthy"
        assert rows["seed"]["State"] == "exited" and rows["seed"]["ExitCode"] == 0
        assert rows["app"]["State"] == "running"
        assert redis_cli(port, "PING") == "PONG"
        assert root_modes(proj) == {profile.rootfs}
        # the official-style entrypoint ran (chown, gosu) and the server writes to /data
        r = run("compose", "exec", "-T", "redis", "redis-cli", "CONFIG", "GET", "dir")
        assert r.stdout.split() == ["dir", "/data"], r.stdout + r.stderr
        deadline = time.monotonic() + 30
        while redis_cli(port, "GET", "from_app") != "hello" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert redis_cli(port, "GET", "from_app") == "hello"
        logs = run("compose", "logs", "--no-color").stdout
        assert "seed-1   | seeded" in logs
        assert "app-1    | app sees yes" in logs
        assert "redis-1  | " in logs
        redis_cli(port, "SET", "kept", "across-down")
        run("down")
        assert no_pids_under(proj) == []
        run("up", "--wait", "redis")
        assert redis_cli(port, "GET", "kept") == "across-down"
        r = run("compose", "ps", "--format", "json")
        assert [json.loads(x)["Service"] for x in r.stdout.splitlines()] == ["redis"]
        run("down", "-v")
        assert not (proj / ".containers" / "volumes" / "redisdata").exists()
        assert no_pids_under(proj) == []
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


NGINX = """
services:
  web:
    image: nginx:1.25
    ports: ["{port}:80"]
  probe:
    image: busybox
    command:
      - sh
      - -c
      - sleep 1; wget -q -O - http://web:80/ | grep -o 'Welcome to nginx!'; sleep 600
    depends_on: [web]
"""


def test_nginx_port_80_published_on_a_high_port(poc, profile, test_images,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    """nginx's master binds port 80 as root and its workers run as www-data; published on a
    high host port it answers there, and a neighbour reaches it as web:80. In a private
    network (every profile but Android) port 80 is the container's own; in the host's network
    (Android) Termux's proot shifts it to 2080 (relayed from the published port). Debian's
    5.1.0 in the host's network could do neither, and `up` says so before anything starts."""
    test_images["nginx"]
    test_images["busybox"]
    port = free_port()
    proj = tmp_path / "ngx"
    proj.mkdir()
    (proj / "compose.yaml").write_text(NGINX.format(port=port))
    try:
        r = poc("up", "-d", cwd=proj, timeout=180)
        if profile.proot_version == "5.1.0" and not profile.private_network:
            assert r.returncode != 0
            assert "below 1024" in r.stderr and "proot" in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
            return
        assert r.returncode == 0, r.stderr + r.stdout
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert "Welcome to nginx!" in body
        deadline = time.monotonic() + 30
        logs = ""
        while "probe-1  | Welcome to nginx!" not in logs and time.monotonic() < deadline:
            logs = poc("compose", "logs", "--no-color", cwd=proj).stdout
            time.sleep(0.3)
        assert "probe-1  | Welcome to nginx!" in logs, logs
        assert '"GET / HTTP/1.1" 200' in logs  # the access log goes to the container's stdout
    finally:
        poc("down", "-t", "1", cwd=proj, timeout=60)
        assert no_pids_under(proj) == []
