"""Syscall numbers the runtime needs, per machine (only the few we probe or filter).

Numbers >= 403 are shared by every architecture since Linux 5.1 (the unified table).
"""

from __future__ import annotations

import os

# AUDIT_ARCH_* values for the seccomp_data.arch check
AUDIT_ARCH = {
    "x86_64": 0xC000003E,
    "aarch64": 0xC00000B7,
    "armv7l": 0x40000028,
    "armv8l": 0x40000028,
    "i686": 0x40000003,
    "i386": 0x40000003,
    "riscv64": 0xC00000F3,
}

_UNIFIED = {
    "clone3": 435,
    "openat2": 437,
    "faccessat2": 439,
    "epoll_pwait2": 441,
    "mount_setattr": 442,
    "fchmodat2": 452,
}

# the chown family: the generic table (aarch64, riscv64) has only fchown and fchownat; 32-bit
# x86 and arm also have the 16-bit-id calls and the *32 variants
_CHOWN_GENERIC = {"fchown": 55, "fchownat": 54}
_CHOWN_32 = {"lchown": 16, "fchown": 95, "chown": 182, "lchown32": 198, "fchown32": 207,
             "chown32": 212}

# the set*id calls (the native backend's fake root answers them with success when only one
# id is mapped): the generic table, x86-64, and 32-bit x86/arm (16-bit ids and the *32 ones)
_SETID_GENERIC = {"setregid": 143, "setgid": 144, "setreuid": 145, "setuid": 146,
                  "setresuid": 147, "setresgid": 149, "setfsuid": 151, "setfsgid": 152,
                  "setgroups": 159}
_SETID_X86_64 = {"setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114,
                 "setgroups": 116, "setresuid": 117, "setresgid": 119, "setfsuid": 122,
                 "setfsgid": 123}
_SETID_32 = {"setuid": 23, "setgid": 46, "setreuid": 70, "setregid": 71, "setgroups": 81,
             "setfsuid": 138, "setfsgid": 139, "setresuid": 164, "setresgid": 170,
             "setreuid32": 203, "setregid32": 204, "setgroups32": 206, "setresuid32": 208,
             "setresgid32": 210, "setuid32": 213, "setgid32": 214, "setfsuid32": 215,
             "setfsgid32": 216}

_PER_ARCH: dict[str, dict[str, int]] = {
    "x86_64": {"statx": 332, "renameat2": 316, "execveat": 322,
               "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260, **_SETID_X86_64},
    "aarch64": {"statx": 291, "renameat2": 276, "execveat": 281, **_CHOWN_GENERIC,
                **_SETID_GENERIC},
    "riscv64": {"statx": 291, "renameat2": 276, "execveat": 281, **_CHOWN_GENERIC,
                **_SETID_GENERIC},
    "armv7l": {"statx": 397, "renameat2": 382, "execveat": 387, **_CHOWN_32, "fchownat": 325,
               **_SETID_32},
    "armv8l": {"statx": 397, "renameat2": 382, "execveat": 387, **_CHOWN_32, "fchownat": 325,
               **_SETID_32},
    "i686": {"statx": 383, "renameat2": 353, "execveat": 358, **_CHOWN_32, "fchownat": 298,
             **_SETID_32},
    "i386": {"statx": 383, "renameat2": 353, "execveat": 358, **_CHOWN_32, "fchownat": 298,
             **_SETID_32},
}

# every name of the chown family (those a machine lacks resolve to None and are skipped)
CHOWN_FAMILY = ("chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32")
SETID_FAMILY = ("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
                "setfsuid", "setfsgid", "setgroups", "setuid32", "setgid32", "setreuid32",
                "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32",
                "setgroups32")


def machine() -> str:
    """``uname -m`` (what ``platform.machine()`` says on Linux, without importing platform,
    which pulls in ``re``: this runs at every container start)."""
    return os.uname().machine


def number(name: str, arch: str | None = None) -> int | None:
    """The syscall number of ``name`` on ``arch`` (this machine by default), or None."""
    arch = arch or machine()
    table = _PER_ARCH.get(arch)
    if table is None:
        return None
    if name in table:
        return table[name]
    return _UNIFIED.get(name)


def audit_arch(arch: str | None = None) -> int | None:
    return AUDIT_ARCH.get(arch or machine())
