"""What a proot binary can do, and the command line that runs a container with it.

Capabilities come from the binary itself, never from a version string alone: ``--help`` lists
the options, and a probe run tells whether ``statx`` is path-translated: a host file of 1 byte
is bound over by a "guest" file of 5 bytes, and a raw ``statx`` from inside proot reports the
size it sees (5: translated, 1: proot passed the host path through untouched, as Debian's 5.1.0
does). Results are cached per binary (path, size, mtime) in ``<cache>/proot-caps.json``.

What the three proots we know offer (from their ``--help``):

==================  ===========  ===========  ===============
capability          Debian 5.1   upstream 5.4 Termux (6c09638)
==================  ===========  ===========  ===============
``kill_on_exit``    no           yes          yes
``port_map``        no           yes          no
``low_port_shift``  no           no           yes
``link2symlink``    no           yes          yes
``sysvipc``         no           no           yes
``fix_lstat``       no           no           yes
==================  ===========  ===========  ===============

``port_map``: upstream's ``-p IN:OUT`` (proot >= 5.2) rewrites the port of bind/connect.
``low_port_shift``: Termux's ``-p`` takes *no* argument; it adds 2000 to every port below 1024
that a tracee binds (and connects to on 127.0.0.1/::1), so a container's port 80 is the host's
2080 — published ports are then relayed to the shifted port. ``sysvipc``: ``--sysvipc`` emulates
System V IPC inside proot (Android has none; PostgreSQL needs its shared memory).
``fix_lstat``: ``-L`` makes lstat report a symlink's real size. ``link2symlink``: hard links
become symlinks, used only when the container's filesystem refuses hard links
(``ContainerSpec.link2symlink``).

Never ``-k``: proot < 5.2 with ``-k`` breaks every glibc >= 2.33 binary (fstatat EINVAL).
Use ``-r ROOTFS`` with explicit binds, not ``-R`` (which brings the host's /etc/passwd, /tmp, /run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ProotError
from ..logs import logger
from . import syscalls
from .spec import ContainerSpec

log = logger()

CACHE_FORMAT = 3

# Newer syscalls that an old proot does not translate; the seccomp wrapper makes them fail with
# ENOSYS in the tracee so libc / libuv fall back to the older calls proot knows. Not clone3:
# proot follows clone3 children through PTRACE_O_TRACECLONE anyway, and answering it with ENOSYS
# made PostgreSQL's initdb crash (SIGSEGV in the bootstrap step) under proot 5.1.0.
UNTRANSLATED_FALLBACK_SYSCALLS = ("statx", "openat2", "faccessat2", "fchmodat2")

# Termux's -p: bind() to a port below LOW_PORT_LIMIT binds port + LOW_PORT_SHIFT instead
LOW_PORT_LIMIT = 1024
LOW_PORT_SHIFT = 2000


@attrs.frozen
class ProotCapabilities:
    binary: str
    version: str | None = None
    kill_on_exit: bool = False
    port_map: bool = False  # upstream's -p IN:OUT
    low_port_shift: bool = False  # Termux's -p: bound ports below 1024 move up by 2000
    link2symlink: bool = False
    sysvipc: bool = False
    fix_lstat: bool = False  # -L
    change_id: bool = False
    statx: bool = True  # statx path-translated (or the kernel has none: nothing to translate)
    seccomp_accel: bool = False
    works: bool = True
    problem: str | None = None

    @property
    def needs_seccomp_fallback(self) -> bool:
        return self.works and not self.statx

    def shifts_low_ports(self, is_root: bool | None = None) -> bool:
        """Run with Termux's ``-p`` (ports below 1024 + 2000): a normal user with a proot that
        has it and no real port map."""
        if is_root is None:
            is_root = os.geteuid() == 0
        return self.low_port_shift and not self.port_map and not is_root

    def host_side_port(self, container_port: int, is_root: bool | None = None) -> int:
        """The port a container's ``bind(container_port)`` really binds on the host."""
        if self.shifts_low_ports(is_root) and 0 < container_port < LOW_PORT_LIMIT:
            return container_port + LOW_PORT_SHIFT
        return container_port

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def detect(cls, binary: Path | str, cache_dir: Path | None = None) -> ProotCapabilities:
        """Detect (or load from the cache) the capabilities of ``binary``."""
        binary = Path(binary)
        try:
            st = binary.stat()
        except OSError as exc:
            raise ProotError(f"cannot use proot at {binary}: {exc.strerror}.") from exc
        key = f"{binary.absolute()}|{st.st_size}|{st.st_mtime_ns}|{CACHE_FORMAT}"
        cache_file = cache_dir / "proot-caps.json" if cache_dir else None
        cached = _cache_load(cache_file)
        if key in cached:
            try:
                return cls(**cached[key])
            except TypeError:
                pass
        caps = _detect(binary)
        if cache_file is not None and caps.works:  # a failure may be passing: probe again
            cached[key] = caps.to_dict()
            try:
                from ..paths import atomic_write

                atomic_write(cache_file, json.dumps(cached, indent=1, sort_keys=True))
            except OSError:
                log.debug("proot caps cache not writable", path=str(cache_file))
        return caps


def _cache_load(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _help_text(binary: Path) -> str:
    try:
        res = subprocess.run(
            [str(binary), "--help"], capture_output=True, timeout=20, env=_probe_env(), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProotError(f"cannot run proot at {binary}: {exc}.") from exc
    return (res.stdout + res.stderr).decode(errors="replace")


def _probe_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("PROOT_TMP_DIR", "TMPDIR", "PROOT_LOADER", "PROOT_NO_SECCOMP", "LD_LIBRARY_PATH"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def parse_help(text: str) -> dict[str, Any]:
    def has(pattern: str) -> bool:
        return re.search(pattern, text, re.MULTILINE) is not None

    m = re.search(r"^proot (v?\d+\.\d+(?:\.\d+)?)", text, re.MULTILINE) or re.search(
        r"\|\s*v?(\d+\.\d+\.\d+)\s*$", text, re.MULTILINE
    )
    port_map = has(r"^[ \t]*-p \S+, --port")
    return {
        "version": m.group(1).lstrip("v") if m else None,
        "kill_on_exit": has(r"--kill-on-exit"),
        "port_map": port_map,
        # Termux: "  -p" alone on its line ("Modify bindings to protected ports ...")
        "low_port_shift": not port_map and has(r"^[ \t]*-p[ \t]*$"),
        "link2symlink": has(r"--link2symlink"),
        "sysvipc": has(r"^[ \t]*--sysvipc\b"),
        "fix_lstat": has(r"^[ \t]*-L[ \t]*$"),
        "change_id": has(r"--change-id"),
        "seccomp_accel": has(r"seccomp_filter = yes"),
    }


_STATX_PROBE = r"""
import ctypes, sys
nr, path = int(sys.argv[1]), sys.argv[2].encode()
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
r = libc.syscall(nr, -100, path, 0, 0x200, buf)
if r != 0:
    print("errno", ctypes.get_errno())
else:
    print("size", int.from_bytes(buf.raw[40:48], "little"))
"""


def _stat_sees_host_file(binary: Path, guest: Path, host: Path) -> bool:
    """The quick answer (~10 ms instead of ~0.5 s for Python under proot 5.1.0): coreutils'
    ``stat`` (statx since 8.32) inside proot reports the size of ``host``, over which ``guest``
    is bound. 1 byte: some call went to the kernel with the host path, so statx is not
    translated. Anything else proves nothing (this ``stat`` may not use statx): the Python
    probe decides then."""
    stat_bin = shutil.which("stat", path="/usr/bin:/bin")
    if stat_bin is None:
        return False
    try:
        res = subprocess.run(
            [str(binary), "-w", "/", "-b", f"{guest}:{host}", stat_bin, "-c", "%s", str(host)],
            capture_output=True, timeout=20, env=_probe_env(), check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and res.stdout.split() == [b"1"]


def _probe_statx(binary: Path) -> tuple[bool, bool, str | None]:
    """(works, statx_translated, problem)."""
    nr = syscalls.number("statx")
    import tempfile  # here: the probe runs once per proot binary (cached)

    with tempfile.TemporaryDirectory(prefix="oc-proot-probe-") as tmp:
        host, guest = Path(tmp, "host"), Path(tmp, "guest")
        host.write_bytes(b"h")
        guest.write_bytes(b"guest")
        if nr is not None and _stat_sees_host_file(binary, guest, host):
            return True, False, None
        script = "print('ok')" if nr is None else _STATX_PROBE
        argv = [str(binary), "-w", "/", "-b", f"{guest}:{host}", sys.executable, "-I", "-S",
                "-c", script]
        if nr is not None:
            argv += [str(nr), str(host)]
        try:
            res = subprocess.run(
                argv, capture_output=True, timeout=60, env=_probe_env(), check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, True, f"proot did not run a probe program: {exc}"
    out = res.stdout.decode(errors="replace").split()
    if res.returncode != 0 or not out:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit code {res.returncode}"
        return False, True, f"proot failed to run a probe program ({why})"
    if nr is None or out[0] == "ok":
        return True, True, None
    if out[0] == "errno":
        # ENOSYS: this kernel has no statx, nothing to translate
        return True, out[1:] != ["2"], None
    return True, out[1:] == ["5"], None


def _detect(binary: Path) -> ProotCapabilities:
    info = parse_help(_help_text(binary))
    works, statx, problem = _probe_statx(binary)
    caps = ProotCapabilities(binary=str(binary), statx=statx, works=works, problem=problem, **info)
    log.debug("proot capabilities", **caps.to_dict())
    return caps


# -- the command line ------------------------------------------------------------------------


@attrs.frozen
class Arg:
    """One command-line element and why it is there (run.sh prints the comment)."""

    value: tuple[str, ...]
    comment: str = ""


def proot_args(
    spec: ContainerSpec,
    caps: ProotCapabilities,
    binary: Path | str,
    etc_dir: Path | None = None,
    *,
    is_root: bool | None = None,
) -> list[Arg]:
    """proot and its options, grouped with comments, up to (not including) the command.
    ``is_root`` (default: whether we are) decides Termux's low-port shift."""
    out: list[Arg] = [Arg((str(binary),), "proot")]
    out.append(Arg((f"--rootfs={spec.rootfs}",), "the container's own root filesystem"))
    for p in ("/proc", "/dev", "/sys"):
        out.append(Arg(("-b", p), f"the host's {p}"))
    if etc_dir is not None:
        for name in ("hosts", "hostname", "resolv.conf"):
            f = etc_dir / name
            if f.exists():
                out.append(Arg(("-b", f"{f}:/etc/{name}"), f"generated /etc/{name}"))
        from .procfake import binds

        for f, at in binds(etc_dir):
            out.append(Arg(("-b", f"{f}:{at}"), f"generated {at} (the host's is unreadable)"))
    ro_at = iter(at for _, at in _ro_binds(spec))
    for m in spec.mounts:
        what = f"volume {m.name}" if m.kind == "volume" and m.name else m.kind
        source, note = m.source, ""
        if m.read_only and spec.overlay is not None:
            source = next(ro_at)
            note = f" {m.source}, read-only (bound there read-only in our mount namespace)"
        elif m.read_only:
            note = " (read-only is not enforced by proot)"
        out.append(Arg(("-b", f"{source}:{m.target}"), f"{what}{note}"))
    if spec.shm_size:
        note = (f"a tmpfs of {spec.shm_size} bytes" if spec.overlay is not None
                else "a private folder (its size is not limited: no tmpfs without an overlay root)")
        out.append(Arg(("-b", f"{shm_dir(spec)}:/dev/shm"), f"/dev/shm: {note}"))
    if spec.qemu:
        out.append(Arg(("-q", spec.qemu), "a foreign architecture, run by qemu-user"))
    if spec.uid == 0:
        out.append(Arg(("-0",), "fake root, as images expect"))
    else:
        out.append(Arg(("-i", spec.user), "run as uid:gid"))
    out.append(Arg(("-w", spec.cwd), "working directory"))
    if caps.kill_on_exit:
        out.append(Arg(("--kill-on-exit",), "end every container process with the main one"))
    if caps.fix_lstat:
        out.append(Arg(("-L",), "lstat reports a symlink's real size"))
    if caps.sysvipc and not host_has_sysvipc():
        out.append(Arg(("--sysvipc",), "System V IPC emulated by proot (this kernel has none)"))
    if caps.link2symlink and spec.link2symlink:
        out.append(Arg(("--link2symlink",),
                       "this filesystem refuses hard links: proot makes symlinks instead"))
    if caps.port_map:
        for pm in spec.ports:
            if pm.container_port != pm.host_port:
                out.append(
                    Arg(("-p", f"{pm.container_port}:{pm.host_port}"),
                        f"container port {pm.container_port} is host port {pm.host_port}")
                )
    elif caps.shifts_low_ports(is_root):
        out.append(Arg(("-p",), f"ports below {LOW_PORT_LIMIT} are bound {LOW_PORT_SHIFT} "
                                "higher (a normal user cannot bind them)"))
    return out


def host_has_sysvipc(proc: Path = Path("/proc")) -> bool:
    """Does this kernel have System V IPC? Android's kernels have none, and there
    ``--sysvipc`` (Termux's proot) emulates it for PostgreSQL's shared memory. Where the
    kernel has it, the emulation is not used: it made every start of a stack with health
    probes ten times slower here, and containers were killed (SIGKILL) when a probe's proot
    ended."""
    return (proc / "sysvipc" / "shm").exists()


def build_proot_argv(
    spec: ContainerSpec,
    caps: ProotCapabilities,
    binary: Path | str,
    etc_dir: Path | None = None,
    *,
    is_root: bool | None = None,
) -> list[str]:
    """``proot`` + options + the container command (the environment is separate: see
    :func:`build_command`)."""
    argv: list[str] = []
    for a in proot_args(spec, caps, binary, etc_dir, is_root=is_root):
        argv.extend(a.value)
    argv.extend(spec.full_argv)
    return argv


def env_binary() -> str:
    return shutil.which("env") or "/usr/bin/env"


def seccomp_file() -> str:
    """This copy's ``runtime/seccomp.py`` (run as a file by run.sh)."""
    return str(Path(__file__).resolve().with_name("seccomp.py"))


def seccomp_prefix(caps: ProotCapabilities, python: str | None = None) -> list[str]:
    """The ENOSYS exec wrapper for a proot that does not translate statx & co (else [])."""
    if not caps.needs_seccomp_fallback:
        return []
    return [
        python or sys.executable,
        "-S",  # no site: ~20 ms less per start; PYTHONPATH (run.sh, host_env) finds us
        "-P",  # never the current directory on sys.path: a project's files are not ours
        seccomp_file(),  # by its path: no runpy, no package __init__ (~15 ms a start)
        "--enosys",
        ",".join(UNTRANSLATED_FALLBACK_SYSCALLS),
        "--",
    ]


def wrapper_prefix(spec: ContainerSpec, caps: ProotCapabilities, python: str | None = None,
                   *, join: bool = False) -> list[str]:
    """What run.sh execs before ``env -i … proot``: the overlay namespace step (new, or
    ``join`` the running container's, for exec) with the ENOSYS filter folded in, or just the
    ENOSYS wrapper, or nothing."""
    if spec.overlay is None and spec.netns:
        from .overlay import step_argv

        # no overlay root, but the project's network: nsexec joins it, then the filter
        argv = [*step_argv("nsexec", python), "--netns", spec.netns]
        if caps.needs_seccomp_fallback:
            argv += ["--enosys", ",".join(UNTRANSLATED_FALLBACK_SYSCALLS)]
        if spec.uid == 0:  # in the holder's user namespace chown to an unmapped id is EINVAL
            argv += ["--succeed", ",".join(syscalls.CHOWN_FAMILY)]
        return [*argv, "--"]
    if spec.overlay is None:
        return seccomp_prefix(caps, python)
    from .overlay import nsexec_prefix

    enosys = UNTRANSLATED_FALLBACK_SYSCALLS if caps.needs_seccomp_fallback else ()
    # the fake-root contract in the user namespace: chown to an unmapped id is EINVAL there,
    # which proot -0 does not hide (see seccomp.py); a copied root in the host's namespaces
    # needs no filter, since the kernel answers EPERM and proot -0 turns that into success
    succeed = syscalls.CHOWN_FAMILY if spec.uid == 0 else ()
    return nsexec_prefix(spec.overlay, python, join=join, enosys=enosys, succeed=succeed,
                         hostname=spec.hostname or None, read_only=_ro_binds(spec),
                         read_only_root=spec.read_only,
                         tmpfs=((shm_dir(spec), spec.shm_size),) if spec.shm_size else (),
                         netns=spec.netns)


def shm_dir(spec: ContainerSpec) -> str:
    """The host folder bound at /dev/shm for ``--shm-size`` (beside the root)."""
    return str(Path(spec.rootfs).parent / "shm")


# docker's --ulimit names, which are prlimit(1)'s options too
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
           "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as")


def ulimit_prefix(spec: ContainerSpec) -> list[str]:
    """``prlimit --NAME=SOFT:HARD … --``: the rlimits of ``--ulimit``, set before proot runs
    (they are inherited by everything in the container); [] without any."""
    if not spec.ulimits:
        return []
    binary = shutil.which("prlimit") or "prlimit"
    out = [binary]
    for item in spec.ulimits:
        name, _, value = item.partition("=")
        soft, _, hard = value.partition(":")
        hard = hard or soft
        out.append(f"--{name}={_limit(soft)}:{_limit(hard)}")
    return [*out, "--"]


def _limit(value: str) -> str:
    return "unlimited" if value.strip() in ("-1", "unlimited") else value.strip()


def _ro_binds(spec: ContainerSpec) -> list[tuple[str, str]]:
    if spec.overlay is None:
        return []
    from .overlay import ro_binds

    return ro_binds(spec.overlay, [m.source for m in spec.mounts if m.read_only])


def env_prefix(spec: ContainerSpec) -> list[str]:
    """``env -i K=V ...``: the container sees exactly its environment, nothing of the host's."""
    return [env_binary(), "-i", *(f"{k}={v}" for k, v in spec.env.items())]


def build_command(
    spec: ContainerSpec,
    caps: ProotCapabilities,
    binary: Path | str,
    etc_dir: Path | None = None,
    python: str | None = None,
    *,
    join: bool = False,
) -> list[str]:
    """The full command that runs the container (what run.sh execs); ``join``: a second
    process in the running container (exec, health checks)."""
    return [
        *ulimit_prefix(spec),
        *wrapper_prefix(spec, caps, python, join=join),
        *env_prefix(spec),
        *build_proot_argv(spec, caps, binary, etc_dir),
    ]


def check_ports(spec: ContainerSpec, caps: ProotCapabilities, is_root: bool | None = None) -> None:
    """Fail before anything starts when a published port cannot work with this proot."""
    if is_root is None:
        is_root = os.geteuid() == 0
    for p in spec.ports:
        bound = caps.host_side_port(p.container_port, is_root)
        if p.protocol != "tcp" and p.host_port != bound and not caps.port_map:
            where = f"port {bound}" if bound != p.container_port else "the same port"
            raise ProotError(
                f"port {p}: a {p.protocol} port published on a different host port needs a proot "
                f"with port mapping (-p IN:OUT, proot >= 5.2); publish it on {where}."
            )
        if not is_root and p.host_port < LOW_PORT_LIMIT:
            raise ProotError(
                f"port {p}: host port {p.host_port} is below 1024, which a normal user cannot "
                f"bind; publish it on a host port >= 1024 (e.g. -p 8080:{p.container_port})."
            )
        if (not caps.port_map and not is_root and bound < LOW_PORT_LIMIT):
            raise ProotError(
                f"port {p}: the container listens on port {p.container_port} (< 1024), which needs "
                "a proot that maps ports to run as a normal user: upstream proot >= 5.2 (-p "
                "IN:OUT) or Termux's proot (-p moves ports below 1024 up by 2000)."
            )


def relayed_ports(spec: ContainerSpec, caps: ProotCapabilities,
                  is_root: bool | None = None) -> list[tuple[str, int, int]]:
    """(host_ip, host_port, port) that need the user-space relay: ``port`` is where the
    container's listener really is on the host (its own port, or Termux's port + 2000)."""
    if caps.port_map:
        return []
    out = []
    for p in spec.ports:
        bound = caps.host_side_port(p.container_port, is_root)
        if p.host_port != bound and p.protocol == "tcp":
            out.append((p.host_ip, p.host_port, bound))
    return out


def quote_all(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
