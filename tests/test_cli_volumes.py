"""``volume``, ``network``, ``system df/prune`` and the ``container``/``image`` groups, through
the CLI with real proot and the test registry's busybox: a standalone container's named
volume and a compose project's (``proj_vol``) are listed, inspected, refused while in use,
pruned only when unused (anonymous ones only without ``-a``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  app:
    image: busybox
    command: ["sh", "-c", "echo x > /v/f; exec sleep 600"]
    stop_grace_period: 1s  # PID 1 sleep ignores SIGTERM (native backend): no 10 s wait
    volumes:
      - vol:/v
volumes:
  vol: {}
"""


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], proot_54: Path, test_images: Any,
        tmp_path: Path) -> Iterator[Any]:
    test_images["busybox"]
    oc_env["OPENCONTAINER_PROOT"] = str(proot_54)
    oc_env["OPENCONTAINER_DISABLE_PLUGINS"] = "1"
    yield oc
    proj = tmp_path / "proj"
    if proj.is_dir():
        oc("down", "-v", cwd=proj)
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r


def names(r: subprocess.CompletedProcess[str]) -> list[str]:
    return ok(r).stdout.split()


def test_volumes_of_standalone_and_compose_containers(occ: Any, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    ok(occ("run", "-d", "--name", "a", "-v", "data:/data", "busybox", "sh", "-c",
           "echo hi > /data/f; exec sleep 600"))
    ok(occ("up", cwd=proj))
    ok(occ("volume", "create", "free"))
    listed = names(occ("volume", "ls", "-q"))
    assert {"data", "proj_vol", "free"} <= set(listed)
    table = ok(occ("volume", "ls")).stdout
    assert table.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert "local     proj_vol" in table or "local    proj_vol" in table or "proj_vol" in table
    assert names(occ("volume", "ls", "--format", "{{.Name}}")) == listed
    assert names(occ("volume", "ls", "-q", "-f", "dangling=true")) == ["free"]
    [info] = json.loads(ok(occ("volume", "inspect", "data")).stdout)
    assert info["Name"] == "data" and info["Driver"] == "local"
    assert (Path(info["Mountpoint"]) / "f").read_text() == "hi\n"
    [pinfo] = json.loads(ok(occ("volume", "inspect", "proj_vol")).stdout)
    assert pinfo["Labels"]["com.docker.compose.project"] == "proj"
    assert Path(pinfo["Mountpoint"]).is_relative_to(proj)

    # in use: refused, and kept by every prune
    r = occ("volume", "rm", "data")
    assert r.returncode != 0 and "in use" in r.stderr and "a" in r.stderr
    r = occ("volume", "rm", "proj_vol")
    assert r.returncode != 0 and "proj-app-1" in r.stderr
    assert ok(occ("volume", "prune", "-f")).stdout.strip() == "Total reclaimed space: 0B"
    assert "free" in names(occ("volume", "ls", "-q"))  # named: kept without -a
    out = ok(occ("volume", "prune", "-a", "-f")).stdout
    assert "Deleted Volumes:\nfree\n" in out
    assert set(names(occ("volume", "ls", "-q"))) >= {"data", "proj_vol"}
    assert "free" not in names(occ("volume", "ls", "-q"))

    # networks: host and the project's default one, while it has containers
    nets = ok(occ("network", "ls", "--format", "{{.Name}} {{.Driver}}")).stdout.splitlines()
    assert "host host" in nets and "proj_default bridge" in nets
    [net] = json.loads(ok(occ("network", "inspect", "proj_default")).stdout)
    assert [c["Name"] for c in net["Containers"].values()] == ["proj-app-1"]
    assert occ("network", "rm", "proj_default").returncode != 0
    assert occ("network", "rm", "host").returncode != 0
    ok(occ("network", "create", "mine"))
    assert "mine" in ok(occ("network", "ls")).stdout
    assert "Deleted Networks:\nmine" in ok(occ("network", "prune", "-f")).stdout
    assert "mine" not in ok(occ("network", "ls")).stdout

    # system df: the image, two containers (running), two volumes in use
    df = {ln.split("  ")[0]: ln.split() for ln in
          ok(occ("system", "df")).stdout.splitlines()[1:]}
    assert df["Images"][1:3] == ["1", "1"]
    assert df["Containers"][1:3] == ["2", "2"]
    assert df["Local Volumes"][2:4] == ["2", "2"]

    # the container and image groups are the top-level commands
    assert "a" in ok(occ("container", "ls", "--format", "{{.Names}}")).stdout.split()
    assert "busybox" in ok(occ("image", "ls")).stdout
    [img] = json.loads(ok(occ("image", "inspect", "busybox")).stdout)
    assert img["Id"].startswith("sha256:")

    # gone with their containers: then removable
    ok(occ("rm", "-f", "a"))
    ok(occ("down", cwd=proj))  # keeps the named volume
    assert "proj_default" not in ok(occ("network", "ls")).stdout
    # a project taken down is no longer registered: its volumes are seen from its folder
    assert "proj_vol" not in names(occ("volume", "ls", "-q"))
    assert names(occ("volume", "rm", "data", "proj_vol", cwd=proj)) == ["data", "proj_vol"]
    assert not (proj / ".containers" / "volumes" / "vol").exists()
    r = occ("volume", "rm", "nope")
    assert r.returncode == 1 and "no such volume: nope" in r.stderr
    ok(occ("volume", "rm", "-f", "nope"))


def test_system_prune_removes_stopped_containers_and_unused_images(occ: Any) -> None:
    ok(occ("create", "--name", "idle", "busybox", "true"))
    ok(occ("run", "-d", "--name", "busy", "busybox", "sleep", "600"))
    ok(occ("run", "--name", "done", "-v", "/anon", "busybox", "true"))
    r = occ("system", "prune", "--volumes", input="n\n")
    assert "WARNING! This will remove" in r.stdout
    assert set(names(occ("ps", "-a", "--format", "{{.Names}}"))) == {"idle", "busy", "done"}
    out = ok(occ("container", "prune", "-f")).stdout
    assert out.startswith("Deleted Containers:\n")
    assert names(occ("ps", "-a", "--format", "{{.Names}}")) == ["busy"]
    # -a: images no container uses; busybox is used by "busy"
    out = ok(occ("system", "prune", "-a", "-f", "--volumes")).stdout
    assert "Total reclaimed space:" in out
    assert "busybox" in ok(occ("images")).stdout
    ok(occ("rm", "-f", "busy"))
    out = ok(occ("image", "prune", "-a", "-f")).stdout
    assert "untagged: busybox" in out.lower()
    assert "busybox" not in ok(occ("images")).stdout
