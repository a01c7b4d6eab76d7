"""Make chosen syscalls fail with ENOSYS, then exec a program: the statx remedy for old proot.

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

Usage (as run.sh does)::

    python -m opencontainer.runtime.seccomp --enosys statx,openat2 -- proot -r ROOTFS ...
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from collections.abc import Iterable, Sequence

from . import syscalls

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


def build_filter(numbers: Sequence[int], arch: int, err: int = errno.ENOSYS) -> bytes:
    """A classic-BPF program: on ``arch``, syscalls in ``numbers`` return -``err``."""
    prog = [
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        # other ABIs (e.g. 32-bit on 64-bit) are left alone: numbers differ there
        _insn(BPF_JEQ_K, 0, len(numbers) + 1, arch),
        _insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    n = len(numbers)
    for i, nr in enumerate(numbers):
        # match -> jump to the ERRNO return (after the remaining checks and the ALLOW)
        prog.append(_insn(BPF_JEQ_K, n - i, 0, nr))
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | (err & 0xFFFF)))
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


def install(names: Iterable[str]) -> int:
    """Install the ENOSYS filter in this process (inherited by children). Returns #syscalls."""
    numbers = resolve_names(names)
    arch = syscalls.audit_arch()
    if not numbers or arch is None:
        return 0
    code = build_filter(numbers, arch)
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(e)}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        raise SeccompError(e, f"prctl(PR_SET_SECCOMP): {os.strerror(e)}")
    return len(numbers)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    names: list[str] = []
    while args and args[0] != "--":
        opt = args.pop(0)
        if opt == "--enosys" and args:
            names += args.pop(0).split(",")
        elif opt.startswith("--enosys="):
            names += opt.split("=", 1)[1].split(",")
        else:
            sys.stderr.write(f"opencontainer seccomp: unknown option {opt!r}\n")
            return 2
    if args and args[0] == "--":
        args.pop(0)
    if not args:
        sys.stderr.write("usage: python -m opencontainer.runtime.seccomp --enosys a,b -- CMD...\n")
        return 2
    return filter_and_exec(names, args)


def filter_and_exec(names: Sequence[str], argv: Sequence[str]) -> int:
    """Install the filter for ``names`` (if any), then exec ``argv``; returns only on failure."""
    if names:
        try:
            install(names)
        except SeccompError as exc:
            # without the filter the container still runs; only statx & co see host paths
            sys.stderr.write(f"opencontainer: warning: seccomp filter not installed: {exc}\n")
    try:
        os.execvp(argv[0], list(argv))
    except OSError as exc:
        sys.stderr.write(f"opencontainer: cannot execute {argv[0]}: {exc.strerror}\n")
        return 127
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
