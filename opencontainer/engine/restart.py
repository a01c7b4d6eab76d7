"""Restart decisions with Docker's semantics (moby ``restartmanager/restartmanager.go``).

Pure functions only: the supervising task asks, then acts and reports on the bus.

- ``no``: never restart.
- ``always``: restart whatever the exit code, except after a manual stop.
- ``unless-stopped``: like ``always`` (we have no daemon restart to tell them apart).
- ``on-failure[:N]``: restart on a non-zero exit, at most ``N`` times (unlimited without N).

The delay starts at 100 ms, doubles per restart up to 60 s and is reset when the last run
lasted 10 s or more.
"""

from __future__ import annotations

import attrs

from ..errors import ConfigError

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0

POLICIES = ("no", "always", "on-failure", "unless-stopped")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    name: str = "no"
    max_retries: int = 0  # on-failure only; 0 = unlimited

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        value = (text or "no").strip().strip('"')
        name, _, count = value.partition(":")
        if name not in POLICIES:
            raise ConfigError(
                f"unknown restart policy {text!r}: use no, always, on-failure[:N] "
                "or unless-stopped."
            )
        if count and name != "on-failure":
            raise ConfigError(f"restart policy {name!r} takes no maximum retry count.")
        try:
            retries = int(count) if count else 0
        except ValueError:
            raise ConfigError(f"invalid retry count in restart policy {text!r}.") from None
        if retries < 0:
            raise ConfigError(f"invalid retry count in restart policy {text!r}.")
        return cls(name=name, max_retries=retries)

    def __str__(self) -> str:
        if self.name == "on-failure" and self.max_retries:
            return f"on-failure:{self.max_retries}"
        return self.name


def should_restart(
    policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool
) -> bool:
    """Whether a container that just exited is restarted (``restart_count`` = done so far)."""
    if manually_stopped:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        if exit_code == 0:
            return False
        return policy.max_retries == 0 or restart_count < policy.max_retries
    return False


def next_delay(previous: float, run_duration: float) -> float:
    """The back-off before the next start; ``previous`` is 0 before the first restart."""
    if previous <= 0 or run_duration >= RESET_AFTER:
        return INITIAL_DELAY
    return min(previous * 2, MAX_DELAY)
