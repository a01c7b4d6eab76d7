"""The native backend's exec step: run a container's processes directly, without proot.

run.sh execs ``env -i <container env> python -I -S step.py native OPTIONS -- CMD...``; this
module (standard library only, imported by :mod:`step` like :mod:`nsexec`) then:

1. ``unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID)`` and maps ids, in one
   of two modes (``--idmap``):

   - ``sub:SUBUID:SUBGID:COUNT`` -- rootless Podman's: container 0 is our uid (gid),
     container 1..COUNT are the user's subordinate ids from /etc/subuid and /etc/subgid,
     written by the setuid ``newuidmap``/``newgidmap`` of Debian's uidmap package. chown,
     setuid and gosu are real inside; files the container gives to uid N belong to host uid
     SUBUID+N-1.
   - ``single:U:G`` -- only our own uid (gid) is mapped, to container U (G): 0 for a container
     that starts as root, else the image's ``User``. Files keep the host user as owner. A root
     container gets the fake-root contract of the proot backend through seccomp
     (``--succeed``): the chown family and the set*id calls return 0 without running.

2. forks the container's first process (pid 1 of the new PID namespace), which mounts the root
   (the overlay of ``--lower/--upper/--work`` on ``--root``, or a bind of the copied ``--root``),
   a fresh /proc, a small /dev (binds of null, zero, full, random, urandom, tty; devpts, shm
   tmpfs, fd links), /sys read-only, the volumes (``--bind SRC:DEST[:ro]``) and the generated
   /etc files (``--etc DIR``), sets the hostname, ``pivot_root``s into the root, switches to
   ``--uid/--gid`` (sub mode), changes to ``--cwd`` and execs the command;
3. writes ``--pidfile`` ("pid start-time native") once the command runs, and waits: its exit
   status is the container's (128 + n for a signal death). When pid 1 ends the kernel kills
   every other process of the namespace, Docker's rule.

``--join PIDFILE``: exec and health probes; ``setns`` into the running container's user,
mount, UTS, PID (and network) namespaces, fork, switch user, chdir, exec.

Exit status 125 with one sentence on stderr when the container cannot be set up.
"""

from __future__ import annotations

import ctypes
import os
import sys

from . import kernel
from .kernel import StepError, check, live_pid, write_file

# typing.TYPE_CHECKING without importing typing (this runs at every start)
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Sequence
else:  # what the signal module wraps: its enums (enum, functools ...) cost ~5 ms a start
    import _signal as signal

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
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
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
EXIT_SETUP = 125
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
_KEEP = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
         (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
         (os.ST_RELATIME, MS_RELATIME))


class SetupError(StepError):
    pass


def _check(ret: int, what: str) -> None:
    check(ret, what, SetupError)


def _b(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def mount(src: str | None, dest: str, fstype: str | None, flags: int, data: str | None,
          what: str) -> None:
    _check(kernel.libc().mount(_b(src), _b(dest), _b(fstype), flags, _b(data)), what)


def _try_mount(src: str | None, dest: str, fstype: str | None, flags: int,
               data: str | None) -> bool:
    return bool(kernel.libc().mount(_b(src), _b(dest), _b(fstype), flags, _b(data)) == 0)


def _locked_flags(path: str) -> int:
    """The mount flags a remount inside a user namespace must keep (see nsexec._KEEP)."""
    st = os.statvfs(path)
    keep = 0
    for bit, flag in _KEEP:
        if st.f_flag & bit:
            keep |= flag
    return keep


def remount_read_only(dest: str, what: str) -> None:
    mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(dest), None,
          f"make {what} read-only")


# -- paths inside the new root -----------------------------------------------------------------


def in_root(root: str, path: str) -> str:
    """The host path of container path ``path`` under ``root``, symlinks followed inside the
    root (an absolute link is relative to it, ``..`` stops at it), the last one included."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, part)
        if os.path.islink(host):
            hops += 1
            if hops > 40:
                raise SetupError(f"too many levels of symbolic links in {path}")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def _mount_point(at: str, is_dir: bool) -> None:
    """Make ``at`` (already resolved inside the root) an empty dir or file to mount on."""
    if is_dir:
        os.makedirs(at, exist_ok=True)
        return
    os.makedirs(os.path.dirname(at), exist_ok=True)
    if os.path.isdir(at):
        raise SetupError(f"cannot mount a file on the directory {at}")
    if not os.path.exists(at):
        os.close(os.open(at, os.O_CREAT | os.O_WRONLY, 0o644))


def bind(src: str, at: str, read_only: bool = False) -> None:
    _mount_point(at, os.path.isdir(src))
    mount(src, at, None, MS_BIND | MS_REC, None, f"bind {src}")
    if read_only:
        remount_read_only(at, src)


def _etc_file(root: str, name: str) -> str:
    """/etc/<name> in the root as a plain file to bind over (a symlink there is replaced: a
    mount would follow it, possibly out of the root)."""
    etc = in_root(root, "/etc")
    os.makedirs(etc, exist_ok=True)
    at = os.path.join(etc, name)
    if os.path.islink(at):
        os.unlink(at)
    if not os.path.exists(at):
        os.close(os.open(at, os.O_CREAT | os.O_WRONLY, 0o644))
    return at


# -- the root ----------------------------------------------------------------------------------


def mount_dev(root: str) -> None:
    dev = in_root(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k", "mount /dev")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            at = os.path.join(dev, name)
            os.close(os.open(at, os.O_CREAT | os.O_WRONLY, 0o666))
            mount(f"/dev/{name}", at, None, MS_BIND, None, f"bind /dev/{name}")
    pts = os.path.join(dev, "pts")
    os.mkdir(pts, 0o755)
    if _try_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620"):
        os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    elif os.path.isdir("/dev/pts"):
        _try_mount("/dev/pts", pts, None, MS_BIND | MS_REC, None)
        if os.path.exists("/dev/ptmx"):
            os.close(os.open(os.path.join(dev, "ptmx"), os.O_CREAT | os.O_WRONLY, 0o666))
            _try_mount("/dev/ptmx", os.path.join(dev, "ptmx"), None, MS_BIND, None)
    shm = os.path.join(dev, "shm")
    os.mkdir(shm, 0o1777)
    mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
          "mount /dev/shm")
    os.mkdir(os.path.join(dev, "mqueue"), 0o755)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, os.path.join(dev, name))


def mount_proc_sys(root: str) -> None:
    proc = in_root(root, "/proc")
    os.makedirs(proc, exist_ok=True)
    if not _try_mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None):
        # a host /proc with parts covered (some container hosts) refuses a fresh proc in a
        # user namespace: the host's then (its pids are the host's)
        mount("/proc", proc, None, MS_BIND | MS_REC, None, "mount /proc")
    sys_ = in_root(root, "/sys")
    os.makedirs(sys_, exist_ok=True)
    if _try_mount("/sys", sys_, None, MS_BIND | MS_REC, None):
        remount_read_only(sys_, "/sys")


def setup_root(opts: dict[str, str], binds: Sequence[tuple[str, str, bool]]) -> str:
    """Everything before ``pivot_root`` (in the new namespaces, as pid 1); the root's path."""
    root = opts["root"]
    mount("none", "/", None, MS_REC | MS_PRIVATE, None, "make / private")
    if "lower" in opts:
        from opencontainer.runtime.nsexec import mount_options

        mount("overlay", root, "overlay", 0,
              mount_options(opts["lower"], opts["upper"], opts["work"]),
              f"mount the overlay on {root}")
    else:
        mount(root, root, None, MS_BIND | MS_REC, None, "bind the root filesystem")
    if not os.stat(root).st_mode & 0o001:
        # the overlay's root shows upper/'s mode (0700, made by us): a container user other
        # than root (a subordinate uid) could not even enter /
        os.chmod(root, 0o755)
    mount_proc_sys(root)
    mount_dev(root)
    etc = opts.get("etc")
    if etc:
        for name in ("hosts", "hostname", "resolv.conf"):
            src = os.path.join(etc, name)
            if os.path.exists(src):
                mount(src, _etc_file(root, name), None, MS_BIND, None, f"bind /etc/{name}")
    for src, dest, ro in binds:
        if not os.path.exists(src):
            raise SetupError(f"the volume source {src} does not exist")
        bind(src, in_root(root, dest), ro)
    if opts.get("hostname"):
        hn = opts["hostname"].encode()
        _check(kernel.libc().sethostname(hn, len(hn)), "set the hostname")
    return root


def pivot(root: str) -> None:
    os.chdir(root)
    _check(kernel.libc().syscall(_pivot_root_nr(), b".", b"."), "pivot_root")
    _check(kernel.libc().umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def _pivot_root_nr() -> int:
    return {"x86_64": 155, "aarch64": 41, "riscv64": 41, "armv7l": 218, "armv8l": 218,
            "i686": 217, "i386": 217}.get(os.uname().machine, 155)


# -- ids ---------------------------------------------------------------------------------------


def parse_idmap(text: str) -> tuple[str, list[int]]:
    kind, _, rest = text.partition(":")
    nums = [int(x) for x in rest.split(":") if x]
    if (kind == "sub" and len(nums) == 3) or (kind == "single" and len(nums) == 2):
        return kind, nums
    raise SetupError(f"bad --idmap {text!r}")


def write_maps_single(uid: int, gid: int, host_uid: int, host_gid: int) -> None:
    try:  # noqa: SIM105
        write_file("/proc/self/setgroups", "deny")
    except FileNotFoundError:
        pass
    write_file("/proc/self/uid_map", f"{uid} {host_uid} 1\n")
    write_file("/proc/self/gid_map", f"{gid} {host_gid} 1\n")


def _join_project_net(pidfile: str) -> None:
    """Into the project's network: its holder's user and network namespaces (runtime/netns.py);
    the container's namespaces then nest in that user namespace."""
    from opencontainer.runtime import netns

    pid = live_pid(pidfile)
    if pid is None:
        raise OSError(0, "its holder process ended; start the project again")
    netns.join_net(pid)


def _map_helper(sub: list[int], *, nested: bool = False) -> tuple[int, int]:
    """Fork a helper that, told so through a pipe, maps our new user namespace's ids (it
    must run in the parent user namespace): with newuidmap/newgidmap from the host's, or,
    ``nested`` in a project network holder's user namespace (which maps the subordinate ids
    at netns.sub_base and gives us every capability there), by writing the maps itself.
    (pid, write end of the pipe)."""
    r, w = os.pipe()
    target = os.getpid()
    pid = os.fork()
    if pid:
        os.close(r)
        return pid, w
    try:
        os.close(w)
        if not os.read(r, 1):
            os._exit(1)
        uid, gid, subuid, subgid, count = sub
        if nested:
            from opencontainer.runtime.netns import sub_base

            try:
                write_file(f"/proc/{target}/uid_map",
                       f"0 {uid} 1\n1 {sub_base(uid, count)} {count}\n")
                write_file(f"/proc/{target}/gid_map",
                       f"0 {gid} 1\n1 {sub_base(gid, count)} {count}\n")
            except OSError as exc:
                sys.stderr.write(f"opencontainer: cannot map the ids in the project's "
                                 f"network: {exc.strerror}\n")
                os._exit(1)
            os._exit(0)
        # both tools at once, spawned without importing subprocess (~20 ms at every start)
        err_r, err_w = os.pipe()
        null = os.open(os.devnull, os.O_RDWR)
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                   (os.POSIX_SPAWN_DUP2, err_w, 2), (os.POSIX_SPAWN_CLOSE, err_r)]
        dirs = [*os.environ.get("PATH", "").split(":"), "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        pids = []
        for tool, own, first in (("newuidmap", uid, subuid), ("newgidmap", gid, subgid)):
            path = next((f"{d}/{tool}" for d in dirs if d and os.access(f"{d}/{tool}", os.X_OK)),
                        tool)
            argv = [tool, str(target), "0", str(own), "1", "1", str(first), str(count)]
            pids.append(os.posix_spawn(path, argv, os.environ, file_actions=actions))
        os.close(err_w)
        err = b""
        while chunk := os.read(err_r, 4096):
            err += chunk
        failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
        if failed:
            lines = err.decode(errors="replace").strip().splitlines()
            sys.stderr.write(f"opencontainer: {lines[-1] if lines else 'newuidmap failed'}\n")
            os._exit(1)
        os._exit(0)
    except BaseException:
        os._exit(1)


def _groups_of(uid: int, gid: int) -> list[int]:
    """``gid`` and the groups /etc/group lists the user ``uid`` in (read in the new root)."""
    out = [gid]
    try:
        with open("/etc/passwd", errors="replace") as fh:
            names = [r[0] for r in (ln.split(":") for ln in fh) if len(r) > 2 and r[2] == str(uid)]
        if names:
            with open("/etc/group", errors="replace") as fh:
                for row in (ln.rstrip("\n").split(":") for ln in fh):
                    if len(row) > 3 and names[0] in row[3].split(",") and row[2].isdigit():
                        out.append(int(row[2]))
    except OSError:
        pass
    return list(dict.fromkeys(out))


def switch_user(kind: str, uid: int, gid: int) -> None:
    if kind != "sub":
        return  # single: already the mapped id
    os.setgroups(_groups_of(uid, gid))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _exec(argv: Sequence[str], opts: dict[str, str]) -> int:
    """Last steps of a container process: cwd, seccomp, exec."""
    cwd = opts.get("cwd", "/")
    try:
        os.chdir(cwd)
    except OSError as exc:
        return _fail(f"cannot change to the working directory {cwd}: {exc.strerror}.")
    kernel.libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for s in (*FORWARDED, signal.SIGINT, signal.SIGQUIT):
        signal.signal(s, signal.SIG_DFL)
    succeed = [n for n in opts.get("succeed", "").split(",") if n]
    if succeed:
        from opencontainer.runtime.seccomp import install  # imported before pivot_root

        try:
            install((), succeed)
        except OSError as exc:
            return _fail(f"cannot install the fake-root seccomp filter: {exc}.")
    return execvp(argv)


def execvp(argv: Sequence[str]) -> int:
    """``execvp`` with the container's PATH (os.execvp imports ``warnings``, which is not
    there any more after ``pivot_root``); returns 127/126 with a message on failure."""
    name = argv[0]
    dirs = [""] if "/" in name else (os.environ.get("PATH") or "/usr/bin:/bin").split(":")
    err: OSError | None = None
    kernel.default_signals()
    for d in dirs:
        path = os.path.join(d or ".", name) if d or "/" not in name else name
        try:
            os.execve(path, list(argv), os.environ)
        except (FileNotFoundError, NotADirectoryError) as exc:
            err = err or exc
        except OSError as exc:
            err = exc
    strerror = err.strerror if err is not None else "not found"
    sys.stderr.write(f"opencontainer: cannot execute {name}: {strerror}\n")
    return 127 if err is None or isinstance(err, (FileNotFoundError, NotADirectoryError)) \
        else 126


# -- the waiting parent -------------------------------------------------------------------------


def _wait_forwarding(child: int) -> int:
    """Forward termination signals to ``child``, wait for it: its exit status (128 + n)."""
    def forward(signo: int, _frame: object) -> None:
        try:  # noqa: SIM105
            os.kill(child, signo)
        except OSError:
            pass

    for s in FORWARDED:
        signal.signal(s, forward)
    # the terminal's ^C/^\ reach the container through the process group already
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return 255
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _start_time(pid: int, proc_fd: int) -> int:
    fd = os.open(f"{pid}/stat", os.O_RDONLY, dir_fd=proc_fd)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(data[data.rindex(b")") + 2:].split()[19])


def _write_pidfile(dir_fd: int, name: str, pid: int, proc_fd: int) -> None:
    """The pid file, written through directory fds opened before ``pivot_root`` moved our
    root into the container."""
    tmp = f"{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        os.write(fd, f"{pid} {_start_time(pid, proc_fd)} native\n".encode())
    finally:
        os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _preload(opts: dict[str, str]) -> None:
    """Import now what the container process needs after ``pivot_root`` (the host's files
    are gone then)."""
    if opts.get("succeed"):
        import opencontainer.runtime.seccomp  # noqa: F401


def run_new(opts: dict[str, str], binds: Sequence[tuple[str, str, bool]],
            argv: Sequence[str]) -> int:
    _preload(opts)
    kind, ids = parse_idmap(opts.get("idmap", "single:0:0"))
    uid, gid = int(opts.get("uid", "0")), int(opts.get("gid", "0"))
    helper = helper_w = None
    joined = False
    if opts.get("netns"):
        try:
            _join_project_net(opts["netns"])
        except OSError as exc:
            return _fail(f"cannot join the project's network: {exc.strerror or exc}.")
        joined = True
    # before unshare (65534 after it); in the project's network, the ids of its holder's user
    # namespace (ours mapped to themselves)
    host_uid, host_gid = os.getuid(), os.getgid()
    if kind == "sub":
        helper, helper_w = _map_helper([os.getuid(), os.getgid(), *ids], nested=joined)
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID
    if kernel.libc().unshare(flags) != 0:
        e = ctypes.get_errno()
        if helper is not None:
            os.close(helper_w)  # type: ignore[arg-type]
            os.waitpid(helper, 0)
        return _fail(f"cannot create the container's namespaces: {os.strerror(e)}.")
    if helper is not None:
        assert helper_w is not None
        os.write(helper_w, b"1")
        os.close(helper_w)
        _, status = os.waitpid(helper, 0)
        if status != 0:
            return _fail("cannot map the subordinate uids and gids (newuidmap/newgidmap).")
    else:
        try:
            write_maps_single(ids[0], ids[1], host_uid, host_gid)
        except OSError as exc:
            return _fail(f"cannot map the container's user: {exc.strerror}.")
    # pivot_root moves our root too: the pid file's folder and the host's /proc, opened now
    pid_dir = proc_fd = -1
    if "pidfile" in opts:
        pid_dir = os.open(os.path.dirname(os.path.abspath(opts["pidfile"])), os.O_RDONLY)
        proc_fd = os.open("/proc", os.O_RDONLY)
    ready_r, ready_w = os.pipe()
    os.set_inheritable(ready_w, False)
    child = os.fork()
    if child == 0:  # pid 1 of the container
        os.close(ready_r)
        try:
            root = setup_root(opts, binds)
            pivot(root)
            switch_user(kind, uid, gid)
        except (SetupError, OSError) as exc:
            msg = str(exc) if isinstance(exc, SetupError) else (exc.strerror or str(exc))
            os._exit(_fail(f"cannot set up the container: {msg}."))
        os._exit(_exec(argv, opts))
    os.close(ready_w)
    while os.read(ready_r, 4096):  # EOF: the command was exec'd (or the child failed)
        pass
    os.close(ready_r)
    if pid_dir >= 0:
        try:  # noqa: SIM105 - no contextlib: this runs at every start
            _write_pidfile(pid_dir, os.path.basename(opts["pidfile"]), child, proc_fd)
        except (OSError, ValueError, IndexError):
            pass  # the child is already gone: waitpid tells
        os.close(pid_dir)
        os.close(proc_fd)
    return _wait_forwarding(child)


def run_join(opts: dict[str, str], argv: Sequence[str]) -> int:
    _preload(opts)
    relay = opts.get("tty") == "1" and os.isatty(0)
    if relay:  # what the relay needs, imported while the host's files are there
        import fcntl  # noqa: F401
        import select  # noqa: F401
        import struct  # noqa: F401
        import termios  # noqa: F401
    pid = live_pid(opts["join"])
    if pid is None:
        return _fail("the container is not running (its namespace is gone).")
    fds = []
    try:
        from opencontainer.runtime import netns

        # a container in a project's network: its network's owner (the holder's user
        # namespace) first, from where its own nested user namespace is joined
        netns.join_net_of(pid)
        for ns, flag in (("user", CLONE_NEWUSER), ("mnt", CLONE_NEWNS), ("uts", CLONE_NEWUTS),
                         ("net", CLONE_NEWNET), ("pid", CLONE_NEWPID)):
            if os.stat(f"/proc/{pid}/ns/{ns}").st_ino != os.stat(f"/proc/self/ns/{ns}").st_ino:
                fds.append((ns, flag, os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)))
        for ns, flag, fd in fds:
            _check(kernel.libc().setns(fd, flag), f"join the container's {ns} namespace")
    except (SetupError, OSError) as exc:
        return _fail(f"cannot enter the container: {exc}.")
    finally:
        for _, _, fd in fds:
            os.close(fd)
    kind, _ = parse_idmap(opts.get("idmap", "single:0:0"))
    pty = _open_pty() if relay else None  # in the container's own devpts now
    child = os.fork()
    if child == 0:
        try:
            if pty is not None:
                _take_terminal(*pty)
            switch_user(kind, int(opts.get("uid", "0")), int(opts.get("gid", "0")))
        except OSError as exc:
            os._exit(_fail(f"cannot switch to the user: {exc.strerror}."))
        os._exit(_exec(argv, opts))
    if pty is not None:
        return _relay_terminal(child, pty[0])
    return _wait_forwarding(child)


TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def _open_pty() -> tuple[int, str] | None:
    """A pty of the container's own devpts (master fd, slave path), its size the caller's
    terminal's: ``exec -t`` gets a terminal the container can name (``tty``, ttyname()),
    not one of the host's devpts, which it cannot see. None: there is none to open."""
    import fcntl
    import struct
    import termios

    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        try:  # noqa: SIM105
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass
    except OSError:
        os.close(master)
        return None
    os.set_inheritable(master, False)
    return master, f"/dev/pts/{n}"


def _take_terminal(master: int, slave_path: str) -> None:
    """In the child: a session of its own with the pty's slave as controlling terminal and
    stdio."""
    import fcntl
    import termios

    os.close(master)
    os.setsid()
    fd = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def _relay_terminal(child: int, master: int) -> int:
    """Copy the caller's terminal (fd 0, raw while we run; fd 1) to and from the pty's
    master until the child's side closes; window size changes follow. The child's status."""
    import fcntl
    import select
    import termios

    saved = None
    try:
        saved = termios.tcgetattr(0)
        raw = termios.tcgetattr(0)
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP
                    | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(0, termios.TCSAFLUSH, raw)
    except (OSError, termios.error):
        saved = None

    def winch(_signo: int, _frame: object) -> None:
        try:  # noqa: SIM105
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass

    def forward(signo: int, _frame: object) -> None:
        try:  # noqa: SIM105
            os.kill(child, signo)
        except OSError:
            pass

    signal.signal(signal.SIGWINCH, winch)
    for s in FORWARDED:
        signal.signal(s, forward)
    reading = [0, master]
    try:
        while master in reading:
            try:
                ready, _, _ = select.select(reading, [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child's side of the pty is closed
                    data = b""
                if not data:
                    reading.remove(fd)
                    continue
                out = 1 if fd == master else master
                while data:
                    try:
                        data = data[os.write(out, data):]
                    except OSError:
                        data = b""
    finally:
        if saved is not None:
            try:  # noqa: SIM105
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            except (OSError, termios.error):
                pass
        os.close(master)
    return _wait_forwarding(child)


def run_userns_only(opts: dict[str, str], argv: Sequence[str]) -> int:
    """Run a host command as root of a user namespace with the subordinate ids mapped (to
    remove files a container gave to other uids); the host's filesystem as it is."""
    kind, ids = parse_idmap(opts.get("idmap", ""))
    if kind != "sub":
        return _fail("--userns-only needs --idmap sub:...")
    helper, helper_w = _map_helper([os.getuid(), os.getgid(), *ids])
    if kernel.libc().unshare(CLONE_NEWUSER) != 0:
        e = ctypes.get_errno()
        os.close(helper_w)
        os.waitpid(helper, 0)
        return _fail(f"cannot create a user namespace: {os.strerror(e)}.")
    os.write(helper_w, b"1")
    os.close(helper_w)
    if os.waitpid(helper, 0)[1] != 0:
        return _fail("cannot map the subordinate uids and gids (newuidmap/newgidmap).")
    return execvp(argv)


def _fail(msg: str) -> int:
    sys.stderr.write(f"opencontainer: {msg}\n")
    sys.stderr.flush()
    return EXIT_SETUP


OPTIONS = ("--root", "--lower", "--upper", "--work", "--pidfile", "--join", "--hostname",
           "--uid", "--gid", "--cwd", "--idmap", "--succeed", "--etc", "--bind", "--unset",
           "--netns", "--tty")
# also: --userns-only (no value), see run_userns_only


def parse_bind(value: str) -> tuple[str, str, bool]:
    """``SRC:DEST[:ro]``, with ``\\:`` for a colon inside a path."""
    parts: list[str] = [""]
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            parts[-1] += value[i + 1]
            i += 2
            continue
        if c == ":":
            parts.append("")
        else:
            parts[-1] += c
        i += 1
    if len(parts) == 2:
        return parts[0], parts[1], False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        return parts[0], parts[1], parts[2] == "ro"
    raise SetupError(f"bad --bind {value!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts: dict[str, str] = {}
    binds: list[tuple[str, str, bool]] = []
    try:
        while args and args[0] != "--":
            opt = args.pop(0)
            if opt == "--userns-only":
                opts["userns-only"] = "1"
                continue
            key, eq, value = opt.partition("=")
            if key not in OPTIONS:
                return _fail(f"native: unknown option {opt!r}")
            if not eq:
                if not args:
                    return _fail(f"native: {opt} needs a value")
                value = args.pop(0)
            if key == "--bind":
                binds.append(parse_bind(value))
            else:
                opts[key[2:]] = value
        for name in filter(None, opts.pop("unset", "").split(",")):
            # Python's start-up coerces a C locale by setting LC_CTYPE=C.UTF-8 in its own
            # environment; the container's processes must not inherit what it did not set
            os.environ.pop(name, None)
        if args and args[0] == "--":
            args.pop(0)
        if not args:
            return _fail("usage: native.py --root R [--lower L --upper U --work W] ... -- CMD")
        if "join" in opts:
            return run_join(opts, args)
        if "userns-only" in opts:
            return run_userns_only(opts, args)
        if "root" not in opts:
            return _fail("native: missing --root")
        if "lower" in opts and not os.path.isdir(opts["lower"]):
            return _fail(f"the image's root filesystem {opts['lower']} is missing (was the "
                         "image removed?); recreate the container.")
        return run_new(opts, binds, args)
    except SetupError as exc:
        return _fail(f"{exc}.")


if __name__ == "__main__":
    sys.exit(main())
