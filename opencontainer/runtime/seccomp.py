"""Answer chosen syscalls in the kernel, then exec a program: ENOSYS for what an old proot does
not translate, success for the chown family in a user namespace (the fake-root contract).

Debian's proot 5.1.0 predates ``statx``, ``openat2``, ``faccessat2``, ``fchmodat2``: it lets
them through with the *host* path, so coreutils ``stat``/``ls -l`` and libuv see host files. With a
seccomp filter that answers those calls with ENOSYS, glibc and libuv fall back to
``newfstatat``/``openat``/``faccessat``/``fchmodat``, which proot translates. Since Linux 4.8 the
kernel runs seccomp *after* the tracer's syscall-entry stop, so proot still sees the call but the
kernel never executes it; proot 5.1.0 itself does not use these syscalls (glibc on x86-64 does
not issue statx for ``stat()``). ``clone3`` is left alone: it carries no path, and making it
fail crashed PostgreSQL's initdb under proot 5.1.0 (see ``proot.UNTRANSLATED_FALLBACK_SYSCALLS``).

The filter is inherited over ``fork``/``exec`` by proot and every tracee. It needs
``PR_SET_NO_NEW_PRIVS`` (no root), which is harmless under proot (setuid cannot work there).

The second use, ``--succeed``: inside a user namespace where only our own uid is mapped (overlay
roots, see :mod:`nsexec`), the kernel answers ``chown`` to any other id with EINVAL. ``proot -0``
turns only EPERM into success, so the official images' ``find … -exec chown postgres`` failed
there while it worked in a copied root (EPERM). A filter that makes the chown family return 0
without running gives every root mode the same answer ``proot -0`` gives on a plain kernel: the
call succeeds, ownership stays the host user's (which ``proot -0`` shows as the current fake id),
as charliecloud's ``ch-image --force=seccomp`` does. The set*id calls are not filtered: proot's
fake-id emulation must see them so that ``id`` reports the new ids after ``gosu``.

Usage (run.sh runs this file by its path: no package import, no runpy)::

    python -S -P .../runtime/seccomp.py --enosys statx,openat2 -- proot -r ROOTFS ...
    python -m opencontainer.runtime.seccomp --enosys statx,openat2 -- proot -r ROOTFS ...
    python -m opencontainer.runtime.seccomp --succeed chown,fchown,lchown,fchownat -- ...
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

if __package__:
    from . import kernel, syscalls
else:  # run as a file (run.sh): no package __init__ (typing, errors), no runpy (~15 ms)
    import types

    _here = os.path.dirname(os.path.abspath(__file__))
    for _name, _path in (("opencontainer", os.path.dirname(_here)),
                         ("opencontainer.runtime", _here)):
        if _name not in sys.modules:
            _module = types.ModuleType(_name)
            _module.__path__ = [_path]
            sys.modules[_name] = _module
    from opencontainer.runtime import kernel, syscalls

# typing.TYPE_CHECKING without importing typing (it pulls in re): this runs at every start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K

OFFSET_NR = 0
OFFSET_ARCH = 4


class SeccompError(OSError):
    pass


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(numbers: Sequence[int], arch: int, err: int = errno.ENOSYS,
                 succeed: Sequence[int] = ()) -> bytes:
    """A classic-BPF program: on ``arch``, syscalls in ``numbers`` return -``err`` and those
    in ``succeed`` return 0, without running."""
    rules = [(nr, err) for nr in numbers] + [(nr, 0) for nr in succeed if nr not in numbers]
    results = list(dict.fromkeys(e for _, e in rules))  # one RET per distinct answer
    n = len(rules)
    prog = [
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        # other ABIs (e.g. 32-bit on 64-bit) are left alone: numbers differ there
        _insn(BPF_JEQ_K, 0, n + 1, arch),
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    for i, (nr, e) in enumerate(rules):
        # match -> jump over the remaining checks and the ALLOW to this answer's RET
        prog.append(_insn(BPF_JEQ_K, n - i + results.index(e), 0, nr))
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    for e in results:
        prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | (e & 0xFFFF)))
    return b"".join(prog)


def resolve_names(names: Iterable[str]) -> list[int]:
    out = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        nr = syscalls.number(name)
        if nr is not None:
            out.append(nr)
    return out


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(names: Iterable[str], succeed: Iterable[str] = ()) -> int:
    """Install the filter in this process (inherited by children): ``names`` fail with
    ENOSYS, ``succeed`` return 0. Returns the number of syscalls filtered."""
    numbers = resolve_names(names)
    ok_numbers = resolve_names(succeed)
    arch = syscalls.audit_arch()
    if not (numbers or ok_numbers) or arch is None:
        return 0
    load_program(build_filter(numbers, arch, succeed=ok_numbers))
    return len(numbers) + len(ok_numbers)


def load_program(code: bytes) -> None:
    """Install the classic-BPF program ``code`` as a seccomp filter of this process (with
    ``PR_SET_NO_NEW_PRIVS``, which needs no privilege); raises :class:`SeccompError`."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(e)}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"prctl(PR_SET_SECCOMP): {os.strerror(e)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    lists: dict[str, list[str]] = {"--enosys": [], "--succeed": []}
    while args and args[0] != "--":
        opt = args.pop(0)
        key, eq, value = opt.partition("=")
        if key in lists and (eq or args):
            lists[key] += (value if eq else args.pop(0)).split(",")
        else:
            sys.stderr.write(f"opencontainer seccomp: unknown option {opt!r}\n")
            return 2
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        sys.stderr.write("usage: python -m opencontainer.runtime.seccomp [--enosys a,b] "
                         "[--succeed c,d] -- CMD...\n")
        return 2
    return filter_and_exec(lists["--enosys"], args, lists["--succeed"])


def filter_and_exec(names: Sequence[str], argv: Sequence[str],
                    succeed: Sequence[str] = ()) -> int:
    """Install the filter (ENOSYS for ``names``, 0 for ``succeed``), then exec ``argv``;
    returns only on failure."""
    if names or succeed:
        try:
            install(names, succeed)
        except SeccompError as exc:
            # without the filter the container still runs; only statx & co see host paths
            sys.stderr.write(f"opencontainer: warning: seccomp filter not installed: {exc}\n")
    kernel.default_signals()
    try:
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        sys.stderr.write(f"opencontainer: cannot execute {argv[0]}: {exc.strerror}\n")
        return 127
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
