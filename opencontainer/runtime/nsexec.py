"""Run a command with the container's overlay root mounted: the exec wrapper of ``run.sh``.

A normal user may create a user namespace and, inside it, a mount namespace where an
overlayfs is mounted (Linux >= 5.11, ``userxattr``): the image's unpacked tree is the read-only
lower layer, the container's ``upper/`` takes every change. That is copy-on-write without root
and without copying a byte when the container is created. This module is that step, in a
process of its own so that nothing multi-threaded ever calls ``unshare``:

1. ``unshare(CLONE_NEWUSER | CLONE_NEWNS)``; our uid and gid are mapped to themselves, so the
   files, proot and every process look exactly as without the namespace (a uid that is not 0
   loses the namespace's capabilities at ``execve``: the container gets no extra powers).
2. ``/`` is made private and the overlay is mounted on the container's ``rootfs/``.
3. Our pid (and its start time) goes to ``--pidfile``: ``exec`` and ``cp`` find the namespace
   there (``--join-pidfile``: ``setns`` into it instead of 1. and 2.).
4. Optionally the seccomp filter of :mod:`seccomp` (``--enosys`` for an old proot,
   ``--succeed`` for the chown family of a fake-root container), then ``execvp``.

The mount lives as long as a process is inside the namespace; no clean-up is needed, and a
``kill -9`` of everything leaves nothing mounted.

Usage (as run.sh does, through :mod:`step`, which imports this module from its cached
bytecode without the ``opencontainer`` package's ``__init__``; ``-m
opencontainer.runtime.nsexec`` works the same)::

    python -S -P step.py nsexec --lower L --upper U --work W --merged M \\
        [--pidfile F] [--enosys a,b] -- proot -r M ...
    python -S -P step.py nsexec --join-pidfile F [--enosys a,b] -- proot ...
    python -S -P step.py nsexec --lower ... --hold     # mount, print "ready", wait
    python -S -P step.py nsexec --netns F [--lower ...] -- CMD   # in the project's network

``--netns F``: first ``setns`` into the user + network namespace of the project's network
holder (its pid file ``F``, see :mod:`netns`); the new namespaces nest in that user namespace.
Without ``--lower`` only the network is joined. ``--join-pidfile`` joins the running
container's network too (whichever it is).

``--read-only`` mounts the overlay read-only (``run --read-only``); ``--tmpfs SIZE:DIR`` mounts a
tmpfs of SIZE bytes on the host folder DIR in the new namespace (``--shm-size``).

Exit status 125 with one sentence on stderr when the namespace or the mount cannot be made.

Only the standard library is imported here, and as little of it as can be: this runs at every
container start, exec and health probe.
"""

from __future__ import annotations

import os
import sys

from . import kernel
from .kernel import StepError, check, live_pid, write_file, write_pidfile

TYPE_CHECKING = False  # not typing's: importing typing costs every start ~5 ms
if TYPE_CHECKING:
    from types import ModuleType

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# statvfs f_flag bits -> the mount flags a remount inside a user namespace must keep (the
# kernel refuses to clear flags the parent namespace set: they are "locked")
_KEEP = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
         (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
         (os.ST_RELATIME, MS_RELATIME))

EXIT_SETUP = 125


class NsError(StepError):
    pass


def _check(ret: int, what: str) -> None:
    check(ret, what, NsError)


def escape_option(path: str) -> str:
    """A path as an overlay mount option value (``,`` ``:`` ``\\`` are special there)."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def mount_options(lower: str, upper: str, work: str, volatile: bool = False) -> str:
    """``volatile``: no syncs at all -- not even the ``syncfs`` of the whole upper filesystem
    that unmounting does; only for throw-away mounts (the probe): after a crash the kernel
    refuses to mount that upper again."""
    return (f"lowerdir={escape_option(lower)},upperdir={escape_option(upper)},"
            f"workdir={escape_option(work)},userxattr" + (",volatile" if volatile else ""))


def enter_new(lower: str, upper: str, work: str, merged: str, volatile: bool = False, *,
              hostname: str | None = None, read_only: bool = False) -> None:
    """Steps 1 and 2: a new user + mount (+ UTS, for ``hostname``) namespace with the overlay
    on ``merged``."""
    libc = kernel.libc()
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | (CLONE_NEWUTS if hostname else 0)
    _check(libc.unshare(flags), "unshare(user, mount namespace)")
    # not contextlib.suppress: importing contextlib costs every start ~2 ms
    try:  # noqa: SIM105
        write_file("/proc/self/setgroups", "deny")
    except FileNotFoundError:  # kernels before 3.19 have no such file
        pass
    write_file("/proc/self/uid_map", f"{uid} {uid} 1\n")
    write_file("/proc/self/gid_map", f"{gid} {gid} 1\n")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    opts = mount_options(lower, upper, work, volatile).encode()
    _check(libc.mount(b"overlay", merged.encode(), b"overlay", MS_RDONLY if read_only else 0,
                      opts),
           f"mount the overlay on {merged}")
    if hostname:
        name = hostname.encode()
        _check(libc.sethostname(name, len(name)), "set the container's hostname")


def bind_read_only(src: str, dest: str) -> None:
    """A read-only bind of ``src`` at ``dest`` (created empty, like ``src``) in this mount
    namespace: proot binds ``dest`` for a ``:ro`` volume, and nothing else is affected."""
    libc = kernel.libc()
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY, 0o600))
    _check(libc.mount(src.encode(), dest.encode(), None, MS_BIND | MS_REC, None),
           f"bind {src}")
    keep = 0
    st = os.statvfs(dest)
    for bit, flag in _KEEP:
        if st.f_flag & bit:
            keep |= flag
    _check(libc.mount(None, dest.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, None),
           f"make {src} read-only")


def mount_tmpfs(at: str, size: int) -> None:
    """A tmpfs of ``size`` bytes on the folder ``at`` (``--shm-size``), in this namespace."""
    os.makedirs(at, exist_ok=True)
    _check(kernel.libc().mount(b"tmpfs", at.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                         f"size={size},mode=1777".encode()), f"mount a tmpfs on {at}")


def join(pid: int) -> None:
    """``setns`` into the user and mount namespaces of ``pid`` (its root becomes ours)."""
    libc = kernel.libc()
    for ns, flag in (("user", CLONE_NEWUSER), ("mnt", CLONE_NEWNS), ("uts", CLONE_NEWUTS)):
        if os.stat(f"/proc/{pid}/ns/{ns}").st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino:
            continue  # already there (setns would say EINVAL)
        fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
        try:
            _check(libc.setns(fd, flag), f"join the container's {ns} namespace")
        finally:
            os.close(fd)


def _fail(msg: str) -> int:
    sys.stderr.write(f"opencontainer: {msg}\n")
    sys.stderr.flush()
    return EXIT_SETUP


def _netns() -> ModuleType:
    """:mod:`netns`, imported only for a container with a network of its own."""
    from . import netns

    return netns


def _join_project_net(pidfile: str) -> None:
    """Into the project's network (the holder's user + network namespaces)."""
    netns = _netns()
    pid = live_pid(pidfile)
    if pid is None:
        raise OSError(0, "the project's network is gone (its holder process ended); "
                         "start the project again")
    netns.join_net(pid)


def main(argv: list[str] | tuple[str, ...] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts: dict[str, str] = {}
    ro_src: list[str] = []
    ro_dst: list[str] = []
    tmpfs: list[str] = []
    hold = volatile = read_only = False
    while args and args[0] != "--":
        opt = args.pop(0)
        if opt in ("--hold", "--volatile", "--read-only"):
            hold = hold or opt == "--hold"
            volatile = volatile or opt == "--volatile"
            read_only = read_only or opt == "--read-only"
            continue
        key, eq, value = opt.partition("=")
        if key not in ("--lower", "--upper", "--work", "--merged", "--pidfile",
                       "--join-pidfile", "--enosys", "--succeed", "--hostname", "--ro-src",
                       "--ro-dst", "--tmpfs", "--netns"):
            return _fail(f"nsexec: unknown option {opt!r}")
        if not eq:
            if not args:
                return _fail(f"nsexec: {opt} needs a value")
            value = args.pop(0)
        if key == "--ro-src":
            ro_src.append(value)
        elif key == "--ro-dst":
            ro_dst.append(value)
        elif key == "--tmpfs":
            tmpfs.append(value)
        else:
            opts[key[2:]] = value
    if args and args[0] == "--":
        args.pop(0)
    if not args and not hold:
        return _fail("usage: python -m opencontainer.runtime.nsexec --lower L --upper U "
                     "--work W --merged M [--pidfile F] -- CMD...")
    try:
        if "join-pidfile" in opts:
            pid = live_pid(opts["join-pidfile"])
            if pid is None:
                return _fail("the container is not running (its namespace is gone).")
            if (os.stat(f"/proc/{pid}/ns/net").st_ino
                    != os.stat("/proc/self/ns/net").st_ino):
                _netns().join_net_of(pid)
            join(pid)
            os.chdir("/")
        elif "netns" in opts and "lower" not in opts:
            _join_project_net(opts["netns"])
        else:
            missing = [k for k in ("lower", "upper", "work", "merged") if k not in opts]
            if missing:
                return _fail(f"nsexec: missing --{', --'.join(missing)}")
            if not os.path.isdir(opts["lower"]):
                return _fail(f"the image's root filesystem {opts['lower']} is missing "
                             "(was the image removed?); recreate the container.")
            if len(ro_src) != len(ro_dst):
                return _fail("nsexec: --ro-src and --ro-dst come in pairs")
            if "netns" in opts:
                _join_project_net(opts["netns"])
            enter_new(opts["lower"], opts["upper"], opts["work"], opts["merged"], volatile,
                      hostname=opts.get("hostname"), read_only=read_only)
            if "pidfile" in opts:
                write_pidfile(opts["pidfile"], os.getpid())
            for src, dst in zip(ro_src, ro_dst, strict=True):
                bind_read_only(src, dst)
            for item in tmpfs:
                size, _, at = item.partition(":")
                mount_tmpfs(at, int(size))
    except NsError as exc:
        return _fail(f"cannot set up the container's overlay root filesystem: {exc.strerror}.")
    except OSError as exc:
        return _fail(f"cannot set up the container's namespace: {exc.strerror or exc}.")
    if hold:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.read()  # until our parent closes the pipe
        return 0
    from .seccomp import filter_and_exec

    names = [n for n in opts.get("enosys", "").split(",") if n]
    succeed = [n for n in opts.get("succeed", "").split(",") if n]
    return filter_and_exec(names, args, succeed)


if __name__ == "__main__":
    sys.exit(main())
