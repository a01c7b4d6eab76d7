"""The native backend (``OPENCONTAINER_RUNTIME=native``): containers run without proot in
user + mount + UTS + PID namespaces, with both id mappings (subordinate ids through
newuidmap, or only our own uid with the seccomp fake root)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.runtime import backend, idmap, procfs

from .test_runtime_fakeroot import CONTRACT, EXPECTED

pytestmark = [pytest.mark.integration]

ok, why = backend.native_possible()
if not ok:
    pytestmark.append(pytest.mark.skip(reason=f"no native backend here: {why}"))

IDMAPS = ["sub", "single"]


def _cleanup(oc: Any) -> None:
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


@pytest.fixture(params=IDMAPS)
def nat(request: pytest.FixtureRequest, oc: Any, oc_env: dict[str, str],
        test_images: Any) -> Iterator[Any]:
    """``oc`` on the native backend with the parametrized id mapping."""
    if request.param == "sub" and idmap.subordinate_range() is None:
        pytest.skip("no newuidmap/newgidmap or no /etc/subuid range for this user")
    oc_env["OPENCONTAINER_RUNTIME"] = "native"
    oc_env["OPENCONTAINER_IDMAP"] = str(request.param)
    oc.env = oc_env
    oc.idmap = request.param
    yield oc
    _cleanup(oc)


def _inspect(oc: Any, name: str) -> dict[str, Any]:
    res = oc("inspect", name)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    return dict(data[0] if isinstance(data, list) else data)


def test_run_exit_codes_and_runtime(nat: Any) -> None:
    res = nat("run", "--name", "c1", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.returncode == 3 and res.stdout == "out\n" and "err" in res.stderr
    info = _inspect(nat, "c1")
    assert info["HostConfig"]["Runtime"] == "native"
    assert info["OpenContainer"]["Runtime"] == "native"
    run_sh = Path(info["OpenContainer"]["RunScript"]).read_text()
    assert "native.py" in run_sh and "\nproot=(" not in run_sh
    assert nat("run", "--rm", "busybox", "true").returncode == 0
    res = nat("run", "--rm", "busybox", "nosuchcmd")
    assert res.returncode == 127


def test_pid_namespace_hostname_and_devices(nat: Any) -> None:
    res = nat("run", "--rm", "--hostname", "box", "busybox", "sh", "-c",
              "echo pid=$$; hostname; cat /etc/hostname; ps -o pid | wc -l; "
              "echo hi > /dev/null && ls /dev/zero /dev/urandom /dev/pts /dev/shm >/dev/null "
              "&& echo devices; touch /sys/x 2>/dev/null || echo sys-ro")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[:3] == ["pid=1", "box", "box"]
    assert int(lines[3]) <= 5  # ps header + sh + ps (+ wc): the host's processes are not there
    assert lines[4:] == ["devices", "sys-ro"]


def test_user_switching(nat: Any) -> None:
    res = nat("run", "--rm", "-u", "1000:1000", "busybox", "sh", "-c", "id -u; id -g")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1000", "1000"]
    res = nat("run", "--rm", "-u", "nobody", "busybox", "id", "-un")
    assert res.stdout.strip() == "nobody", res.stderr


def test_volumes_and_read_only(nat: Any, tmp_path: Path) -> None:
    host = tmp_path / "data"
    host.mkdir()
    (host / "in").write_text("from host\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f").write_text("ro\n")
    res = nat("run", "--rm", "-v", f"{host}:/data", "-v", f"{ro}:/ro:ro", "busybox", "sh", "-c",
              "cat /data/in; echo new > /data/out; cat /ro/f; "
              "echo x > /ro/f 2>/dev/null && echo WROTE || echo refused")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:3] == ["from host", "ro", "refused"]
    assert (host / "out").read_text() == "new\n"
    assert (ro / "f").read_text() == "ro\n"
    assert nat("run", "--rm", "-v", "nv:/vol", "busybox", "sh", "-c",
               "echo kept > /vol/f").returncode == 0
    assert nat("run", "--rm", "-v", "nv:/v2", "busybox", "cat", "/v2/f").stdout == "kept\n"


def test_stop_kill_and_exec(nat: Any) -> None:
    res = nat("run", "-d", "--name", "svc", "--hostname", "svchost", "busybox", "sh", "-c",
              "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done")
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 20
    while "started" not in nat("logs", "svc").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    res = nat("exec", "svc", "sh", "-c", "hostname; ps -o pid,comm | grep -c sleep >/dev/null; "
              "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == "svchost" and int(out[1]) > 1 and out[2].startswith("sh -c trap")
    assert nat("exec", "svc", "sh", "-c", "exit 5").returncode == 5
    if nat.idmap == "sub":  # a real user switch for exec -u
        assert nat("exec", "-u", "nobody", "svc", "id", "-un").stdout.strip() == "nobody"
    pid = _inspect(nat, "svc")["State"]["Pid"]
    t0 = time.monotonic()
    assert nat("stop", "svc").returncode == 0
    assert time.monotonic() - t0 < 8  # the trap ran: no grace period spent
    assert _inspect(nat, "svc")["State"]["ExitCode"] == 0
    assert not procfs.alive(pid)
    # kill: SIGKILL ends pid 1 and with it every process of the namespace
    nat("run", "-d", "--name", "k", "busybox", "sh", "-c", "sleep 300 & sleep 300")
    time.sleep(0.5)
    st = _inspect(nat, "k")["State"]
    kids = procfs.descendants(st["Pid"])
    assert nat("kill", "k").returncode == 0
    deadline = time.monotonic() + 10
    while _inspect(nat, "k")["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    info = _inspect(nat, "k")["State"]
    assert info["ExitCode"] == 137
    time.sleep(0.3)
    assert not [p for p in [st["Pid"], *kids] if procfs.alive(p)]


def test_fork_exec_loop(nat: Any) -> None:
    script = "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done; echo $i"
    t0 = time.monotonic()
    res = nat("run", "--rm", "busybox", "sh", "-c", script, timeout=120)
    elapsed = time.monotonic() - t0
    assert res.returncode == 0 and res.stdout.strip() == "1000", res.stderr
    assert elapsed < 30, elapsed  # proot 5.1.0 needs ~3 s here, native ~0.5 s + start


def test_root_contract(nat: Any, test_images: Any) -> None:
    test_images["python"]
    res = nat("run", "--rm", "python:3.11-slim", "python3", "-c", CONTRACT, timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout
    if nat.idmap == "single":  # set*id succeed, but nothing can make getuid() say 999
        assert res.stdout.splitlines() == [*EXPECTED[:-1], "ids 0 0 0"]
    else:
        assert res.stdout.splitlines() == EXPECTED


SINGLE_LOOPS = ("one mapped id: gosu is faked but `id -u` stays 0, so the official entry points "
                "re-exec themselves forever (OPENCONTAINER_RUNTIME=auto runs them under proot)")


@pytest.mark.parametrize("nat", ["sub"], indirect=True)  # single: see SINGLE_LOOPS
def test_redis_official_entrypoint(nat: Any, test_images: Any) -> None:
    test_images["redis"]
    res = nat("run", "-d", "--name", "r", "redis:7", "redis-server", "--port", "0",
              "--unixsocket", "/tmp/redis.sock", timeout=180)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ping = nat("exec", "r", "redis-cli", "-s", "/tmp/redis.sock", "ping")
        if ping.stdout.strip() == "PONG":
            break
        time.sleep(0.3)
    assert ping.stdout.strip() == "PONG", (ping, nat("logs", "r"), _inspect(nat, "r")["State"])
    owner = nat("exec", "r", "sh", "-c", "stat -c %U /data; ps -o user= -p 1 || ps -o user,pid")
    if nat.idmap == "sub":
        assert owner.stdout.split()[:2] == ["redis", "redis"], owner.stdout


@pytest.mark.parametrize("nat", ["sub"], indirect=True)  # single: see SINGLE_LOOPS
def test_postgres_official_entrypoint(nat: Any, test_images: Any) -> None:
    test_images["postgres"]
    res = nat("run", "-d", "--name", "pg", "-e", "POSTGRES_PASSWORD=pw", "postgres:15",
              "postgres", "-c", "listen_addresses=", timeout=180)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 120
    logs = ""
    while time.monotonic() < deadline:
        logs = nat("logs", "pg").stdout + nat("logs", "pg").stderr
        if "ready to accept connections" in logs.split("PostgreSQL init process complete")[-1] \
                or "root execution" in logs or not _inspect(nat, "pg")["State"]["Running"]:
            break
        time.sleep(0.5)
    assert "ready to accept connections" in logs, logs
    res = nat("exec", "-u", "postgres", "pg", "psql", "-tAc", "select 1+1")
    assert res.stdout.strip() == "2", res.stderr


def test_auto_chooses_proot_for_what_native_lacks_yet() -> None:
    env = {"OPENCONTAINER_RUNTIME": "auto"}
    assert backend.decide("", env, userns=True) == ("native", "user namespaces work here")
    needs = backend.proot_needs(host_ports=["80/tcp", 8080, "443"], init=True)
    chosen, why = backend.decide("", env, userns=True, needs=needs)
    assert chosen == "proot"
    assert "container port 80, 443 (below 1024" in why and "--init" in why
    assert backend.proot_needs(host_ports=[8080, "5432/tcp"]) == []
    assert backend.decide("", {"OPENCONTAINER_RUNTIME": "native"}, userns=True,
                          needs=needs)[0] == "native"
    assert backend.decide("", {"OPENCONTAINER_RUNTIME": "proot"}, userns=True)[0] == "proot"


@pytest.fixture
def auto(oc: Any, oc_env: dict[str, str], test_images: Any) -> Iterator[Any]:
    oc_env["OPENCONTAINER_RUNTIME"] = "auto"
    oc.env = oc_env
    yield oc
    _cleanup(oc)


def test_auto_runs_a_low_port_service_under_proot_and_says_why(auto: Any) -> None:
    """In the host's network (OPENCONTAINER_NETWORK=host) only proot's port map gives port 80
    to a normal user; in the container's own network native binds it."""
    host = {"OPENCONTAINER_NETWORK": "host"}
    assert auto("create", "--name", "web", "--expose", "80", "busybox", "true",
                env=host).returncode == 0
    info = _inspect(auto, "web")
    assert info["HostConfig"]["Runtime"] == "proot"
    assert "container port 80" in info["OpenContainer"]["RuntimeReason"]
    want = "native" if idmap.subordinate_range() is not None else "proot"
    assert auto("create", "--name", "hi", "--expose", "8080", "busybox", "true",
                env=host).returncode == 0
    assert _inspect(auto, "hi")["HostConfig"]["Runtime"] == want
    assert auto("create", "--name", "own", "--expose", "80", "busybox", "true").returncode == 0
    assert _inspect(auto, "own")["HostConfig"]["Runtime"] == want


def test_native_refuses_a_low_port_in_one_sentence(nat: Any) -> None:
    import os

    from opencontainer.runtime.testing import free_port

    if os.geteuid() == 0:
        pytest.skip("checked as an unprivileged user")
    res = nat("run", "-d", "-p", f"{free_port()}:80", "busybox", "true",
              env={"OPENCONTAINER_NETWORK": "host"})
    assert res.returncode != 0
    assert "native backend cannot bind" in res.stderr and "proot cannot map" not in res.stderr
    assert res.stderr.count("\n") == 1
