"""The Debian stand-in images as a real stack: redis (named volume, healthcheck), a python app
that talks to it by service name once it is healthy, and a one-shot busybox job (nc) that
must complete successfully first. proot 5.4 (port map): the host reaches redis on the published
port while the services use the container port, through one project-wide port map."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.procs import free_port
from tests.test_stack_busybox import no_pids_under, ps

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
    depends_on:
      redis: {{condition: service_healthy}}
      seed: {{condition: service_completed_successfully}}
volumes:
  redisdata: {{}}
"""


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()


def test_redis_python_stack(oc, proot_54: Path, test_images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    test_images["redis"]
    test_images["python"]
    test_images["busybox"]
    port = free_port()
    proj = tmp_path / "web"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE.format(port=port))
    env = {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}

    def run(*args: str):  # type: ignore[no-untyped-def]
        r = oc(*args, cwd=proj, env=env, timeout=180)
        assert r.returncode == 0, r.stderr + r.stdout
        return r

    try:
        run("up")
        rows = ps(oc, proj)
        assert rows["redis"]["Health"] == "healthy"
        assert rows["seed"]["State"] == "exited" and rows["seed"]["ExitCode"] == 0
        assert rows["app"]["State"] == "running"
        assert redis_cli(port, "PING") == "PONG"
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
        run("up", "redis")
        assert redis_cli(port, "GET", "kept") == "across-down"
        r = run("compose", "ps", "--format", "json")
        assert [json.loads(x)["Service"] for x in r.stdout.splitlines()] == ["redis"]
        run("down", "-v")
        assert not (proj / ".containers" / "volumes" / "redisdata").exists()
        assert no_pids_under(proj) == []
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)
