"""The container commands end to end, through the CLI, on proot 5.1.0 and 5.4.0."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.runtime import procfs
from opencontainer.runtime.testing import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], proot: Path, test_images: Any) -> Iterator[Any]:
    """``oc`` with OPENCONTAINER_PROOT set to the parametrized proot.

    Afterwards every container the test left (a failed or skipped test) is removed, so no
    detached container outlives its test.
    """
    oc_env["OPENCONTAINER_PROOT"] = str(proot)
    oc.proot = proot
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def is_54(proot: Path) -> bool:
    return "--port" in subprocess.run([str(proot), "--help"], capture_output=True,
                                      text=True).stdout


def state(env: dict[str, str], name: str) -> dict[str, Any]:
    """A standalone container's state record (a project of one: ``containers/NAME/NAME``)."""
    path = Path(env["OPENCONTAINER_HOME"]) / "data" / "containers" / name / name / "state.json"
    return dict(json.loads(path.read_text()))


def supervisor_pid(env: dict[str, str], name: str) -> int:
    path = Path(env["OPENCONTAINER_HOME"]) / "data" / "containers" / name / "supervisor.pid"
    return int(path.read_text())


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    left = pids
    while time.monotonic() < deadline:
        left = [p for p in pids if procfs.alive(p)]
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes survived: {left}")


def container_pids(env: dict[str, str], name: str) -> list[int]:
    st = state(env, name)
    pid = st["pid"]
    return [pid, supervisor_pid(env, name), *procfs.traced_by(pid), *procfs.descendants(pid)]


def test_run_echo_and_exit_codes(occ: Any) -> None:
    res = occ("run", "--rm", "busybox", "echo", "hi")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi\n"
    res = occ("run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.returncode == 3
    assert res.stdout == "out\n" and "err" in res.stderr
    ps = occ("ps", "-a")
    assert "Exited (3)" in ps.stdout and "three" in ps.stdout
    assert "hi" not in occ("ps", "-a", "--format", "{{.Names}}").stdout  # --rm removed it
    logs = occ("logs", "three")
    assert logs.stdout == "out\n" and logs.stderr == "err\n"
    assert occ("rm", "three").returncode == 0
    assert occ("ps", "-a", "-q").stdout == ""
    res = occ("run", "--rm", "busybox", "nosuchcmd")
    assert res.returncode == 127
    assert res.stderr.strip().endswith('exec: "nosuchcmd": executable file not found in $PATH.')


def test_env_workdir_user(occ: Any, tmp_path: Path) -> None:
    envf = tmp_path / "vars.env"
    envf.write_text("B=from-file\n# comment\nA=overridden\n")
    res = occ("run", "--rm", "--env-file", str(envf), "-e", "A=one", "-w", "/tmp", "-u", "app",
              "--hostname", "box", "busybox", "sh", "-c",
              'echo "$A $B"; pwd; id -u; id -g; echo $HOME; cat /etc/hostname; '
              "env | cut -d= -f1 | sort")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:6] == ["one from-file", "/tmp", "1000", "1000", "/home/app", "box"]
    names = set(lines[6:])
    assert "OPENCONTAINER_HOME" not in names and "OPENCONTAINER_PROOT" not in names
    assert names <= {"A", "B", "PATH", "HOME", "HOSTNAME", "PWD", "SHLVL"}
    res = occ("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert res.returncode != 0 and "unable to find user nosuchuser" in res.stderr
    assert "Traceback" not in res.stderr


def test_volumes(occ: Any, tmp_path: Path) -> None:
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    res = occ("run", "--rm", "-v", f"{host}:/data", "busybox", "sh", "-c",
              "cat /data/in.txt; echo from container > /data/out.txt")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "from host\n"
    assert (host / "out.txt").read_text() == "from container\n"
    assert occ("run", "--rm", "-v", "myvol:/vol", "busybox", "sh", "-c",
               "echo kept > /vol/f").returncode == 0
    res = occ("run", "--rm", "-v", "myvol:/elsewhere", "busybox", "cat", "/elsewhere/f")
    assert res.stdout == "kept\n", res.stderr


def test_detached_exec_stop(occ: Any) -> None:
    script = "trap 'echo bye; exit 5' TERM; echo started; while :; do sleep 0.1; done"
    res = occ("run", "-d", "--name", "svc", "busybox", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.strip()
    assert len(cid) == 64
    ps = occ("ps")
    assert "svc" in ps.stdout and "Up " in ps.stdout and cid[:12] in ps.stdout
    res = occ("exec", "-e", "X=1", "-w", "/tmp", "svc", "sh", "-c", "echo $X; pwd")
    assert res.returncode == 0 and res.stdout == "1\n/tmp\n", res.stderr
    assert occ("exec", "svc", "sh", "-c", "exit 7").returncode == 7
    pids = container_pids(occ.env, "svc")
    assert occ("stop", "-t", "10", "svc").returncode == 0
    assert_gone(pids)
    ps = occ("ps", "-a", "--format", "json")
    row = json.loads(ps.stdout.splitlines()[0])
    assert row["Names"] == "svc" and row["Status"].startswith("Exited (5)")
    logs = occ("logs", "svc")
    assert logs.stdout.splitlines() == ["started", "bye"]
    info = json.loads(occ("inspect", "svc").stdout)[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 5
    assert occ("inspect", "-f", "{{.Name}}", "svc").stdout.strip() == "/svc"
    # start again, then rm -f: nothing survives
    assert occ("start", "svc").returncode == 0
    pids = container_pids(occ.env, "svc")
    assert occ("rm", "svc").returncode != 0  # running
    assert occ("rm", "-f", "svc").returncode == 0
    assert_gone(pids)
    assert occ("ps", "-a", "-q").stdout == ""


def test_kill_and_restart(occ: Any) -> None:
    res = occ("run", "-d", "--name", "k", "busybox", "sh", "-c",
              "trap '' TERM; while :; do sleep 0.1; done")
    assert res.returncode == 0, res.stderr
    pids = container_pids(occ.env, "k")
    assert occ("kill", "k").returncode == 0
    assert_gone(pids)
    assert "Exited (137)" in occ("ps", "-a").stdout
    assert occ("restart", "-t", "1", "k").returncode == 0
    assert "Up " in occ("ps").stdout
    pids = container_pids(occ.env, "k")
    assert occ("stop", "-t", "0.5", "k").returncode == 0  # ignores TERM: killed after 0.5 s
    assert_gone(pids)
    assert "Exited (137)" in occ("ps", "-a").stdout


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def http_get(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
        return str(r.read().decode())


def wait_http(port: int, timeout: float = 20) -> str:
    """The page behind ``port``, once the service answers (a relay may listen before the
    service behind it does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


HTTPD = "mkdir -p /www && echo hello-web > /www/index.html && exec httpd -f -p {port} -h /www"


def test_publish_low_container_port(occ: Any) -> None:
    host_port = free_port()
    res = occ("run", "-d", "--name", "web", "-p", f"{host_port}:80", "busybox", "sh", "-c",
              HTTPD.format(port=80))
    private = json.loads(occ("doctor", "--format", "json").stdout)["network"]["model"] == \
        "private"
    if is_54(occ.proot) or private:  # mapped by proot, or bound in the container's own network
        assert res.returncode == 0, res.stderr
        wait_port(host_port)
        assert http_get(host_port) == "hello-web\n"
        assert f"0.0.0.0:{host_port}->80/tcp" in occ("ps").stdout
        assert occ("rm", "-f", "web").returncode == 0
    else:
        if os.geteuid() == 0:
            pytest.skip("as root, port 80 can be bound without a port map")
        assert res.returncode != 0
        assert "proot >= 5.2" in res.stderr and res.stderr.count("\n") == 1
        assert occ("ps", "-a", "-q").stdout == ""  # failed before anything was created


def test_publish_relay_or_map(occ: Any) -> None:
    host_port, cport = free_port(), free_port()
    res = occ("run", "-d", "--name", "web2", "-p", f"127.0.0.1:{host_port}:{cport}", "busybox",
              "sh", "-c", HTTPD.format(port=cport))
    assert res.returncode == 0, res.stderr
    assert wait_http(host_port) == "hello-web\n"
    # a clash fails before start
    res = occ("run", "-d", "-p", f"{host_port}:{cport}", "busybox", "true")
    assert res.returncode != 0 and "already in use" in res.stderr
    assert occ("rm", "-f", "web2").returncode == 0


def test_export_cp_inspect_image(occ: Any, tmp_path: Path) -> None:
    assert occ("create", "--name", "c", "busybox", "true").returncode == 0
    out = tmp_path / "c.tar"
    assert occ("export", "-o", str(out), "c").returncode == 0
    with tarfile.open(out) as tf:
        names = tf.getnames()
    assert "bin/busybox" in names and "etc/passwd" in names
    src = tmp_path / "hostfile"
    src.write_text("copied in\n")
    assert occ("cp", str(src), "c:/tmp/").returncode == 0
    assert occ("start", "-a", "c").returncode == 0
    res = occ("cp", "c:/etc/passwd", str(tmp_path / "passwd"))
    assert res.returncode == 0, res.stderr
    assert "app:x:1000" in (tmp_path / "passwd").read_text()
    res = occ("run", "--rm", "busybox", "true")
    info = json.loads(occ("inspect", "busybox").stdout)
    assert info and "Id" in info[0]
    res = occ("inspect", "nosuch")
    assert res.returncode != 0 and "no such object" in res.stderr


def test_missing_proot(oc: Any, oc_env: dict[str, str], tmp_path: Path) -> None:
    env = {"OPENCONTAINER_PROOT": str(tmp_path / "no-proot")}
    for args in (("run", "--rm", "busybox", "true"), ("create", "busybox")):
        res = oc(*args, env=env)
        assert res.returncode != 0
        assert res.stderr.startswith("Error: OPENCONTAINER_PROOT names") and "Traceback" not in \
            res.stderr
    empty = tmp_path / "emptybin"
    empty.mkdir()
    env2 = {k: v for k, v in oc_env.items() if k != "OPENCONTAINER_PROOT"}
    env2["PATH"] = str(empty)
    res = subprocess.run([shutil.which("python3") or "python3", "-c", "0"], check=False)
    import sys

    res = subprocess.run([sys.executable, "-m", "opencontainer", "run", "busybox", "true"],
                         env=env2, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert res.returncode != 0
    assert "proot is not installed" in res.stderr and "apt install proot" in res.stderr


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One image store for both proot versions: the big service image is pulled once."""
    return tmp_path_factory.mktemp("shared-oc-home")


def test_redis_service(occ: Any, test_images: Any, shared_home: Path) -> None:
    test_images["redis"]  # skips when the Debian service image is unavailable
    occ.env["OPENCONTAINER_HOME"] = str(shared_home)
    if not shutil.which("redis-cli"):
        pytest.skip("redis-cli is not installed")
    host_port, cport = free_port(), free_port()
    res = occ("run", "-d", "--name", "redis", "--hostname", "a-long-hostname",
              "-p", f"{host_port}:{cport}", "redis:7",
              "redis-server", "--port", str(cport), "--protected-mode", "no",
              "--save", "", "--appendonly", "no", timeout=300)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 60
    answer = ""
    while time.monotonic() < deadline:
        answer = subprocess.run(["redis-cli", "-p", str(host_port), "ping"],
                                capture_output=True, text=True).stdout.strip()
        if answer == "PONG":
            break
        time.sleep(0.2)
    assert answer == "PONG", occ("logs", "redis").stdout
    # real coreutils (stat / ls -l call statx) see the container's files on both proots
    res = occ("exec", "redis", "sh", "-c",
              "echo 12345 > /root/only-here; stat -c %s /root/only-here; "
              "ls -l /root/only-here | cut -d' ' -f5; stat -c %s /etc/hostname")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["6", "6", str(len("a-long-hostname\n"))]
    pids = container_pids(occ.env, "redis")
    assert occ("stop", "redis").returncode == 0
    assert_gone(pids)
    assert "Exited (0)" in occ("ps", "-a", "--filter", "name=redis").stdout
    assert occ("rm", "redis").returncode == 0


def test_logs_follow(occ: Any) -> None:
    res = occ("run", "-d", "--name", "lf", "busybox", "sh", "-c",
              "echo one; sleep 1; echo two >&2; echo three")
    assert res.returncode == 0, res.stderr
    res = occ("logs", "-f", "-t", "lf", timeout=60)
    assert res.returncode == 0
    out = [ln.split(" ", 1) for ln in res.stdout.splitlines()]
    assert [text for _, text in out] == ["one", "three"]
    assert all(ts.endswith("Z") and "T" in ts for ts, _ in out)
    assert res.stderr.split(" ", 1)[1] == "two\n"
    assert occ("logs", "--tail", "1", "lf").stdout == "three\n"
