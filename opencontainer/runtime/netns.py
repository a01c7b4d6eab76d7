"""A project's private network: a user + network namespace held open, and its forwarder.

Every compose project (and every standalone container unless ``--network host``) gets a
network namespace of its own, so its services' ports are private: two copies of a stack, or a
host service on the same port, no longer collide. This module is the *network holder*, a tiny
process the supervisor starts before the project's containers (``python -S -P step.py netns``,
standard library only, like :mod:`nsexec`):

1. It forks. The child ``unshare``\\ s a user namespace (our uid and gid mapped to themselves;
   with ``--sub`` also the user's subordinate ids, at :func:`sub_base`, mapped by the parent
   with ``newuidmap``/``newgidmap``, so that native-backend containers nested in it can map
   them again) and a network namespace, brings ``lo`` up and writes
   ``net.ipv4.ip_unprivileged_port_start = 0`` there (a sysctl of *that* namespace: port 80
   binds without root and without any port rewriting), then only waits. Its pid (and start
   time) goes to ``--pidfile``: containers join the namespace through it (``nsexec
   --netns``, ``native --netns``, :func:`join_net`).
2. The parent stays in the host's namespaces and runs the forwarder against the child:
   ``pasta`` (passt) -- or ``slirp4netns`` -- which gives the namespace a tap interface with
   outbound traffic (TCP, UDP, DNS, ICMP) and forwards the published ports from the host.
   With pasta the namespace's default gateway stands for the host's loopback (pasta's
   gateway mapping); slirp4netns offers the host's loopback at ``10.0.2.2``. That address is
   printed, and the containers' ``/etc/hosts`` calls it ``host.docker.internal``.
3. It prints ``ready PID GATEWAY`` and waits for its stdin to close (the supervisor's end of
   the pipe: a dead supervisor, even ``kill -9``'d, ends it); then it stops the forwarder and
   the child. The namespace itself lives until its last process (the containers) ends.

Usage::

    python -S -P step.py netns --pidfile F [--forwarder pasta|slirp4netns|none]
        [--tcp HOST_IP/HOST_PORT:CONTAINER_PORT]... [--udp ...] [--log FILE]
        [--sub SUBUID:SUBGID:COUNT]

Exit status 125 with one sentence on stderr when the namespace or the forwarder cannot be made.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

from . import kernel
from .kernel import StepError, check, write_file, write_pidfile

# typing.TYPE_CHECKING without importing typing; socket, struct and select are imported where
# used: nsexec imports this module to join a network (join_net) at every start
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:  # what the signal module wraps: its enums (enum, functools ...) cost ~5 ms a start
    import _signal as signal

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 1
EXIT_SETUP = 125

SLIRP_GATEWAY = "10.0.2.2"  # slirp4netns: the host's loopback, as seen from the namespace
SLIRP_DNS = "10.0.2.3"


class NetnsError(StepError):
    pass


def _check(ret: int, what: str) -> None:
    check(ret, what, NetnsError)


def _lo_up() -> None:
    # _socket, not socket: that one's enums and selectors cost the holder ~7 ms a start
    import _socket
    import fcntl
    import struct

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS,
                    struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
    finally:
        s.close()


def sub_base(own: int, count: int) -> int:
    """Where a holder's user namespace puts the subordinate ids (``count`` of them): a range
    that does not contain the user's own id, which stays mapped to itself."""
    base = 1 << 20
    return base if not base <= own < base + count else 1 << 21


def enter_new_netns(mapped_by: tuple[int, int] | None = None) -> None:
    """A new user + network namespace for this process: ids mapped to themselves (or, with
    ``mapped_by`` = (write end, read end) of pipes to the parent, by the parent), ``lo`` up,
    every port bindable by anyone (the namespace's own sysctl)."""
    libc = kernel.libc()
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare(user, network namespace)")
    if mapped_by is not None:
        os.write(mapped_by[0], b"map\n")  # the parent runs newuidmap/newgidmap for us
        if os.read(mapped_by[1], 1) != b"1":
            raise NetnsError(0, "cannot map the subordinate ids (newuidmap/newgidmap)")
    else:
        try:  # noqa: SIM105
            write_file("/proc/self/setgroups", "deny")
        except FileNotFoundError:
            pass
        write_file("/proc/self/uid_map", f"{uid} {uid} 1\n")
        write_file("/proc/self/gid_map", f"{gid} {gid} 1\n")
    _lo_up()
    try:  # noqa: SIM105  -- kernels before 4.11 have no such sysctl: low ports need root
        write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
    except OSError:
        pass
    try:  # noqa: SIM105  -- ping inside the namespace (busybox ping uses ICMP sockets)
        write_file("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
    except OSError:
        pass


def _setns_path(libc: ctypes.CDLL, path: str, flag: int, what: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(libc.setns(fd, flag), what)
    finally:
        os.close(fd)


def join_net(pid: int) -> None:
    """``setns`` into the user and network namespaces of the holder ``pid``: afterwards this
    process may ``unshare`` its own (nested) user, mount and UTS namespaces as before; its
    network is the project's. Must run single-threaded (a user namespace is joined)."""
    libc = kernel.libc()
    if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
        return
    if os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino:
        _setns_path(libc, f"/proc/{pid}/ns/user", CLONE_NEWUSER,
                    "join the project's user namespace")
    _setns_path(libc, f"/proc/{pid}/ns/net", CLONE_NEWNET, "join the project's network")


def join_net_of(pid: int) -> None:
    """``setns`` into the network namespace of a process (a container) and the user namespace
    that owns that network namespace: before joining the container's own (nested) user
    namespace, which has no capability over its parent's network namespace."""
    import fcntl

    libc = kernel.libc()
    path = f"/proc/{pid}/ns/net"
    if os.stat(path).st_ino == os.stat("/proc/self/ns/net").st_ino:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            if os.fstat(owner).st_ino != os.stat("/proc/self/ns/user").st_ino:
                _check(libc.setns(owner, CLONE_NEWUSER), "join the project's user namespace")
        finally:
            os.close(owner)
        _check(libc.setns(fd, CLONE_NEWNET), "join the container's network")
    finally:
        os.close(fd)


# -- the forwarders ----------------------------------------------------------------------------
def api_socket(pidfile: str) -> str:
    """Where slirp4netns's API socket for the holder of ``pidfile`` goes: a short path (a unix
    socket's path has at most 107 bytes, project folders can be deeper) private to us."""
    import zlib  # not hashlib: OpenSSL's start-up costs the holder ~3 ms

    base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp",
                        f"opencontainer-net-{os.getuid()}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    key = os.path.abspath(pidfile).encode()
    digest = f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}"
    return os.path.join(base, f"{digest}.sock")


def _split_port(spec: str) -> tuple[str, int, int]:
    """``HOST_IP/HOST_PORT:CONTAINER_PORT`` (HOST_IP may be empty: every address)."""
    addr, _, ports = spec.rpartition("/")
    host, _, cont = ports.partition(":")
    return addr, int(host), int(cont or host)


def pasta_argv(binary: str, pid: int, tcp: list[str], udp: list[str]) -> list[str]:
    """pasta in the foreground against the namespace of ``pid`` (joining its user namespace):
    its tap configured like the host's interface; published ports only (``none`` otherwise:
    pasta's default ``auto`` would publish whatever a container binds, and mirror the host's
    bound ports into the namespace, where they would take the containers' ports)."""
    argv = [binary, "--foreground", "--quiet", "--config-net",
            "--userns", f"/proc/{pid}/ns/user", "--netns", f"/proc/{pid}/ns/net",
            "-T", "none", "-U", "none"]
    for flag, specs in (("-t", tcp), ("-u", udp)):
        if specs:
            for s in specs:
                addr, host, cont = _split_port(s)
                argv += [flag, (f"{addr}/" if addr else "") + f"{host}:{cont}"]
        else:
            argv += [flag, "none"]
    return argv


def slirp_argv(binary: str, pid: int, api: str, ready_fd: int, exit_fd: int) -> list[str]:
    return [binary, "--configure", "--mtu=65520", "--enable-ipv6", f"--api-socket={api}",
            f"--ready-fd={ready_fd}", f"--exit-fd={exit_fd}",
            f"--userns-path=/proc/{pid}/ns/user", str(pid), "tap0"]


def _slirp_hostfwd(api: str, proto: str, spec: str) -> None:
    import json
    import socket

    addr, host, cont = _split_port(spec)
    req = json.dumps({"execute": "add_hostfwd", "arguments": {
        "proto": proto, "host_addr": addr or "0.0.0.0", "host_port": host, "guest_port": cont}})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(api)
        s.sendall(req.encode())
        s.shutdown(socket.SHUT_WR)
        answer = s.recv(65536).decode("utf-8", "replace")
    if '"error"' in answer:
        raise NetnsError(0, f"slirp4netns cannot publish port {host}: {answer.strip()}")


def _gateway(route: str = "/proc/net/route") -> str:
    """The default gateway in ``route`` (this namespace's: pasta copies the host's)."""
    import socket
    import struct

    try:
        with open(route) as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if len(f) > 2 and f[1] == "00000000":
                    return socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
    except (OSError, ValueError):
        pass
    return ""


def _wait_gateway(pid: int, timeout: float = 5.0) -> str:
    """The default gateway of ``pid``'s namespace, once the forwarder has configured it."""
    deadline = time.monotonic() + timeout
    while not (gateway := _gateway(f"/proc/{pid}/net/route")):
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.01)
    return gateway


def _fail(msg: str) -> int:
    sys.stderr.write(f"opencontainer: {msg}\n")
    sys.stderr.flush()
    return EXIT_SETUP


def _map_sub(child: int, sub: str) -> bool:
    """Map the user's own ids to themselves and its subordinate ids at :func:`sub_base` in
    ``child``'s user namespace (the setuid tools of the uidmap package)."""
    subuid, subgid, count = (int(x) for x in sub.split(":"))
    uid, gid = os.getuid(), os.getgid()
    dirs = [*os.environ.get("PATH", "").split(":"), "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for tool, own, first in (("newuidmap", uid, subuid), ("newgidmap", gid, subgid)):
            path = next((f"{d}/{tool}" for d in dirs if d and os.access(f"{d}/{tool}", os.X_OK)),
                        tool)
            argv = [tool, str(child), str(own), str(own), "1",
                    str(sub_base(own, count)), str(first), str(count)]
            pid = os.posix_spawn(path, argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)])
            if os.waitpid(pid, 0)[1] != 0:
                return False
    finally:
        os.close(null)
    return True


def _child(w: int, ctl: int = -1) -> None:
    """The namespace's process: set up, report on ``w``, wait for stdin's end (``ctl``: the
    parent's answer once it has mapped our ids, with ``--sub``)."""
    try:
        enter_new_netns((w, ctl) if ctl >= 0 else None)
    except OSError as exc:
        os.write(w, f"error {exc.strerror or exc}\n".encode())
        os._exit(EXIT_SETUP)
    os.write(w, b"ok\n")
    os.close(w)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(0)


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for the child ``pid`` to end, and reap it: woken by its pidfd
    the moment it ends (a 10 ms polling step cost ~20 ms at every network's end), or, on
    kernels without pidfds (before 5.3), by polling in short steps."""
    import select

    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    try:
        step = 0.0005
        while True:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd >= 0:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(step, left))
                step = min(step * 2, 0.01)
    except ChildProcessError:
        return True
    finally:
        if fd >= 0:
            os.close(fd)


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _exited(pid, 1.0):
        return
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts: dict[str, str] = {"forwarder": "pasta"}
    tcp: list[str] = []
    udp: list[str] = []
    while args:
        opt = args.pop(0)
        key, eq, value = opt.partition("=")
        if key not in ("--pidfile", "--forwarder", "--tcp", "--udp", "--log", "--binary",
                       "--sub"):
            return _fail(f"netns: unknown option {opt!r}")
        if not eq:
            if not args:
                return _fail(f"netns: {opt} needs a value")
            value = args.pop(0)
        if key == "--tcp":
            tcp.append(value)
        elif key == "--udp":
            udp.append(value)
        else:
            opts[key[2:]] = value
    if "pidfile" not in opts:
        return _fail("usage: netns.py --pidfile F [--forwarder pasta|slirp4netns|none]")
    forwarder = opts["forwarder"]
    r, w = os.pipe()
    ctl_r, ctl_w = os.pipe() if opts.get("sub") else (-1, -1)
    child = os.fork()
    if child == 0:
        os.close(r)
        if ctl_w >= 0:
            os.close(ctl_w)
        _child(w, ctl_r)
    os.close(w)
    if ctl_r >= 0:
        os.close(ctl_r)

    def read_status() -> bytes:
        out = b""
        while not out.endswith(b"\n"):
            chunk = os.read(r, 256)
            if not chunk:
                break
            out += chunk
        return out

    status = read_status()
    if status.startswith(b"map") and ctl_w >= 0:
        os.write(ctl_w, b"1" if _map_sub(child, opts["sub"]) else b"0")
        status = read_status()
    if ctl_w >= 0:
        os.close(ctl_w)
    os.close(r)
    if not status.startswith(b"ok"):
        _reap(child)
        why = status.decode(errors="replace").partition(" ")[2].strip() or "unknown error"
        return _fail(f"cannot create the project's network namespace: {why}.")
    log_fd = os.open(opts.get("log", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
    fwd_pid = 0
    gateway = ""
    exit_w = -1
    try:
        if forwarder == "pasta":
            argv_ = pasta_argv(opts.get("binary", "pasta"), child, tcp, udp)
            fwd_pid = _spawn(argv_, log_fd)
            gateway = _wait_gateway(child)
            if not gateway:
                raise NetnsError(0, "pasta did not configure the namespace")
            # the forwarded ports are bound once pasta has set the interface up: wait for them
            _wait_bound(fwd_pid, tcp)
        elif forwarder == "slirp4netns":
            api = api_socket(opts["pidfile"])
            try:  # noqa: SIM105
                os.unlink(api)
            except FileNotFoundError:
                pass
            ready_r, ready_w = os.pipe()
            exit_r, exit_w = os.pipe()
            argv_ = slirp_argv(opts.get("binary", "slirp4netns"), child, api, ready_w, exit_r)
            fwd_pid = _spawn(argv_, log_fd, keep=(ready_w, exit_r))
            os.close(ready_w)
            os.close(exit_r)
            ok = _read_with_timeout(ready_r, 5.0)
            os.close(ready_r)
            if not ok:
                raise NetnsError(0, "slirp4netns did not start")
            for s in tcp:
                _slirp_hostfwd(api, "tcp", s)
            for s in udp:
                _slirp_hostfwd(api, "udp", s)
            gateway = SLIRP_GATEWAY
        elif forwarder != "none":
            raise NetnsError(0, f"unknown forwarder {forwarder!r}")
    except OSError as exc:
        if fwd_pid:
            _reap(fwd_pid)
        _reap(child)
        what = exc.strerror or str(exc)
        tail = _log_tail(opts.get("log", ""))
        return _fail(f"cannot connect the project's network: {what}"
                     + (f" ({tail})" if tail else "") + ".")
    write_pidfile(opts["pidfile"], child)
    sys.stdout.write(f"ready {child} {gateway or '-'}\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: None)  # end like a closed stdin
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    if exit_w >= 0:
        os.close(exit_w)
    if fwd_pid and (tcp or udp):
        _reap(fwd_pid)  # the published ports are free once this returns
    elif fwd_pid:
        # nothing to free: not waiting for its end saves the 10-40 ms the kernel takes to
        # tear its tap device down (it ends on its own: its exit pipe is closed)
        try:  # noqa: SIM105
            os.kill(fwd_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _reap(child)
    try:
        with open(opts["pidfile"]) as fh:
            ours = fh.read().split()[:1] == [str(child)]
    except OSError:
        ours = False
    # a newer holder of the project may have its pid file (and API socket) there by now
    for path in (opts["pidfile"], *((api_socket(opts["pidfile"]),)
                                     if forwarder == "slirp4netns" else ())) if ours else ():
        try:  # noqa: SIM105
            os.unlink(path)
        except OSError:
            pass
    return 0


def _log_tail(path: str) -> str:
    """The forwarder's last meaningful log line (not its syslog complaints)."""
    try:
        with open(path, errors="replace") as fh:
            lines = [ln.strip() for ln in fh if ln.strip() and "syslog" not in ln]
    except OSError:
        return ""
    return lines[-1].rstrip(".")[:300] if lines else ""


def _spawn(argv: list[str], log_fd: int, keep: tuple[int, ...] = ()) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            nul = os.open(os.devnull, os.O_RDONLY)
            os.dup2(nul, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            for fd in keep:
                os.set_inheritable(fd, True)
            # Python ignores SIGPIPE, and an ignored signal stays ignored across exec: pasta
            # (2023-03) takes a previous SIG_IGN for a failure to install its handlers
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def _read_with_timeout(fd: int, timeout: float) -> bool:
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready) and bool(os.read(fd, 16))


def _wait_bound(fwd_pid: int, tcp: list[str], timeout: float = 5.0) -> None:
    """Until each published TCP port accepts a bind no more (pasta has it), or ``timeout``;
    a forwarder that exits meanwhile is an error."""
    import socket

    deadline = time.monotonic() + timeout
    pending = [_split_port(s) for s in tcp]
    while pending and time.monotonic() < deadline:
        done, _status = os.waitpid(fwd_pid, os.WNOHANG)
        if done:
            raise NetnsError(0, "the forwarder exited (is a published port taken?)")
        still = []
        for addr, host, cont in pending:
            with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET) as s:
                try:
                    s.bind((addr or "0.0.0.0", host))
                    still.append((addr, host, cont))
                except OSError:
                    pass
        pending = still
        if pending:
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
