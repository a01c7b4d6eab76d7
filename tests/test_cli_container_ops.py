"""``pause``/``unpause``, ``stats``, ``events``, ``rename``, ``attach`` and ``logs --since/--until``
through the CLI with real proot and the test registry's busybox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

# pid 1 without a handler ignores SIGTERM natively (as in Docker): the trap makes it stop
COUNTER = "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], proot_54: Path, test_images: Any) -> Iterator[Any]:
    test_images["busybox"]
    oc_env["OPENCONTAINER_PROOT"] = str(proot_54)
    oc_env["OPENCONTAINER_DISABLE_PLUGINS"] = "1"
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r


def log_size(env: dict[str, str], name: str) -> int:
    path = Path(env["OPENCONTAINER_HOME"]) / "data" / "containers" / name / name / "log.jsonl"
    return path.stat().st_size


def status(occ: Any, name: str) -> str:
    return str(ok(occ("inspect", "--format", "{{.State.Status}}", name)).stdout.strip())


def test_pause_unpause_stats_and_events(occ: Any, tmp_path: Path) -> None:
    events_out = tmp_path / "events.jsonl"
    with open(events_out, "w") as fh:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "opencontainer", "events", "--format", "json",
             "--filter", "container=p"], stdout=fh, stderr=subprocess.STDOUT, env=occ.env)
    try:
        ok(occ("run", "-d", "--name", "p", "busybox", "sh", "-c", COUNTER))
        ok(occ("run", "-d", "--name", "other", "busybox", "sleep", "600"))
        time.sleep(1.5)  # the watcher attaches to the new supervisors once a second
        stats = ok(occ("stats", "--no-stream", "--format",
                       "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}")).stdout.splitlines()
        row = {ln.split()[0]: ln.split() for ln in stats}
        assert set(row) == {"p", "other"}
        assert row["p"][1].endswith("%") and "/" in row["p"]
        assert int(row["p"][-1]) >= 2  # proot and the shell at least
        table = ok(occ("stats", "--no-stream", "p")).stdout.splitlines()
        assert table[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]

        assert ok(occ("pause", "p")).stdout == "p\n"
        assert status(occ, "p") == "paused"
        assert "(Paused)" in ok(occ("ps", "--format", "{{.Names}} {{.Status}}")).stdout
        r = occ("pause", "p")
        assert r.returncode == 1 and "already paused" in r.stderr
        time.sleep(0.5)
        frozen = log_size(occ.env, "p")
        time.sleep(1.0)
        assert log_size(occ.env, "p") == frozen  # not a line while paused
        cpu = ok(occ("stats", "--no-stream", "--format", "{{.CPUPerc}}", "p")).stdout.strip()
        assert float(cpu.rstrip("%")) < 5.0
        r = occ("rm", "p")
        assert r.returncode != 0  # paused is running

        ok(occ("unpause", "p"))
        assert status(occ, "p") == "running"
        time.sleep(1.0)
        assert log_size(occ.env, "p") > frozen
        r = occ("unpause", "p")
        assert r.returncode == 1 and "not paused" in r.stderr

        # a paused container stops at once: it is continued for its stop signal
        ok(occ("pause", "p"))
        t0 = time.monotonic()
        ok(occ("stop", "-t", "5", "p"))
        assert time.monotonic() - t0 < 4
        assert status(occ, "p") == "exited"
        r = occ("pause", "p")
        assert r.returncode == 1 and "not running" in r.stderr
        time.sleep(1.0)
    finally:
        watcher.terminate()
        watcher.wait(10)
    events = [json.loads(ln) for ln in events_out.read_text().splitlines() if ln.startswith("{")]
    actions = [e["Action"] for e in events]
    assert all(e["Actor"]["Attributes"]["name"] == "p" for e in events)
    for a in ("pause", "unpause", "kill", "die", "stop"):
        assert a in actions, actions
    assert actions.index("pause") < actions.index("unpause")


def test_rename_attach_and_log_times(occ: Any) -> None:
    ok(occ("create", "--name", "old", "busybox", "sh", "-c", "echo started-$0"))
    ok(occ("rename", "old", "new"))
    listed = ok(occ("ps", "-a", "--format", "{{.Names}}")).stdout.split()
    assert "new" in listed and "old" not in listed
    r = ok(occ("start", "-a", "new"))
    assert "started-sh" in r.stdout, (r.stdout, r.stderr)
    assert "started-sh" in ok(occ("logs", "new")).stdout
    r = occ("rename", "new", "new")
    assert r.returncode != 0
    ok(occ("run", "-d", "--name", "up", "busybox", "sleep", "600"))
    r = occ("rename", "up", "down")
    assert r.returncode != 0 and "stop it first" in r.stderr
    r = occ("rename", "new", "up")
    assert r.returncode != 0 and "already in use" in r.stderr

    # attach: the output from now on, and the exit code
    ok(occ("run", "-d", "--name", "at", "busybox", "sh", "-c",
           "echo before; sleep 2; echo after; echo err >&2; exit 3"))
    r = occ("attach", "at", timeout=30)
    assert r.returncode == 3
    assert "after" in r.stdout and "before" not in r.stdout and "err" in r.stderr
    r = occ("attach", "at")
    assert r.returncode != 0 and "start it first" in r.stderr

    # logs --since / --until (Unix times and relative durations)
    ok(occ("run", "--name", "l", "busybox", "sh", "-c", "echo one; sleep 1.5; echo two"))
    lines = ok(occ("logs", "-t", "l")).stdout.splitlines()
    assert [ln.split(" ", 1)[1] for ln in lines] == ["one", "two"]
    path = Path(occ.env["OPENCONTAINER_HOME"]) / "data" / "containers" / "l" / "l" / "log.jsonl"
    t_one = json.loads(path.read_text().splitlines()[0])["t"]
    assert ok(occ("logs", "--until", str(t_one + 0.7), "l")).stdout == "one\n"
    assert ok(occ("logs", "--since", str(t_one + 0.7), "l")).stdout == "two\n"
    assert ok(occ("logs", "--since", "1h", "--details", "l")).stdout == "one\ntwo\n"
