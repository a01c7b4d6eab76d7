"""Exec a program with stdin (a pty slave) as its controlling terminal.

Used for ``run -t``: the process is already a session leader (``start_new_session``), so
``TIOCSCTTY`` on fd 0 makes the pty its controlling terminal; Ctrl-C then reaches the container's
foreground process group. Usage: ``python -m opencontainer.runtime.ctty -- CMD...``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import termios


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write("usage: python -m opencontainer.runtime.ctty -- CMD...\n")
        return 2
    try:
        if os.getsid(0) != os.getpid():
            os.setsid()
    except OSError:
        pass
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError as exc:
        sys.stderr.write(f"opencontainer: warning: no controlling terminal: {exc.strerror}\n")
    from .kernel import default_signals

    default_signals()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"opencontainer: cannot execute {argv[0]}: {exc.strerror}\n")
        return 127
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
