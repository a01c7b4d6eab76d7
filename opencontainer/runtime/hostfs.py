"""What the host filesystem under the store allows: hard links (Android's SELinux refuses them
in an app's data directory since Android 6; so do some FUSE and network filesystems)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

# the answers of a filesystem (or a security policy) that will not make hard links
REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                     errno.EMLINK, errno.ENOSYS})


def hardlinks_refused(directory: Path) -> bool:
    """Try a hard link of a temp file in ``directory``: True when it is refused. A directory
    where no file can be created at all gives False (nothing to tell about links there)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".oc-link-probe-", dir=directory)
    except OSError:
        return False
    os.close(fd)
    link = name + ".link"
    try:
        os.link(name, link)
    except OSError as exc:
        return exc.errno in REFUSED  # anything else (ENOSPC, ...): no verdict about links
    finally:
        for path in (link, name):
            with contextlib.suppress(OSError):
                os.unlink(path)
    return False
