"""``compose pause``/``unpause``/``attach``/``stats`` with the host /bin/sh runner
(``OPENCONTAINER_RUNNER=shell``: the supervisor, control socket and state files, no proot), and
``compose push`` of a service's image to the test registry, checked with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FOREVER = "trap 'exit 0' TERM; while :; do sleep 0.05; done"
TICKS = "trap 'exit 0' TERM; i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.1; done"
COMPOSE = f"""
services:
  app:
    image: fake/app
    command: ["sh", "-c", "{TICKS}"]
  db:
    image: fake/db
    command: ["sh", "-c", "{FOREVER}"]
"""


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Any]:
    home = tmp_path / "oc-home"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "OPENCONTAINER"))}
    env.update(OPENCONTAINER_HOME=str(home), HOME=str(tmp_path), OPENCONTAINER_RUNNER="shell",
               OPENCONTAINER_DISABLE_PLUGINS="1")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "opencontainer", *args], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=60)
        if ok:
            assert r.returncode == 0, r.stderr + r.stdout
        return r

    run.proj = proj  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    yield run
    subprocess.run([sys.executable, "-m", "opencontainer", "down", "-t", "1"], cwd=proj,
                   env=env, capture_output=True, timeout=60)


def states(cli: Any) -> dict[str, str]:
    out = cli("compose", "ps", "-a", "--format", "json").stdout
    return {json.loads(x)["Service"]: json.loads(x)["State"] for x in out.splitlines()
            if x.strip()}


def log_size(cli: Any) -> int:
    return int((cli.proj / ".containers" / "proj-app-1" / "log.jsonl").stat().st_size)


def test_compose_pause_unpause(cli: Any) -> None:
    cli("up")
    r = cli("compose", "pause", "app")
    assert r.stderr.splitlines() == [" ✔ Container proj-app-1  Paused"]
    assert states(cli) == {"app": "paused", "db": "running"}
    frozen = log_size(cli)
    time.sleep(0.5)
    assert log_size(cli) == frozen  # not a tick while paused
    # without SERVICE: every running one; app is paused already
    assert cli("compose", "pause").stderr.splitlines() == [" ✔ Container proj-db-1  Paused"]
    assert states(cli) == {"app": "paused", "db": "paused"}
    r = cli("compose", "--dry-run", "unpause")
    assert "DRY-RUN MODE -  Container proj-app-1  Unpausing" in r.stderr
    assert states(cli) == {"app": "paused", "db": "paused"}
    r = cli("compose", "unpause")
    assert sorted(r.stderr.splitlines()) == [" ✔ Container proj-app-1  Unpaused",
                                             " ✔ Container proj-db-1  Unpaused"]
    assert states(cli) == {"app": "running", "db": "running"}
    time.sleep(0.3)
    assert log_size(cli) > frozen
    r = cli("compose", "pause", "nope", ok=False)
    assert r.returncode != 0 and r.stderr.strip() == "Error: no such service: nope"


def test_compose_attach_follows_until_stop(cli: Any) -> None:
    cli("up")
    with subprocess.Popen([sys.executable, "-m", "opencontainer", "compose", "attach", "app"],
                          cwd=cli.proj, env=cli.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as attach:
        try:
            assert attach.stdout is not None
            first = attach.stdout.readline()
            assert first.startswith("tick "), first
            cli("compose", "stop", "app")
            out, _ = attach.communicate(timeout=30)
        finally:
            if attach.poll() is None:
                attach.kill()
    assert attach.returncode == 0  # the container's exit code (its TERM trap exits 0)
    assert all(ln.startswith("tick ") for ln in out.splitlines())
    r = cli("compose", "attach", "--index", "2", "db", ok=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "#2" in r.stderr
    r = cli("compose", "attach", "app", ok=False)  # stopped now
    assert "start it first" in r.stderr


def test_compose_stats(cli: Any) -> None:
    cli("up")
    fmt = "{{.Name}} {{.PIDs}} {{.MemUsage}}"
    out = cli("compose", "stats", "--no-stream", "--format", fmt).stdout.splitlines()
    rows = {ln.split()[0]: ln.split() for ln in out}
    assert set(rows) == {"proj-app-1", "proj-db-1"}
    assert all(int(r[1]) >= 1 for r in rows.values())
    out = cli("compose", "stats", "--no-stream", "db").stdout.splitlines()
    assert out[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert [ln.split()[1] for ln in out[1:]] == ["proj-db-1"]
    cli("compose", "stop", "db")
    out = cli("compose", "stats", "--no-stream", "--format", "{{.Name}}").stdout.split()
    assert out == ["proj-app-1"]
    out = cli("compose", "stats", "-a", "--no-stream", "--format", "{{.Name}} {{.PIDs}}").stdout
    assert {ln.split()[0] for ln in out.splitlines()} == {"proj-app-1", "proj-db-1"}
    assert "proj-db-1 0" in out.splitlines()


@pytest.mark.integration
def test_compose_push_to_registry(oc: Any, test_images: Any, registry: Any,
                                  tmp_path: Path) -> None:
    from tests.test_image_push_commit import skopeo_inspect

    src = f"{registry.host}/library/busybox:latest"
    assert oc("pull", "-q", src).returncode == 0
    dest = f"{registry.host}/composepush/web:v1"
    assert oc("tag", src, dest).returncode == 0
    proj = tmp_path / "pushproj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {dest}\n  cache:\n    image: {dest}\n"
        f"  gone:\n    image: {registry.host}/composepush/none:1\n")
    r = oc("compose", "push", "web", "cache", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == f" ✔ Pushing {dest}  Pushed"
    assert r.stderr.count("  Pushed") == 1  # one image, pushed once
    assert any("Mounted from library/busybox" in ln for ln in r.stderr.splitlines()), r.stderr
    assert skopeo_inspect(dest)["Digest"] == test_images["busybox"].digest
    # a missing image: one sentence, unless failures are ignored
    r = oc("compose", "push", cwd=proj)
    assert r.returncode != 0
    assert r.stderr.splitlines()[-1].startswith("Error: ") and "does not exist" in r.stderr
    r = oc("compose", "push", "-q", "--ignore-push-failures", cwd=proj)
    assert r.returncode == 0 and r.stderr == "", r.stderr
