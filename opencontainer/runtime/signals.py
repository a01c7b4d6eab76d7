"""Signal names and numbers as users give them (``kill -s``, ``stop_signal``): checked before
anything is sent, so a bad one is a usage error and never an ``EINVAL`` from ``kill(2)``.

Standard library only: the CLI checks a signal before it talks to a supervisor.
"""

from __future__ import annotations

import signal as _signal

from ..errors import ConfigError

#: the highest signal number Linux has (SIGRTMAX); 0 is no signal at all
MAX_SIGNAL = 64
USAGE_ERROR = 125  # docker's exit status for a bad command line


def parse_signal(sig: int | str) -> int:
    """``SIGTERM``, ``TERM``, ``term``, ``"15"`` or ``15`` -> 15; anything else (an unknown
    name, a number outside 1..64) raises :class:`ConfigError` (exit status 125)."""
    if isinstance(sig, bool):
        raise _invalid(sig)
    if isinstance(sig, int):
        if 1 <= sig <= MAX_SIGNAL:
            return sig
        raise _invalid(sig)
    text = str(sig).strip().upper()
    if text.isdigit():
        return parse_signal(int(text))
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(_signal.Signals[text])
    except KeyError:
        raise _invalid(sig) from None


def _invalid(sig: object) -> ConfigError:
    return ConfigError(f"invalid signal {sig!r}: give a name such as SIGTERM or TERM, or a "
                       f"number from 1 to {MAX_SIGNAL}.", exit_code=USAGE_ERROR)


__all__ = ["MAX_SIGNAL", "parse_signal"]
