"""``run``/``create`` flags of docker's that CI scripts type: --init, --platform, --mount,
-P/--expose, --read-only, --tmpfs, --label-file, -a, --cidfile, -q, --network, --ulimit,
--shm-size, and the resource/capability flags that are accepted with one warning."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.errors import ContainerError
from opencontainer.runtime.proot import ProotCapabilities
from tests.test_runtime_cli import is_54, wait_port

pytestmark = pytest.mark.integration


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], proot: Path, test_images: Any) -> Iterator[Any]:
    """``oc`` with the parametrized proot; what a test leaves is removed afterwards."""
    oc_env["OPENCONTAINER_PROOT"] = str(proot)
    oc.proot = proot
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def overlay_root(occ: Any, name: str) -> bool:
    """Does this container have an overlay root (a mount namespace of ours)?"""
    spec = (Path(occ.env["OPENCONTAINER_HOME"]) / "data" / "containers" / name / name
            / "spec.json")
    return bool(json.loads(spec.read_text()).get("overlay"))


def test_init_reaps_and_forwards(occ: Any) -> None:
    # the command runs under the reaper (docker's /sbin/docker-init), its exit code passes
    res = occ("run", "--init", "--name", "i", "busybox", "sh", "-c",
              "tr '\\0' ' ' < /proc/$PPID/cmdline; exit 3")
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("/sbin/docker-init -s -- sh -c"), res.stdout
    assert occ("inspect", "-f", "{{.HostConfig.Init}}", "i").stdout.strip() in ("true", "True")
    # a stop signal reaches the command through the init
    assert occ("run", "-d", "--init", "--name", "t", "busybox", "sh", "-c",
               "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done").returncode == 0
    deadline = time.monotonic() + 20
    while "ready" not in occ("logs", "t").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert occ("stop", "t").returncode == 0
    assert occ("inspect", "-f", "{{.State.ExitCode}}", "t").stdout.strip() == "42"


def test_mounts_tmpfs_and_read_only(occ: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("host\n")
    script = ("cat /data/f; echo x > /scratch/x && echo tmpfs-ok; "
              "echo y > /data/g 2>/dev/null || echo ro-bind-refused; "
              "touch /rootfile 2>/dev/null && echo root-writable || echo root-refused")
    res = occ("run", "--name", "m", "--read-only", "--tmpfs", "/scratch",
              "--mount", f"type=bind,source={data},target=/data,readonly",
              "busybox", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[:2] == ["host", "tmpfs-ok"]
    if overlay_root(occ, "m"):  # enforced: a read-only overlay and a read-only bind
        assert lines[2:] == ["ro-bind-refused", "root-refused"]
        assert "WARNING" not in res.stderr
    else:
        assert "--read-only not enforced" in res.stderr
    assert not (data / "g").exists() or not overlay_root(occ, "m")
    # --mount never creates a missing bind source (unlike -v), and names its keys
    res = occ("run", "--rm", "--mount", f"type=bind,src={tmp_path / 'nope'},dst=/x", "busybox",
              "true")
    assert res.returncode != 0 and "does not exist" in res.stderr
    res = occ("run", "--rm", "--mount", "type=volume,source=vol1,target=/v", "busybox", "sh",
              "-c", "echo kept > /v/k")
    assert res.returncode == 0, res.stderr
    res = occ("run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/k")
    assert res.stdout == "kept\n"


def test_publish_all_and_expose(occ: Any) -> None:
    res = occ("run", "-d", "--name", "web", "--expose", "18080", "-P", "busybox", "sh", "-c",
              "mkdir -p /w && echo hi-P > /w/index.html && exec httpd -f -p 18080 -h /w")
    assert res.returncode == 0, res.stderr
    port_line = occ("port", "web").stdout.strip()
    assert port_line.startswith("18080/tcp -> 0.0.0.0:"), port_line
    host_port = int(port_line.rsplit(":", 1)[1])
    assert host_port != 18080
    wait_port(host_port)
    with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/index.html", timeout=10) as r:
        assert r.read() == b"hi-P\n"


def test_labels_cidfile_attach_quiet(occ: Any, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# a comment\nteam=web\ntier=front\n")
    cid = tmp_path / "cid"
    res = occ("create", "-q", "--name", "c", "--label-file", str(labels), "-l", "tier=back",
              "--cidfile", str(cid), "busybox", "true")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert cid.read_text() == res.stdout.strip()
    got = json.loads(occ("inspect", "-f", "{{json .Config.Labels}}", "c").stdout)
    assert got["team"] == "web" and got["tier"] == "back"  # -l wins over the file
    # a second container with the same cidfile is refused, as docker does
    res = occ("create", "--cidfile", str(cid), "busybox", "true")
    assert res.returncode != 0 and "container ID file found" in res.stderr
    # -a stderr: only the error stream is shown
    res = occ("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert res.returncode == 0
    assert res.stdout == "" and res.stderr.strip().endswith("err")


def test_ulimit_and_shm_size(occ: Any) -> None:
    res = occ("run", "--name", "u", "--ulimit", "nofile=512:1024", "--shm-size", "8m",
              "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1")
    assert res.returncode == 0, res.stderr
    soft, hard, df = res.stdout.splitlines()
    assert (soft, hard) == ("512", "1024")
    host = json.loads(occ("inspect", "-f", "{{json .HostConfig}}", "u").stdout)
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
    assert host["ShmSize"] == 8 * 1024 * 1024
    if overlay_root(occ, "u"):
        assert df.split()[1] == "8192", df  # a tmpfs of 8 MiB
    else:
        assert "--shm-size not enforced" in res.stderr
    res = occ("run", "--rm", "--ulimit", "nofile=20:10", "busybox", "true")
    assert res.returncode != 0 and "soft limit is above the hard one" in res.stderr
    res = occ("run", "--rm", "--ulimit", "nofile=1:999999999999", "busybox", "true")
    assert res.returncode != 0 and "only root can raise" in res.stderr


def test_unenforced_flags_warn_once(occ: Any) -> None:
    res = occ("run", "--rm", "-m", "256m", "--cpus", "1.5", "--cap-add", "NET_ADMIN",
              "--cap-drop", "ALL", "--privileged", "--security-opt", "no-new-privileges",
              "--network", "none", "busybox", "echo", "ran")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ran\n"
    warnings = [ln for ln in res.stderr.splitlines() if "WARNING" in ln]
    assert len(warnings) == 1
    for flag in ("--memory", "--cpus", "--cap-add", "--privileged", "--network none"):
        assert flag in warnings[0]
    # host/bridge/default: what every container has here; no warning
    for network in ("host", "bridge", "default", "mynet"):
        res = occ("run", "--rm", "--network", network, "busybox", "true")
        assert res.returncode == 0 and "WARNING" not in res.stderr, res.stderr
    res = occ("run", "--rm", "-m", "lots", "busybox", "true")
    assert res.returncode != 0 and "invalid --memory" in res.stderr


def test_platform(occ: Any, test_images: Any) -> None:
    ref = test_images["multiarch"].reference
    res = occ("run", "--rm", "--platform", "linux/amd64", ref, "cat", "/platform")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "linux/amd64\n"
    res = occ("run", "--rm", "--platform", "linux/arm64", ref, "cat", "/platform")
    assert res.returncode != 0
    if not is_54(occ.proot):
        assert "proot >= 5.4" in res.stderr and "5.1.0" in res.stderr
    res = occ("run", "--rm", "--platform", "linux/", ref, "true")
    assert res.returncode != 0 and "invalid platform" in res.stderr


def test_qemu_choice(tmp_path: Path) -> None:
    from opencontainer.engine.runner import qemu_for

    old = ProotCapabilities(binary="proot", version="5.1.0")
    new = ProotCapabilities(binary="proot", version="5.4.0")
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64")
    assert qemu_for(host, old, {}, "img") is None
    foreign = "arm64" if host != "arm64" else "amd64"
    with pytest.raises(ContainerError, match=re.escape("proot >= 5.4")):
        qemu_for(foreign, old, {}, "img")
    fake = tmp_path / ("qemu-aarch64-static" if foreign == "arm64" else "qemu-x86_64-static")
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert qemu_for(foreign, new, {"PATH": str(tmp_path)}, "img") == str(fake)
