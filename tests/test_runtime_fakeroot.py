"""The fake-root contract: a container that starts as root gets what plain ``proot -0`` gives,
in every root mode and with every proot.

- the chown family succeeds for any uid/gid (Docker Hub's postgres and redis entrypoints run
  ``find … \\! -user X -exec chown X '{}' +`` as root before dropping privileges);
- the set*id calls succeed and ``id`` then reports the new ids (gosu, su, runuser; not
  util-linux's ``setpriv --reuid --regid``, which switches the uid first and then relies on
  PR_SET_KEEPCAPS to change gids and groups: no proot's fake root emulates kept capabilities);
- chmod works; FIFOs and unix sockets can be made; ``mknod`` of a device never makes one (proot
  -0 reports success for it without creating anything, in every proot).

In a user namespace (overlay roots) the kernel answers chown to an unmapped id with EINVAL,
which ``proot -0`` does not hide: this file failed there before the seccomp answer of
:mod:`opencontainer.runtime.seccomp` (``--succeed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration]

CONTRACT = r"""
import os, socket, stat
open('/tmp/f', 'w').close()
os.chown('/tmp/f', 999, 998); print('chown ok')
os.symlink('/tmp/f', '/tmp/l'); os.lchown('/tmp/l', 5, 5); print('lchown ok')
fd = os.open('/tmp/f', os.O_RDONLY); os.fchown(fd, 7, 7); os.close(fd); print('fchown ok')
os.chown('/tmp', 0, 0); print('chown root ok')
os.chmod('/tmp/f', 0o640); print('mode', oct(os.stat('/tmp/f').st_mode & 0o777))
os.mkfifo('/tmp/fifo'); print('fifo', stat.S_ISFIFO(os.stat('/tmp/fifo').st_mode))
s = socket.socket(socket.AF_UNIX); s.bind('/tmp/sock')
print('sock', stat.S_ISSOCK(os.stat('/tmp/sock').st_mode))
try:
    os.mknod('/tmp/null', 0o600 | stat.S_IFCHR, os.makedev(1, 3))
except PermissionError:
    pass
print('device node', os.path.exists('/tmp/null'))
os.setgroups([998]); os.setgid(998); os.setuid(999)
print('ids', os.getuid(), os.geteuid(), os.getgid())
"""

EXPECTED = [
    "chown ok", "lchown ok", "fchown ok", "chown root ok", "mode 0o640", "fifo True",
    "sock True", "device node False", "ids 999 999 998",
]

MODES = ["overlay", "copy"]


@pytest.fixture(params=MODES)
def fr(request: pytest.FixtureRequest, oc: Any, oc_env: dict[str, str], proot: Path,
       test_images: Any) -> Iterator[Any]:
    """``oc`` with the parametrized proot and root mode (overlay in a user namespace, copy)."""
    test_images["python"]
    oc_env["OPENCONTAINER_PROOT"] = str(proot)
    oc_env["OPENCONTAINER_ROOTFS"] = str(request.param)
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def test_root_contract(fr: Any) -> None:
    res = fr("run", "--rm", "python:3.11-slim", "python3", "-c", CONTRACT, timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.splitlines() == EXPECTED


def test_privilege_drop_tools(fr: Any) -> None:
    """What the official entrypoints run: chown -R to a service user, then switch to it."""
    script = (
        "set -e; mkdir -p /srv/data; touch /srv/data/a; "
        "find /srv/data \\! -user postgres -exec chown postgres:postgres '{}' +; "
        "chown -R postgres /srv/data; "
        "su -s /bin/sh -c 'id -u' postgres; "
        "runuser -u postgres -- id -un"
    )
    res = fr("run", "--rm", "postgres:15", "bash", "-c", script, timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout
    uid, name = res.stdout.split()
    assert uid != "0" and name == "postgres"
