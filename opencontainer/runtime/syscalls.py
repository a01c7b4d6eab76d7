"""Syscall numbers the runtime needs, per machine (only the few we probe or filter).

Numbers >= 403 are shared by every architecture since Linux 5.1 (the unified table).
"""

from __future__ import annotations

import platform

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

_PER_ARCH: dict[str, dict[str, int]] = {
    "x86_64": {"statx": 332, "renameat2": 316, "execveat": 322},
    "aarch64": {"statx": 291, "renameat2": 276, "execveat": 281},
    "riscv64": {"statx": 291, "renameat2": 276, "execveat": 281},
    "armv7l": {"statx": 397, "renameat2": 382, "execveat": 387},
    "armv8l": {"statx": 397, "renameat2": 382, "execveat": 387},
    "i686": {"statx": 383, "renameat2": 353, "execveat": 358},
    "i386": {"statx": 383, "renameat2": 353, "execveat": 358},
}


def machine() -> str:
    return platform.machine()


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
