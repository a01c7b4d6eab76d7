"""Scenario 4: ``up`` of a 3-service stack to all-healthy from cached images; ``ps``; RSS.

The stack (busybox only, so the number is the engine's, not postgres' start-up):
``db`` (healthy when /tmp/ready exists) <- ``api`` (httpd, healthcheck wget) <- ``web`` (httpd,
healthcheck wget of both), each ``depends_on: condition: service_healthy``. Ours only: there is
no peer that runs compose files without a daemon (udocker has no compose).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from tests.fixtures.procs import free_port

from ..context import BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import oc, require_cli
from .base import Plan

SCENARIO = "4"

COMPOSE = """\
name: benchstack
services:
  db:
    image: {image}
    command: ["sh", "-c", "sleep 0.2; touch /tmp/ready; exec sleep 100000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 500ms
      timeout: 5s
      retries: 60
  api:
    image: {image}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html &&
                          exec httpd -f -p 127.0.0.1:{api_port} -h /tmp/www"]
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{api_port}/"]
      interval: 500ms
      timeout: 5s
      retries: 60
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html &&
                          exec httpd -f -p 127.0.0.1:{web_port} -h /tmp/www"]
    depends_on:
      api:
        condition: service_healthy
    healthcheck:
      test:
        - CMD-SHELL
        - >-
          wget -q -O /dev/null http://127.0.0.1:{web_port}/ &&
          wget -q -O /dev/null http://127.0.0.1:{api_port}/
      interval: 500ms
      timeout: 5s
      retries: 60
"""


def supervisor_rss_mb(project: Path) -> float:
    """VmRSS of the pid in ``.containers/supervisor.pid``, in MB."""
    pidfile = project / ".containers" / "supervisor.pid"
    if not pidfile.exists():
        raise SideFailed("no .containers/supervisor.pid after up")
    match = re.search(r"\d+", pidfile.read_text())
    if not match:
        raise SideFailed("supervisor.pid holds no pid")
    try:
        status = Path(f"/proc/{match.group()}/status").read_text()
    except OSError as exc:
        raise SideFailed(f"supervisor {match.group()} is not running") from exc
    rss = re.search(r"VmRSS:\s+(\d+)\s+kB", status)
    if not rss:
        raise SideFailed("no VmRSS in /proc status")
    return int(rss.group(1)) / 1024


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    project = ctx.fresh_dir("s4-project")
    compose = project / "compose.yaml"
    compose.write_text(COMPOSE.format(image=ref, api_port=free_port(), web_port=free_port()))
    env = ctx.oc_env(ctx.workdir / "s4-home")
    files = ("-f", str(compose))
    setup: list[Exception] = []
    try:
        require_cli("up", "ps", "down")
        oc("pull", ref, env=env)
    except (SideFailed, NotAvailable) as exc:
        setup.append(exc)

    def ours() -> Metrics:
        if setup:
            raise setup[0]
        t_up = timed(lambda: oc("compose", *files, "up", "-d", "--wait", env=env, cwd=project,
                                timeout=300))
        t_ps = timed(lambda: oc("compose", *files, "ps", env=env, cwd=project))
        return {"up": t_up, "ps": t_ps, "rss": supervisor_rss_mb(project)}

    def cleanup() -> None:
        if not setup:
            with contextlib.suppress(SideFailed, NotAvailable):
                oc("compose", *files, "down", env=env, cwd=project, timeout=120)

    rows = [
        RowSpec(SCENARIO, "up 3 services to all-healthy (cached)", ("ours", "up"), None),
        RowSpec(SCENARIO, "ps latency (stack up)", ("ours", "ps"), None),
        RowSpec(SCENARIO, "supervisor RSS (stack up)", ("ours", "rss"), None, unit="MB"),
    ]
    return Plan([Side("ours", ours, cleanup=cleanup)], rows, [],
                teardown=lambda: ctx.discard(project, ctx.workdir / "s4-home"))
