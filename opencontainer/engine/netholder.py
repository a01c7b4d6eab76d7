"""A project's private network, as its supervisor keeps it: the network holder process.

The holder (:mod:`opencontainer.runtime.netns`, run as ``python -S -P step.py netns``) makes the
project's user + network namespace and runs the forwarder (slirp4netns or pasta) beside it;
containers join it through its pid file (``nsexec --netns``). It ends when the supervisor
closes its stdin -- or dies: the pipe closes with it.

Published ports: with slirp4netns they are added and removed while the project runs, through
its API socket (``add_hostfwd``/``remove_hostfwd``); pasta (2023-03, Debian bookworm) takes
them on its command line only, so a change to them restarts the holder when no container is
in its namespace, and is refused otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from ..errors import ContainerError
from ..logs import logger
from ..paths import atomic_write
from ..runtime import netns
from ..runtime.kernel import live_pid

log = logger()

# (protocol, host_ip, host_port, container_port)
Forward = tuple[str, str, int, int]


def forward_arg(f: Forward) -> str:
    _proto, ip, host, cont = f
    return f"{ip}/{host}:{cont}" if ip else f"{host}:{cont}"


@attrs.define(eq=False)
class NetHolder:
    """The network of one project (``directory``: its state folder, for the pid file)."""

    directory: Path
    forwarder: str = "slirp4netns"
    pidfile_name: str = "network.pid"
    binary: str = "slirp4netns"
    sub: str = ""  # SUBUID:SUBGID:COUNT: the holder maps them too (native containers nest)
    gateway: str = ""
    forwards: frozenset[Forward] = frozenset()
    _proc: anyio.abc.Process | None = None
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    @property
    def pidfile(self) -> Path:
        return self.directory / self.pidfile_name

    @property
    def log_file(self) -> Path:
        return self.pidfile.with_suffix(".log")

    @property
    def info_file(self) -> Path:
        return self.pidfile.with_suffix(".json")

    @property
    def api_socket(self) -> str:
        return netns.api_socket(str(self.pidfile))

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and \
            live_pid(str(self.pidfile)) is not None

    def expected_gateway(self) -> str:
        """The host's address in the namespace before the network is up, where it is fixed
        (slirp4netns: 10.0.2.2); "" when only the started forwarder knows it (pasta)."""
        return netns.SLIRP_GATEWAY if self.forwarder == "slirp4netns" else ""

    def dns(self) -> str:
        """The resolver address inside the namespace that reaches the host's (slirp4netns)."""
        return netns.SLIRP_DNS if self.forwarder == "slirp4netns" else ""

    async def ensure(self, forwards: Iterable[Forward], *, busy: bool = False) -> None:
        """The network is up and publishes exactly ``forwards``; ``busy``: containers are in
        it now (pasta cannot change its ports then)."""
        wanted = frozenset(forwards)
        async with self._lock:
            if not self.running:
                await self._stop()
                await self._start(wanted)
                return
            if wanted == self.forwards:
                return
            if self.forwarder == "slirp4netns":
                await anyio.to_thread.run_sync(self._slirp_update, wanted)
                return
            if busy:
                raise ContainerError(
                    "the published ports of this project changed while its containers run, "
                    "and pasta cannot change them; stop the project first (or use "
                    "OPENCONTAINER_NET_FORWARDER=slirp4netns).")
            await self._stop()
            await self._start(wanted)

    async def _start(self, forwards: frozenset[Forward]) -> None:
        from ..runtime.overlay import step_argv

        argv = [*step_argv("netns"), "--pidfile", str(self.pidfile), "--forwarder", self.forwarder,
                "--binary", self.binary, "--log", str(self.log_file)]
        if self.sub:
            argv += ["--sub", self.sub]
        for f in sorted(forwards):
            argv += ["--tcp" if f[0] == "tcp" else "--udp", forward_arg(f)]
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.log_file.unlink()
        with anyio.CancelScope(shield=True):  # never a holder running without its handle
            proc = await anyio.open_process(argv, stdin=-1, stdout=-1, stderr=-1,
                                            start_new_session=True)
        assert proc.stdout is not None and proc.stderr is not None
        line = b""
        try:
            with anyio.move_on_after(20):
                async for chunk in proc.stdout:
                    line += chunk
                    if b"\n" in line:
                        break
        except BaseException:  # cancelled: end it, never leave it running
            await _end(proc)
            raise
        words = line.decode(errors="replace").split()
        if len(words) < 3 or words[0] != "ready":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            err = b""
            with anyio.move_on_after(2):
                async for chunk in proc.stderr:
                    err += chunk
            await proc.aclose()
            why = err.decode(errors="replace").strip().removeprefix("opencontainer: ")
            raise ContainerError(why or "the project's network could not be set up.")
        self._proc = proc
        self.gateway = "" if words[2] == "-" else words[2]
        self.forwards = forwards
        atomic_write(self.info_file, json.dumps({
            "forwarder": self.forwarder, "gateway": self.gateway, "dns": self.dns()}))
        log.debug("network up", dir=str(self.directory), forwarder=self.forwarder,
                  gateway=self.gateway)

    def _slirp_update(self, wanted: frozenset[Forward]) -> None:
        """Add the new forwards, remove the old ones, through slirp4netns's API socket."""
        listed = self._slirp_call({"execute": "list_hostfwd"})
        entries = listed.get("return", {}).get("entries", [])
        for e in entries:
            f = (e.get("proto", "tcp"), e.get("host_addr", ""), e.get("host_port", 0),
                 e.get("guest_port", 0))
            if not any(_same(f, w) for w in wanted):
                self._slirp_call({"execute": "remove_hostfwd",
                                  "arguments": {"id": e.get("id")}})
        for w in wanted - self.forwards:
            answer = self._slirp_call({"execute": "add_hostfwd", "arguments": {
                "proto": w[0], "host_addr": w[1] or "0.0.0.0", "host_port": w[2],
                "guest_port": w[3]}})
            if "error" in answer:
                raise ContainerError(f"cannot publish port {w[2]}: "
                                     f"{answer['error'].get('desc', 'slirp4netns refused')}.")
        self.forwards = wanted

    def _slirp_call(self, req: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.api_socket)
            s.sendall(json.dumps(req).encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        try:
            out = json.loads(data or b"{}")
        except ValueError:
            return {"error": {"desc": data.decode(errors="replace")}}
        return out if isinstance(out, dict) else {}

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        self.forwards = frozenset()
        if proc is not None:
            await _end(proc)


async def _end(proc: anyio.abc.Process) -> None:
    """End a holder: its stdin closed, it frees the ports, removes its pid file and exits
    (also when it is still setting up: it reads its stdin once ready); killed after 3 s."""
    with anyio.CancelScope(shield=True):
        if proc.stdin is not None:
            with contextlib.suppress(OSError, anyio.BrokenResourceError,
                                     anyio.ClosedResourceError):
                await proc.stdin.aclose()
        with anyio.move_on_after(3):
            await proc.wait()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.aclose()


def _same(f: Forward, w: Forward) -> bool:
    return f[0] == w[0] and f[2] == w[2] and f[3] == w[3] and (f[1] or "0.0.0.0") == (
        w[1] or "0.0.0.0")


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    return [f[1] for f in (line.split() for line in text.splitlines())
            if len(f) > 1 and f[0] == "nameserver"]


def dns_for(forwarder_dns: str, resolvers: list[str] | None = None) -> tuple[str, ...]:
    """The resolvers of a container in a private network: none of its own (the host's
    ``resolv.conf``) unless the host's are all on its loopback (systemd-resolved's
    127.0.0.53, a local dnsmasq), which the namespace cannot reach: then the forwarder's."""
    found = host_resolvers() if resolvers is None else resolvers
    loopback = [r for r in found if r.startswith("127.") or r == "::1"]
    if forwarder_dns and found and len(loopback) == len(found):
        return (forwarder_dns,)
    return ()


def join_existing(pidfile: Path) -> tuple[str, str, tuple[str, ...]] | None:
    """(pid file, gateway, resolvers) of a project's network that another supervisor runs,
    or None when there is none."""
    if live_pid(str(pidfile)) is None:
        return None
    try:
        info = json.loads(pidfile.with_suffix(".json").read_text())
    except (OSError, ValueError):
        info = {}
    return (str(pidfile), str(info.get("gateway") or ""),
            dns_for(str(info.get("dns") or "")))


async def wait_gone(pidfile: Path, timeout: float = 10.0) -> None:
    """Until the holder of ``pidfile`` has ended (it removes the file once its forwarder is
    gone and the ports are free); after ``timeout`` (a loaded machine) its namespace process
    is killed: its owner is gone, and a container must never join an ending network."""
    with anyio.move_on_after(timeout):
        while live_pid(str(pidfile)) is not None:
            await anyio.sleep(0.02)
    pid = live_pid(str(pidfile))
    if pid is not None:
        import signal

        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with anyio.move_on_after(5):
            while live_pid(str(pidfile)) is not None:
                await anyio.sleep(0.02)
