"""Scenario 4: ``up`` of a stack from cached images; ``ps`` of a busy machine; supervisor RSS.

Three compose projects and ten standalone containers, all busybox (so the numbers are the
engine's, not an application's start-up), all under one ``OPENCONTAINER_HOME``:

- ``benchstack`` (3 services, brought up and down in every round, ``up`` is timed): ``db``
  (healthy when /tmp/ready exists) <- ``api`` (httpd, healthcheck wget) <- ``web`` (httpd,
  healthcheck wget of both), each ``depends_on: condition: service_healthy``;
- ``rssstack`` (5 services, up for the whole scenario): the same three plus two workers that
  wait for ``db``; its supervisor's RSS is the memory row;
- ``idlestack`` (2 services that sleep, up for the whole scenario);
- 10 standalone containers made with the CLI before the rounds: 5 ``run -d … sleep`` (running)
  and 5 ``create … true`` (created, never started).

``ps`` and ``ps -a`` run from a directory without a compose file (every container of the
user: 15 running, 20 in all); ``compose ps`` beside ``benchstack``'s file; ``images``,
``version`` and ``info`` from there too. Targets: supervisor RSS <= 60 MB (issue 12); ``ps``,
``ps -a``, ``images``, ``version`` and ``info`` <= 100 ms (issue 14; issue 12 had ``ps``
<= 150). Ours only: there is no peer that runs compose files without a daemon (udocker
has no compose).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.procs import free_port

from ..context import BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import oc, require_cli
from .base import Plan

SCENARIO = "4"
CLI_TARGET_S = 0.100  # ps, ps -a, images, version and info (issue 14)
RSS_TARGET_MB = 60.0
STANDALONE_RUNNING = 5
STANDALONE_CREATED = 5

_HEALTH = """\
    healthcheck:
      test: {test}
      interval: 500ms
      timeout: 5s
      retries: 60
"""


def _httpd(port: int) -> str:
    return ('["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && '
            f'exec httpd -f -p 127.0.0.1:{port} -h /tmp/www"]')


def stack_yaml(name: str, image: str, api_port: int, web_port: int, workers: int = 0) -> str:
    """The 3-service health-checked chain (+ ``workers`` that wait for ``db``)."""
    wget = "wget -q -O /dev/null"
    out = [
        f"name: {name}",
        "services:",
        "  db:",
        f"    image: {image}",
        '    command: ["sh", "-c", "sleep 0.2; touch /tmp/ready; exec sleep 100000"]',
        _HEALTH.format(test='["CMD", "test", "-f", "/tmp/ready"]').rstrip("\n"),
        "  api:",
        f"    image: {image}",
        f"    command: {_httpd(api_port)}",
        "    depends_on:",
        "      db:",
        "        condition: service_healthy",
        _HEALTH.format(test=f'["CMD-SHELL", "{wget} http://127.0.0.1:{api_port}/"]')
        .rstrip("\n"),
        "  web:",
        f"    image: {image}",
        f"    command: {_httpd(web_port)}",
        "    depends_on:",
        "      api:",
        "        condition: service_healthy",
        _HEALTH.format(test=f'["CMD-SHELL", "{wget} http://127.0.0.1:{web_port}/ && '
                            f'{wget} http://127.0.0.1:{api_port}/"]').rstrip("\n"),
    ]
    for i in range(1, workers + 1):
        out += [
            f"  worker{i}:",
            f"    image: {image}",
            '    command: ["sleep", "100000"]',
            "    depends_on:",
            "      db:",
            "        condition: service_healthy",
        ]
    return "\n".join(out) + "\n"


def idle_yaml(name: str, image: str) -> str:
    services = "".join(f"  sleeper{i}:\n    image: {image}\n"
                       '    command: ["sleep", "100000"]\n' for i in (1, 2))
    return f"name: {name}\nservices:\n{services}"


def supervisor_pid(project: Path) -> int:
    """The pid in the project's ``.containers/supervisor.pid``."""
    pidfile = project / ".containers" / "supervisor.pid"
    if not pidfile.exists():
        raise SideFailed("no .containers/supervisor.pid after up")
    match = re.search(r"\d+", pidfile.read_text())
    if not match:
        raise SideFailed("supervisor.pid holds no pid")
    return int(match.group())


def rss_mb(pid: int) -> float:
    """``VmRSS`` of process ``pid`` (all its threads; not its child processes), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise SideFailed(f"supervisor {pid} is not running") from exc
    rss = re.search(r"VmRSS:\s+(\d+)\s+kB", status)
    if not rss:
        raise SideFailed("no VmRSS in /proc status")
    return int(rss.group(1)) / 1024


def supervisor_rss_mb(project: Path) -> float:
    """VmRSS of the project's supervisor process, in MB (its containers -- proot and the
    programs under it -- are separate processes and not counted)."""
    return rss_mb(supervisor_pid(project))


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    home = ctx.workdir / "s4-home"
    env = ctx.oc_env(home)
    neutral = ctx.fresh_dir("s4-elsewhere")  # no compose file: `ps` lists everything
    bench = ctx.fresh_dir("s4-project")
    rss_dir = ctx.fresh_dir("s4-rss")
    idle_dir = ctx.fresh_dir("s4-idle")
    (bench / "compose.yaml").write_text(
        stack_yaml("benchstack", ref, free_port(), free_port()))
    (rss_dir / "compose.yaml").write_text(
        stack_yaml("rssstack", ref, free_port(), free_port(), workers=2))
    (idle_dir / "compose.yaml").write_text(idle_yaml("idlestack", ref))

    def compose(project: Path, *args: str, timeout: float = 300) -> None:
        oc("compose", "-f", str(project / "compose.yaml"), *args, env=env, cwd=project,
           timeout=timeout)

    standing = (rss_dir, idle_dir)
    names = ([f"bench-run-{i}" for i in range(STANDALONE_RUNNING)]
             + [f"bench-created-{i}" for i in range(STANDALONE_CREATED)])
    setup: list[Exception] = []
    try:
        require_cli("up", "ps", "down", "run", "create", "rm", "images", "version", "info")
        oc("pull", ref, env=env)
        for project in standing:
            compose(project, "up", "-d", "--wait")
        for name in names[:STANDALONE_RUNNING]:
            oc("run", "-d", "--name", name, ref, "sleep", "100000", env=env, cwd=neutral)
        for name in names[STANDALONE_RUNNING:]:
            oc("create", "--name", name, ref, "true", env=env, cwd=neutral)
    except (SideFailed, NotAvailable) as exc:
        setup.append(exc)

    def ours() -> Metrics:
        if setup:
            raise setup[0]
        t_up = timed(lambda: compose(bench, "up", "-d", "--wait"))
        t_ps = timed(lambda: oc("ps", env=env, cwd=neutral))
        t_ps_all = timed(lambda: oc("ps", "-a", env=env, cwd=neutral))
        t_cps = timed(lambda: compose(bench, "ps"))
        t_images = timed(lambda: oc("images", env=env, cwd=neutral))
        t_version = timed(lambda: oc("version", env=env, cwd=neutral))
        t_info = timed(lambda: oc("info", env=env, cwd=neutral))
        return {"up": t_up, "ps": t_ps, "ps_all": t_ps_all, "compose_ps": t_cps,
                "images": t_images, "version": t_version, "info": t_info,
                "rss": supervisor_rss_mb(rss_dir)}

    def cleanup() -> None:
        if not setup:
            with contextlib.suppress(SideFailed, NotAvailable):
                compose(bench, "down", timeout=120)

    def teardown() -> None:
        quiet: list[Callable[[], object]] = [
            lambda: oc("rm", "-f", *names, env=env, cwd=neutral, timeout=120),
            *[(lambda p=p: compose(p, "down", timeout=120)) for p in standing],
        ]
        for step in quiet:
            with contextlib.suppress(SideFailed, NotAvailable):
                step()
        ctx.discard(bench, rss_dir, idle_dir, neutral, home)

    busy = (f"3 projects up ({3 + 5 + 2} containers) + {len(names)} standalone "
            f"({STANDALONE_RUNNING} running)")
    rows = [
        RowSpec(SCENARIO, "up 3 services to all-healthy (cached)", ("ours", "up"), None),
        RowSpec(SCENARIO, f"ps, {busy}", ("ours", "ps"), None, target_max=CLI_TARGET_S),
        RowSpec(SCENARIO, f"ps -a, {busy}", ("ours", "ps_all"), None, target_max=CLI_TARGET_S),
        RowSpec(SCENARIO, "compose ps (3-service project, same machine)",
                ("ours", "compose_ps"), None),
        RowSpec(SCENARIO, "images (1 image)", ("ours", "images"), None, target_max=CLI_TARGET_S),
        RowSpec(SCENARIO, "version", ("ours", "version"), None, target_max=CLI_TARGET_S),
        RowSpec(SCENARIO, f"info, {busy}", ("ours", "info"), None,
                target_max=CLI_TARGET_S),
        RowSpec(SCENARIO, "supervisor RSS, 5-service project (VmRSS of its process)",
                ("ours", "rss"), None, unit="MB", target_max=RSS_TARGET_MB),
    ]
    notes = ["4: supervisor RSS = VmRSS of the pid in .containers/supervisor.pid of the "
             "5-service project (the process and its threads; its containers' proot and "
             "program processes are not counted), read after every round's ps"]
    return Plan([Side("ours", ours, cleanup=cleanup)], rows, notes, teardown=teardown)
