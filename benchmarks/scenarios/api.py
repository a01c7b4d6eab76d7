"""Scenario 7: the Docker Engine API's overhead and memory (issue 15).

- ``docker run --rm busybox true`` with Debian's docker 20.10 CLI (the test fixtures' copy in
  the test cache, ``tests/fixtures/dockercli.py``; built there on first use, which needs
  ``apt-get download``) against ``opencontainer system service`` on a Unix socket: create,
  attach, start, wait and remove through the API;
- ``opencontainer run --rm busybox true`` directly, same ``OPENCONTAINER_HOME`` and proot: the
  same work without the API;
- the service's RSS at rest (``VmRSS`` of its process, read after every round's runs, when no
  request is in flight and no container runs).

The row's ratio is the API's overhead (API / direct).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..context import PROOT_51, BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import oc, oc_argv, run_cmd
from .base import Plan
from .up import rss_mb

SCENARIO = "8"


def docker_cli() -> Path:
    """The docker 20.10 CLI from the test cache (built there when missing)."""
    from tests.fixtures.dockercli import CACHE_KEY, build_docker_cli

    from ..images import fixture_cache

    try:
        return fixture_cache().get_or_build(CACHE_KEY, build_docker_cli) / "docker"
    except Exception as exc:
        raise NotAvailable(f"the docker 20.10 CLI is unavailable: {exc}") from exc


def _answers(sock: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(str(sock))
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    home = ctx.workdir / "s7-home"
    env = ctx.oc_env(home, PROOT_51)
    sockdir = Path(tempfile.mkdtemp(prefix="oc-bench-api-", dir="/tmp"))  # a short path
    sock = sockdir / "docker.sock"
    cfg = ctx.fresh_dir("s7-docker-config")
    denv = dict(env, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(cfg))
    denv.pop("DOCKER_CONTEXT", None)
    service: list[subprocess.Popen[bytes]] = []
    setup: list[Exception] = []
    docker = Path()
    try:
        docker = docker_cli()
        oc("pull", ref, env=env)
        proc = subprocess.Popen([*oc_argv("system", "service", f"unix://{sock}")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        service.append(proc)
        deadline = time.monotonic() + 30
        while not _answers(sock):
            if proc.poll() is not None:
                raise SideFailed("opencontainer system service ended at start")
            if time.monotonic() > deadline:
                raise SideFailed("opencontainer system service did not answer in 30 s")
            time.sleep(0.05)
    except (SideFailed, NotAvailable) as exc:
        setup.append(exc)

    def through_api() -> Metrics:
        if setup:
            raise setup[0]
        argv = [str(docker), "run", "--rm", ref, "true"]
        t = timed(lambda: run_cmd(argv, denv, what="docker run"))
        time.sleep(0.5)  # at rest: the request is over, the container gone
        return {"t": t, "rss": rss_mb(service[0].pid)}

    def direct() -> Metrics:
        if setup:
            raise setup[0]
        return {"t": timed(lambda: oc("run", "--rm", ref, "true", env=env))}

    def teardown() -> None:
        for proc in service:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            for child in sockdir.iterdir():
                child.unlink()
            os.rmdir(sockdir)
        ctx.discard(home, cfg)

    sides = [Side("api", through_api), Side("direct", direct)]
    rows = [
        RowSpec(SCENARIO, "docker run --rm busybox true (Engine API, docker 20.10 CLI)",
                ("api", "t"), ("direct", "t"), "opencontainer run --rm (direct)"),
        RowSpec(SCENARIO, "system service RSS at rest (VmRSS, after the runs)",
                ("api", "rss"), None, unit="MB"),
    ]
    notes = ["7: both sides share one OPENCONTAINER_HOME and proot 5.1.0; the ratio is the "
             "API's overhead (docker CLI start-up + HTTP round trips + attach/wait)"]
    return Plan(sides, rows, notes, teardown=teardown)
