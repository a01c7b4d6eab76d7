"""One index of containers, through the CLI with real proot and the test registry's busybox:
the seed's four commands in a project directory (``up``, ``ps``, ``logs api``, ``down``);
``ps`` from another directory lists compose and standalone containers alike; the container
commands take a compose container's name from anywhere; ``ps --filter`` keeps exactly what
it says (``rm -f $(ps -aq -f label=ci)`` removes only those)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  api:
    image: busybox
    labels:
      ci: "1"
    command: ["sh", "-c", "echo api ready; exec sleep 600"]
    stop_grace_period: 1s  # PID 1 sleep ignores SIGTERM (native backend): no 10 s wait
  other:
    image: busybox
    command: ["sh", "-c", "echo other ready; exec sleep 600"]
    stop_grace_period: 1s
"""


@pytest.fixture
def env(proot_54: Path, test_images: Any) -> dict[str, str]:
    test_images["busybox"]
    return {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}


def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    return proj


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r


def lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [x for x in ok(r).stdout.splitlines() if x.strip()]


def test_seed_commands_beside_a_compose_file(oc: Any, env: dict[str, str],
                                             tmp_path: Path) -> None:
    proj = project(tmp_path)
    try:
        ok(oc("up", cwd=proj, env=env))
        out = ok(oc("ps", cwd=proj, env=env)).stdout
        assert "proj-api-1" in out and "proj-other-1" in out and "Up " in out
        r = ok(oc("logs", "api", cwd=proj, env=env))  # a service name, not a container's
        assert r.stdout == "api ready\n"
        ok(oc("down", "-t", "1", cwd=proj, env=env))
        assert lines(oc("ps", "-a", "--format", "{{.Names}}", cwd=proj, env=env)) == []
        r = oc("logs", "api", cwd=proj, env=env)
        assert r.returncode == 1 and "no such container: api" in r.stderr
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)


def test_one_index_from_another_directory(oc: Any, env: dict[str, str],
                                          tmp_path: Path) -> None:
    proj = project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return oc(*args, cwd=elsewhere, env=env)

    try:
        ok(oc("up", cwd=proj, env=env))
        ok(run("run", "-d", "--name", "solo", "--label", "ci", "busybox", "sleep", "600"))
        ok(run("run", "-d", "--name", "plain", "busybox", "sleep", "600"))
        assert run("run", "--name", "done", "busybox", "sh", "-c", "exit 3").returncode == 3
        names = set(lines(run("ps", "--format", "{{.Names}}")))
        assert names == {"proj-api-1", "proj-other-1", "solo", "plain"}
        assert "done" in lines(run("ps", "-a", "--format", "{{.Names}}"))

        ids = {n: ok(run("inspect", "-f", "{{.Id}}", n)).stdout.strip()
               for n in ("proj-api-1", "proj-other-1", "solo", "plain", "done")}
        assert all(len(i) == 64 for i in ids.values())
        assert len(set(ids.values())) == 5
        # the filter keeps exactly the labelled ones: standalone and compose
        got = set(lines(run("ps", "-aq", "-f", "label=ci")))
        assert got == {ids["solo"][:12], ids["proj-api-1"][:12]}
        got = set(lines(run("ps", "-aq", "--no-trunc", "-f",
                            "label=com.docker.compose.project=proj")))
        assert got == {ids["proj-api-1"], ids["proj-other-1"]}
        assert lines(run("ps", "-a", "-f", "name=sol", "--format", "{{.Names}}")) == ["solo"]
        assert lines(run("ps", "-a", "-f", "status=exited", "--format", "{{.Names}}")) == ["done"]
        assert lines(run("ps", "-a", "-f", "exited=3", "--format", "{{.Names}}")) == ["done"]
        assert set(lines(run("ps", "-a", "-f", "ancestor=busybox", "--format",
                             "{{.Names}}"))) == set(ids)
        assert lines(run("ps", "-a", "-f", "ancestor=postgres", "--format", "{{.Names}}")) == []
        r = run("ps", "-aq", "-f", "bogus=1")
        assert r.returncode == 125 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and "invalid filter 'bogus'" in r.stderr

        # a compose container by name from anywhere: logs, exec, inspect, port, top
        assert ok(run("logs", "proj-api-1")).stdout == "api ready\n"
        assert ok(run("exec", "proj-api-1", "echo", "inside")).stdout == "inside\n"
        info = json.loads(ok(run("inspect", "proj-api-1")).stdout)[0]
        assert info["Name"] == "/proj-api-1" and info["State"]["Status"] == "running"
        labels = info["Config"]["Labels"]
        assert labels["com.docker.compose.project"] == "proj"
        assert labels["com.docker.compose.service"] == "api"
        assert labels["com.docker.compose.container-number"] == "1"
        assert labels["com.docker.compose.oneoff"] == "False"
        assert labels["ci"] == "1"
        assert "sleep 600" in ok(run("top", "proj-api-1")).stdout
        # ... and by a unique ID prefix
        assert ok(run("logs", ids["proj-other-1"][:10])).stdout == "other ready\n"

        # stop one compose container: only it stops, the supervisor keeps the other
        ok(run("stop", "-t", "1", "proj-other-1"))
        assert lines(run("ps", "-a", "-f", "name=proj-", "-f", "status=exited", "--format",
                         "{{.Names}}")) == ["proj-other-1"]
        assert "proj-api-1" in lines(run("ps", "--format", "{{.Names}}"))
        assert ok(run("wait", "proj-other-1")).stdout.strip().isdigit()
        ok(run("start", "proj-other-1"))
        assert "proj-other-1" in lines(run("ps", "--format", "{{.Names}}"))

        # what the filter lists is what rm -f removes: nothing else
        doomed = lines(run("ps", "-aq", "-f", "label=ci"))
        ok(run("rm", "-f", *doomed))
        left = set(lines(run("ps", "-a", "--format", "{{.Names}}")))
        assert left == {"proj-other-1", "plain", "done"}
    finally:
        oc("rm", "-f", "solo", "plain", "done", cwd=elsewhere, env=env)
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)
    assert lines(oc("ps", "-a", "--format", "{{.Names}}", cwd=elsewhere, env=env)) == []


TRAPPER = """
services:
  svc:
    image: busybox
    volumes: ["./out:/out"]
    command: ["sh", "-c", "trap 'echo term > /out/got; exit 0' TERM; echo ready;
                           while :; do sleep 0.1; done"]
"""


def test_rm_f_kills_a_compose_container_at_once(oc: Any, env: dict[str, str],
                                                tmp_path: Path) -> None:
    """``rm -f`` of a running container is docker's SIGKILL, not a stop: the container's
    TERM trap never runs (it used to get TERM and the 10 s stop timeout)."""
    proj = tmp_path / "trap"
    (proj / "out").mkdir(parents=True)
    (proj / "compose.yaml").write_text(TRAPPER)
    try:
        ok(oc("up", cwd=proj, env=env))
        deadline = time.monotonic() + 20
        while "ready" not in ok(oc("logs", "trap-svc-1", cwd=proj, env=env)).stdout:
            assert time.monotonic() < deadline, "the container never said ready"
            time.sleep(0.1)
        ok(oc("rm", "-f", "trap-svc-1", cwd=tmp_path, env=env))
        assert lines(oc("ps", "-a", "--format", "{{.Names}}", cwd=proj, env=env)) == []
        assert not (proj / "out" / "got").exists()
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)
