"""Helpers for tests (ours and the engine's): a tiny busybox root filesystem, proot binaries.

``make_busybox_rootfs(dest)`` builds, in well under a second, a rootfs with a static busybox,
its applets as symlinks in ``/bin``, and ``/etc/passwd`` (root, nobody, app:1000) and
``/etc/group``. No registry, no image store needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

PROOT_CANDIDATES = {
    "5.1.0": ("/usr/bin/proot",),
    "5.4.0": ("/tmp/p54/proot-5.4.0/src/proot",),
}

PASSWD = """root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
"""
GROUP = """root:x:0:
nogroup:x:65534:
app:x:1000:
staff:x:50:app
"""


def busybox_binary() -> Path | None:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(cand):
            return Path(cand)
    found = shutil.which("busybox")
    return Path(found) if found else None


def _applets(busybox: Path) -> list[str]:
    res = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    return [a for a in res.stdout.split() if a and "/" not in a]


def make_busybox_rootfs(dest: Path) -> Path:
    """A minimal busybox root filesystem at ``dest`` (created)."""
    bb = busybox_binary()
    if bb is None:
        raise RuntimeError("busybox is not installed (apt install busybox-static)")
    dest = Path(dest)
    for d in ("bin", "etc", "tmp", "root", "home/app", "var/www", "proc", "dev", "sys", "usr/bin"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(bb, dest / "bin" / "busybox")
    for applet in _applets(bb):
        link = dest / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (dest / "usr" / "bin" / "env").symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    (dest / "etc" / "os-release").write_text('NAME="busybox-test"\n')
    (dest / "var" / "www" / "index.html").write_text("hello from the container\n")
    return dest


def proot_binaries() -> dict[str, Path]:
    """The proot binaries available on this machine, by version label."""
    out = {}
    for label, cands in PROOT_CANDIDATES.items():
        for c in cands:
            if os.path.isfile(c) and os.access(c, os.X_OK):
                out[label] = Path(c)
                break
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
