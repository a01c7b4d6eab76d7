"""Compose commands and flags of docker compose v2 that scripts type: create, scale, version,
ls --filter, --dry-run, up's foreground flags, exec -it / run -P (with the host /bin/sh runner:
no proot, no images), and cp, init and concurrent pull with real containers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_stack_cli import FOREVER, cli, rows  # noqa: F401  (the fixture)

TWO = (f"services:\n  web:\n    image: x\n    command: [sh, -c, \"{FOREVER}\"]\n"
       "  job:\n    image: x\n    command: [sh, -c, 'echo job ran']\n")


def test_create_scale_ls_version_dry_run(cli: Any) -> None:  # noqa: F811
    (cli.proj / "compose.yaml").write_text(TWO)
    r = cli("compose", "--dry-run", "up")
    assert "DRY-RUN MODE -  Container proj-web-1  Creating" in r.stderr
    assert rows(cli) == {}  # nothing done
    cli("compose", "create")
    assert {k: v["State"] for k, v in rows(cli).items()} == {"web": "created", "job": "created"}
    cli("compose", "up", "-d", "web")
    cli("compose", "scale", "web=2")
    web = [json.loads(x) for x in cli("compose", "ps", "--format", "json").stdout.splitlines()]
    assert sorted(w["Name"] for w in web if w["State"] == "running") == \
        ["proj-web-1", "proj-web-2"]
    r = cli("compose", "--dry-run", "stop")
    assert "DRY-RUN MODE -  Container proj-web-1  Stopping" in r.stderr
    assert rows(cli)["web"]["State"] == "running"
    assert "proj" in cli("compose", "ls", "--filter", "name=pro").stdout
    assert "proj" not in cli("compose", "ls", "--filter", "name=zzz").stdout
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", cli("compose", "version", "--short").stdout)
    assert cli("compose", "version").stdout.startswith("Docker Compose version v")
    # -it as docker compose users type it; -P/-t for run
    assert cli("compose", "exec", "-it", "web", "echo", "hi").stdout == "hi\n"
    r = cli("compose", "run", "--rm", "-t", "-P", "--use-aliases", "job")
    assert "job ran" in r.stdout


def test_up_foreground_flags(cli: Any) -> None:  # noqa: F811
    (cli.proj / "compose.yaml").write_text(
        f"services:\n  noisy:\n    image: x\n    command: [sh, -c, \"echo secret; {FOREVER}\"]\n"
        "  job:\n    image: x\n    command: [sh, -c, 'sleep 0.5; echo job done; exit 3']\n"
        "    depends_on: [noisy]\n")
    r = cli("up", "--abort-on-container-exit", "--exit-code-from", "job", "--no-attach", "noisy",
            "--timestamps", "-y", "--ansi", "never", ok=False)
    assert r.returncode == 3, r.stderr
    assert re.search(r"job-1 +\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z job done", r.stdout), r.stdout
    assert "secret" not in r.stdout and "\x1b[" not in r.stdout


def test_up_no_start_progress_quiet_and_renew(cli: Any) -> None:  # noqa: F811
    (cli.proj / "compose.yaml").write_text(TWO)
    r = cli("compose", "--progress", "quiet", "up", "--no-start")
    assert r.stderr == ""
    assert rows(cli)["web"]["State"] == "created"
    cli("compose", "up", "-d", "web")
    r = cli("compose", "--progress", "json", "up", "-V", "web")
    kinds = [json.loads(line).get("type") for line in r.stderr.splitlines()]
    # recreated (with new anonymous volumes), reported as JSON lines
    assert "destroy" in kinds and "create" in kinds and "start" in kinds, kinds


@pytest.mark.integration
def test_compose_init_cp_and_pull(oc: Any, oc_env: dict[str, str], test_images: Any,
                                  tmp_path: Path) -> None:
    proj = tmp_path / "p"
    proj.mkdir()
    other = test_images["busybox-oci"].reference
    (proj / "compose.yaml").write_text(
        "services:\n"
        "  web:\n    image: busybox\n    init: true\n"
        "    command: [sh, -c, \"tr '\\\\0' ' ' < /proc/$$PPID/cmdline; echo; exec sleep 600\"]\n"
        f"  other:\n    image: {other}\n    command: [sleep, '600']\n"
        "    stop_grace_period: 1s\n")
    r = oc("compose", "pull", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("Pulled") == 2
    try:
        assert oc("compose", "up", "-d", "--wait", cwd=proj).returncode == 0
        logs = oc("compose", "logs", "web", cwd=proj).stdout
        assert "/sbin/docker-init -s -- sh -c" in logs, logs
        (proj / "f.txt").write_text("from host\n")
        assert oc("compose", "cp", "f.txt", "web:/tmp/f.txt", cwd=proj).returncode == 0
        r = oc("compose", "exec", "-T", "web", "cat", "/tmp/f.txt", cwd=proj)
        assert r.stdout == "from host\n", r.stderr
        assert oc("compose", "cp", "web:/tmp/f.txt", "back.txt", cwd=proj).returncode == 0
        assert (proj / "back.txt").read_text() == "from host\n"
    finally:
        oc("compose", "down", "-t", "1", cwd=proj)
