"""Private networks (issue 13): a network namespace per project, ports forwarded by
slirp4netns (or pasta), and the shared-host fallback.

Integration tests run real stacks as the unprivileged test user: two copies of the same stack
(the redis stand-in on 6379 and a busybox httpd on port 80 inside, different published ports)
up side by side; port 80 published on a high port; a service reaching another by name;
outbound HTTP (``wget``, ``apt-get update``) to a server on the host's loopback through
``host.docker.internal``; and ``OPENCONTAINER_NETWORK=host`` still sharing the host's loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.engine.model import PortSpec, ProjectModel, ServiceConfig
from opencontainer.engine.netholder import dns_for
from opencontainer.engine.network import choose_network, forwards, hosts_file, plan_private
from opencontainer.errors import ProotError
from opencontainer.runtime.netns import pasta_argv
from tests.fixtures.procs import free_port

# -- the decision and the plan (no processes) ---------------------------------------------------


def _which(found: set[str]) -> Any:
    return lambda name: f"/usr/bin/{name}" if name in found else None


def test_private_network_where_everything_is_there() -> None:
    c = choose_network({}, userns=True, which=_which({"slirp4netns", "pasta"}),
                       tun_usable=lambda: True)
    assert c.private and c.forwarder == "slirp4netns"
    c = choose_network({"OPENCONTAINER_NET_FORWARDER": "pasta"}, userns=True,
                       which=_which({"slirp4netns", "pasta"}), tun_usable=lambda: True)
    assert c.private and c.forwarder == "pasta" and c.binary == "/usr/bin/pasta"


@pytest.mark.parametrize(("env", "userns", "found", "tun", "why"), [
    ({"OPENCONTAINER_NETWORK": "host"}, True, {"slirp4netns"}, True, "OPENCONTAINER_NETWORK"),
    ({}, False, {"slirp4netns"}, True, "user namespaces"),
    ({}, True, set(), True, "not installed"),
    ({"OPENCONTAINER_NET_FORWARDER": "pasta"}, True, {"slirp4netns"}, True, "pasta"),
    ({}, True, {"slirp4netns"}, False, "/dev/net/tun"),
])
def test_shared_host_network_says_why(env: dict[str, str], userns: bool, found: set[str],
                                      tun: bool, why: str) -> None:
    c = choose_network(env, userns=userns, which=_which(found), tun_usable=lambda: tun)
    assert c.model == "host" and why in c.reason


def test_a_bad_network_setting_is_one_sentence() -> None:
    with pytest.raises(ProotError, match="OPENCONTAINER_NETWORK='bridge'"):
        choose_network({"OPENCONTAINER_NETWORK": "bridge"}, userns=True)


def _project(**services: tuple[PortSpec, ...]) -> ProjectModel:
    return ProjectModel(name="p", working_dir="/tmp", services={
        n: ServiceConfig(name=n, image="busybox", ports=ports) for n, ports in services.items()})


def test_private_plan_binds_any_port_and_forwards_the_published_ones() -> None:
    plan = plan_private(_project(web=(PortSpec(target=80, published=8080),),
                                 db=(PortSpec(target=5432),),
                                 dns=(PortSpec(target=53, published=5353, protocol="udp",
                                               host_ip="127.0.0.1"),)))
    assert not plan.port_map and not plan.relays
    assert plan.published["web"] == (("0.0.0.0", 8080, 80, "tcp"),)
    assert forwards(plan) == [("tcp", "", 8080, 80), ("udp", "127.0.0.1", 5353, 53)]


def test_private_plan_refuses_what_cannot_work() -> None:
    with pytest.raises(ProotError, match="share one loopback"):
        plan_private(_project(a=(PortSpec(target=80),), b=(PortSpec(target=80),)))
    with pytest.raises(ProotError, match="both publish host port 9000"):
        plan_private(_project(a=(PortSpec(target=80, published=9000),),
                              b=(PortSpec(target=81, published=9000),)))
    with pytest.raises(ProotError, match="below 1024"):
        plan_private(_project(a=(PortSpec(target=80, published=80),)))


def test_hosts_file_names_the_host_gateway() -> None:
    proj = ProjectModel(name="p", working_dir="/tmp", services={"web": ServiceConfig(
        name="web", image="busybox", extra_hosts=(("api.local", "host-gateway"),))})
    text = hosts_file(proj, "web", "p-web-1", host_gateway="10.0.2.2")
    assert "10.0.2.2\tapi.local" in text and "10.0.2.2\thost.docker.internal" in text
    assert "host.docker.internal" not in hosts_file(proj, "web", "p-web-1")


def test_loopback_resolvers_go_through_the_forwarder() -> None:
    assert dns_for("10.0.2.3", ["127.0.0.53"]) == ("10.0.2.3",)
    assert dns_for("10.0.2.3", ["192.168.1.1", "127.0.0.53"]) == ()
    assert dns_for("", ["127.0.0.53"]) == ()


def test_pasta_publishes_only_what_it_is_told() -> None:
    argv = pasta_argv("pasta", 42, ["127.0.0.1/8080:80"], [])
    assert argv[argv.index("-t") + 1] == "127.0.0.1/8080:80"
    assert argv[argv.index("-u") + 1] == "none" and argv[argv.index("-T") + 1] == "none"


# -- real stacks ----------------------------------------------------------------------------------

pytest_integration = pytest.mark.integration

TWO_COPIES = """
services:
  cache:
    image: redis:7
    ports: ["127.0.0.1:{redis}:6379"]
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo copy-{name} > /www/index.html &&
              exec httpd -f -p 80 -h /www"]
    ports: ["127.0.0.1:{web}:80"]
  app:
    image: busybox
    command: ["sh", "-c", "sleep 1; wget -q -O - http://web/ && echo app-reached-web;
              exec sleep 600"]
"""


def _skip_without_private(oc: Any) -> None:
    r = oc("doctor", "--format", "json")
    report = json.loads(r.stdout)
    if report["network"]["model"] != "private":
        pytest.skip(f"no private networks here: {report['network']['reason']}")


@pytest.fixture
def env54(proot_54: Path) -> dict[str, str]:
    return {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_ROOTFS": "overlay",
            "OPENCONTAINER_DISABLE_PLUGINS": "1"}


def _redis_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64)


def _wait(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode().strip()


@pytest_integration
@pytest.mark.parametrize("runtime", ["proot", "native"])
def test_two_copies_of_a_stack_side_by_side(oc: Any, env54: dict[str, str], test_images: Any,
                                           tmp_path: Path, runtime: str) -> None:
    """On either backend (issue 13: proot 5.4.0 in the project's network, or native)."""
    env54 = {**env54, "OPENCONTAINER_RUNTIME": runtime}
    test_images["busybox"]
    test_images["redis"]
    _skip_without_private(lambda *a: oc(*a, env=env54))
    ports: dict[str, dict[str, int]] = {}
    dirs: list[Path] = []
    try:
        for name in ("one", "two"):
            d = tmp_path / name
            d.mkdir()
            ports[name] = {"redis": free_port(), "web": free_port()}
            (d / "compose.yaml").write_text(TWO_COPIES.format(name=name, **ports[name]))
            dirs.append(d)
            r = oc("up", "-d", cwd=d, env=env54, timeout=180)
            assert r.returncode == 0, r.stderr + r.stdout
        for name, d in zip(("one", "two"), dirs, strict=True):
            # port 80 inside, as an unprivileged user, published on a high port
            assert _wait(lambda p=ports[name]["web"]: _get(p)) == f"copy-{name}"
            assert _wait(lambda p=ports[name]["redis"]: _redis_ping(p)) == b"+PONG\r\n"
            rows = {row["Service"]: row for row in map(json.loads, oc(
                "compose", "ps", "--format", "json", cwd=d, env=env54).stdout.splitlines())}
            assert rows["web"]["Publishers"][0]["PublishedPort"] == ports[name]["web"]
            assert rows["web"]["Publishers"][0]["TargetPort"] == 80
            shown = oc("inspect", "-f", "{{.OpenContainer.Runtime}}", rows["cache"]["Name"],
                       env=env54)
            assert shown.stdout.strip() == runtime, shown.stderr
            port = oc("compose", "port", "cache", "6379", cwd=d, env=env54).stdout.strip()
            assert port == f"127.0.0.1:{ports[name]['redis']}"
            deadline = time.monotonic() + 20
            while "app-reached-web" not in (logs := oc("compose", "logs", "app", cwd=d,
                                                        env=env54).stdout):
                assert time.monotonic() < deadline, logs
                time.sleep(0.3)
            # a service by name, from an exec, inside this copy's network only
            r = oc("compose", "exec", "-T", "app", "wget", "-q", "-O", "-", "http://web/",
                   cwd=d, env=env54)
            assert r.stdout.strip() == f"copy-{name}", r.stderr
        # the containers' ports are not the host's: nothing listens on the host's 6379/80
        # for them (the host may have its own there: that is the point)
        r = oc("compose", "exec", "-T", "web", "cat", "/proc/net/tcp", "/proc/net/tcp6",
               cwd=dirs[0], env=env54)
        assert ":0050 " in r.stdout  # port 80 listens in the copy's own namespace
        assert ":18EB " in r.stdout  # and redis's 6379, beside it
    finally:
        for d in dirs:
            oc("down", "-t", "1", cwd=d, env=env54, timeout=60)


@contextlib.contextmanager
def _host_http(root: Path) -> Iterator[int]:
    """An HTTP server on the host's 127.0.0.1 serving ``root``."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _flat_apt_repo(root: Path) -> None:
    """An empty flat apt repository (``deb [trusted=yes] http://…/ ./``) with a Release."""
    (root / "Packages").write_text("")
    data = b""
    sha = hashlib.sha256(data).hexdigest()
    (root / "Release").write_text(
        "Origin: opencontainer-test\nLabel: opencontainer-test\nSuite: local\n"
        "Codename: local\nArchitectures: amd64 arm64 all\nDate: Thu, 01 Jan 2026 00:00:00 UTC\n"
        f"SHA256:\n {sha} 0 Packages\n")


@pytest_integration
def test_outbound_to_the_hosts_loopback(oc: Any, env54: dict[str, str], test_images: Any,
                                       tmp_path: Path) -> None:
    test_images["busybox"]
    test_images["python"]
    _skip_without_private(lambda *a: oc(*a, env=env54))
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_text("hello from the host\n")
    _flat_apt_repo(www)
    with _host_http(www) as port:
        r = oc("run", "--rm", "busybox", "wget", "-q", "-O", "-",
               f"http://host.docker.internal:{port}/hello.txt", env=env54, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "hello from the host", r.stderr
        script = (f"echo 'deb [trusted=yes] http://host.docker.internal:{port}/ ./' "
                  "> /etc/apt/sources.list.d/local.list && rm -f /etc/apt/sources.list "
                  "/etc/apt/sources.list.d/debian.sources && apt-get update 2>&1")
        r = oc("run", "--rm", "python:3.11-slim", "sh", "-c", script, env=env54, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"host.docker.internal:{port}" in r.stdout and "Reading package lists" in r.stdout


@pytest_integration
def test_shared_host_network_when_forced(oc: Any, env54: dict[str, str], test_images: Any,
                                        tmp_path: Path) -> None:
    test_images["busybox"]
    env = {**env54, "OPENCONTAINER_NETWORK": "host"}
    report = json.loads(oc("doctor", "--format", "json", env=env).stdout)
    assert report["network"]["model"] == "host"
    assert "OPENCONTAINER_NETWORK" in report["network"]["reason"]
    web = free_port()
    d = tmp_path / "shared"
    d.mkdir()
    (d / "compose.yaml").write_text(f"""
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo shared > /www/index.html &&
              exec httpd -f -p 8000 -h /www"]
    ports: ["127.0.0.1:{web}:8000"]
""")
    try:
        r = oc("up", "-d", cwd=d, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert _wait(lambda: _get(web)) == "shared"
        # the host's loopback is the container's: proot maps 8000 to the published port
        r = oc("compose", "exec", "-T", "web", "wget", "-q", "-O", "-",
               f"http://127.0.0.1:{web}/", cwd=d, env=env)
        assert r.stdout.strip() == "shared", r.stderr
        assert not (d / ".containers" / "network.pid").exists()
    finally:
        oc("down", "-t", "1", cwd=d, env=env, timeout=60)


def test_slirp4netns_is_what_the_tests_install() -> None:
    if shutil.which("slirp4netns") is None:
        pytest.skip("slirp4netns is not installed")
    out = subprocess.run(["slirp4netns", "--version"], capture_output=True, text=True,
                         check=False).stdout
    assert "slirp4netns version" in out
