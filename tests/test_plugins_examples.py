"""Plugin discovery (only what the user names) and isolation, and the two example plugins in
plugins/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from opencontainer.engine import events as ev
from opencontainer.engine.bus import EventBus
from opencontainer.engine.plugins import (
    Loaded,
    PluginHost,
    config_file,
    discover,
    may_declare_entry_points,
)

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"


class Good:
    subscriptions = (ev.Started,)

    def __init__(self) -> None:
        self.seen: list[ev.Event] = []

    async def handle(self, event: ev.Event) -> None:
        self.seen.append(event)


class Bad:
    subscriptions = (ev.Event,)

    async def handle(self, event: ev.Event) -> None:
        raise RuntimeError("boom")


def started(n: int) -> ev.Started:
    return ev.Started(project="p", service="s", container=f"p-s-{n}", pid=n)


@pytest.mark.anyio
async def test_a_failing_plugin_is_disabled_alone_with_one_warning() -> None:
    bus = EventBus()
    good = Good()
    host = PluginHost(bus=bus, plugins=[Loaded("good", good), Loaded("bad", Bad())])
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(host.run)
            for i in range(3):
                await bus.publish(started(i))
            await bus.publish(ev.Stopped(project="p", service="s", container="x"))
            with anyio.fail_after(5):
                while len(good.seen) < 3 or "bad" not in host.disabled:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert [e.pid for e in good.seen] == [0, 1, 2]  # type: ignore[attr-defined]
    assert host.disabled["bad"] == "RuntimeError: boom"
    assert [x["event"] for x in logs].count("plugin raised an exception and is disabled") == 1


def test_discovery_from_dir_and_opt_out(tmp_path: Path) -> None:
    env = {"OPENCONTAINER_PLUGIN_DIR": str(PLUGINS), "OPENCONTAINER_HOME": str(tmp_path / "h"),
           "OPENCONTAINER_EVENT_LOG": str(tmp_path / "e.jsonl")}
    names = [p.name for p in discover(env)]
    assert "event_recorder" in names
    assert "notifier" not in names  # not configured: not loaded
    assert discover({**env, "OPENCONTAINER_DISABLE_PLUGINS": "1"}) == []


@pytest.mark.anyio
async def test_notifier_posts_unhealthy_and_failures_to_a_webhook() -> None:
    received: list[dict] = []  # type: ignore[type-arg]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        loaded = discover({"OPENCONTAINER_PLUGINS": str(PLUGINS / "notifier.py"),
                           "OPENCONTAINER_HOME": "/nonexistent",
                           "OPENCONTAINER_WEBHOOK_URL": url})
        notifier = next(p.plugin for p in loaded if p.name == "notifier")
        base = {"project": "p", "service": "db", "container": "p-db-1"}
        for e in (ev.HealthChanged(**base, status="healthy"),
                  ev.HealthChanged(**base, status="unhealthy"),
                  ev.Exited(**base, exit_code=0), ev.Exited(**base, exit_code=2)):
            await notifier.handle(e)
        await notifier.aclose()
    finally:
        server.shutdown()
        server.server_close()
    assert [r["message"] for r in received] == ["p-db-1 is unhealthy",
                                               "p-db-1 exited with code 2"]


def test_recorder_plugin_receives_the_events_of_a_run(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    command: [sh, -c, 'echo hi; sleep 60']\n"
        "  b:\n    image: x\n    command: [sh, -c, 'exit 0']\n")
    log = tmp_path / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "OPENCONTAINER"))}
    env.update(OPENCONTAINER_HOME=str(tmp_path / "h"), OPENCONTAINER_RUNNER="shell",
               OPENCONTAINER_PLUGINS=str(PLUGINS / "event_recorder.py"),
               OPENCONTAINER_EVENT_LOG=str(log),
               OPENCONTAINER_EVENT_LOG_LINES="1")
    for args in (("up",), ("down",)):
        r = subprocess.run([sys.executable, "-m", "opencontainer", *args], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    records = [json.loads(x) for x in log.read_text().splitlines()]
    kinds = [(r["type"], r.get("container")) for r in records]
    for c in ("proj-a-1", "proj-b-1"):
        for k in ("create", "start", "die", "destroy"):
            assert (k, c) in kinds, (k, c)
    assert ("project-up", None) in kinds and ("project-down", None) in kinds
    assert any(r["type"] == "log" and r["text"] == "hi" for r in records)


EVIL = """import os, pathlib
with pathlib.Path(os.environ["EVIL_MARKER"]).open("a") as fh:
    fh.write(__name__ + "\\n")


class Evil:
    subscriptions = ()

    async def handle(self, event):
        pass


plugin = Evil()
"""


def evil_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project as Airflow lays one out: a plugins/ folder (here with code that leaves a
    marker when run), and modules at the top that shadow ones the supervisor imports."""
    proj = tmp_path / "proj"
    (proj / "plugins").mkdir(parents=True)
    (proj / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    command: [sh, -c, 'sleep 60']\n")
    (proj / "plugins" / "evil.py").write_text(EVIL)
    for shadow in ("attrs.py", "anyio.py", "structlog.py"):
        (proj / shadow).write_text(EVIL)
    return proj, tmp_path / "marker"


def test_discovery_ignores_the_current_directory(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proj, marker = evil_project(tmp_path)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    env = {"OPENCONTAINER_HOME": str(tmp_path / "h")}
    assert discover(env) == []
    assert not marker.exists()
    # named by a relative path (relative to the current directory): loaded, once
    loaded = discover({**env, "OPENCONTAINER_PLUGINS": "plugins/evil.py, ./plugins/evil.py"})
    assert [p.name for p in loaded] == ["evil"]
    assert marker.read_text().count("\n") == 1


def test_plugins_named_by_module_and_in_the_config_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "ocp_mod.py").write_text(
        "class P:\n    subscriptions = ()\n\n    def __init__(self, env):\n"
        "        self.env = env\n\n    async def handle(self, event):\n        pass\n\n\n"
        "def factory(env):\n    return P(env)\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("EVIL_MARKER", str(tmp_path / "m"))
    env = {"OPENCONTAINER_HOME": str(tmp_path / "h")}
    loaded = discover({**env, "OPENCONTAINER_PLUGINS": "ocp_mod:factory"})
    assert [p.name for p in loaded] == ["ocp_mod"]
    assert loaded[0].plugin.env["OPENCONTAINER_PLUGINS"] == "ocp_mod:factory"
    cfg = config_file(env)
    assert cfg == tmp_path / "h" / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    (cfg.parent / "mine").mkdir()
    (cfg.parent / "mine" / "evil.py").write_text(EVIL)
    cfg.write_text('plugins = ["ocp_mod:factory", "mine/evil.py", "mine/missing.py"]\n')
    with capture_logs() as logs:
        loaded = discover(env)
    assert [p.name for p in loaded] == ["ocp_mod", "evil"]
    assert [x["event"] for x in logs] == ["plugin not found"]
    cfg.write_text("plugins = [\n")  # broken: warned about, nothing loaded from it
    with capture_logs() as logs:
        assert discover(env) == []
    assert "unreadable" in logs[0]["event"]
    xdg = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_file(xdg) == tmp_path / "xdg" / "opencontainer" / "config.toml"


def test_up_runs_no_code_of_the_project(tmp_path: Path) -> None:
    """``up`` in a project with a plugins/ folder and modules named like the supervisor's:
    nothing of it runs. Named in OPENCONTAINER_PLUGINS or the config file, the plugin loads."""
    proj, marker = evil_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "OPENCONTAINER"))}
    env.update(OPENCONTAINER_HOME=str(tmp_path / "h"), OPENCONTAINER_RUNNER="shell",
               EVIL_MARKER=str(marker), HOME=str(tmp_path))

    def cli(*args: str, **extra: str) -> None:
        # -P as the installed `opencontainer` script: the current directory is not on sys.path
        r = subprocess.run([sys.executable, "-P", "-m", "opencontainer", *args], cwd=proj,
                           env={**env, **extra}, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    cli("up")
    cli("down")
    assert not marker.exists()
    cli("up", OPENCONTAINER_PLUGINS=str(proj / "plugins" / "evil.py"))
    cli("down")
    assert marker.read_text().startswith("opencontainer_plugin_evil")
    marker.unlink()
    cfg = tmp_path / "h" / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'plugins = ["{proj / "plugins" / "evil.py"}"]\n')
    cli("up")
    cli("down")
    assert marker.read_text().startswith("opencontainer_plugin_evil")


def test_the_entry_point_look_finds_a_declaring_distribution(tmp_path: Path) -> None:
    """``importlib.metadata`` is imported only when a distribution may declare plugins."""
    site = tmp_path / "site"
    (site / "other-1.0.dist-info").mkdir(parents=True)
    (site / "other-1.0.dist-info" / "entry_points.txt").write_text(
        "[console_scripts]\nother = other:main\n")
    (site / "nometa-1.0.dist-info").mkdir()
    assert not may_declare_entry_points("opencontainer.plugins", [str(site)])
    (site / "mine-1.0.dist-info").mkdir()
    (site / "mine-1.0.dist-info" / "entry_points.txt").write_text(
        "[opencontainer.plugins]\nmine = mine:Plugin\n")
    assert may_declare_entry_points("opencontainer.plugins", [str(site)])
    archive = tmp_path / "lib.zip"
    archive.write_bytes(b"")
    assert may_declare_entry_points("opencontainer.plugins", [str(archive)])
    assert not may_declare_entry_points("opencontainer.plugins",
                                                [str(tmp_path / "missing")])


def test_the_entry_point_look_remembers_folders_until_they_change(tmp_path: Path) -> None:
    """The engine service's memo: a folder is read again once a distribution is added."""
    site = tmp_path / "site"
    (site / "other-1.0.dist-info").mkdir(parents=True)
    memo: dict[tuple[str, str], tuple[int, bool]] = {}
    assert not may_declare_entry_points("opencontainer.plugins", [str(site)], memo)
    assert memo and not may_declare_entry_points("opencontainer.plugins", [str(site)], memo)
    time.sleep(0.01)  # a new mtime, however coarse the filesystem's clock
    info = site / "mine-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[opencontainer.plugins]\nmine = mine:Plugin\n")
    assert may_declare_entry_points("opencontainer.plugins", [str(site)], memo)
    assert may_declare_entry_points("opencontainer.plugins", [str(site)], memo)
