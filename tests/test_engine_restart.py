"""Restart decisions and back-off (Docker's restartmanager rules)."""

from __future__ import annotations

import pytest

from opencontainer.engine.restart import (
    INITIAL_DELAY,
    MAX_DELAY,
    RestartPolicy,
    next_delay,
    should_restart,
)
from opencontainer.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "name", "retries"),
    [("no", "no", 0), ("always", "always", 0), ("on-failure", "on-failure", 0),
     ("on-failure:3", "on-failure", 3), ("unless-stopped", "unless-stopped", 0), ("", "no", 0)],
)
def test_parse(text: str, name: str, retries: int) -> None:
    p = RestartPolicy.parse(text)
    assert (p.name, p.max_retries) == (name, retries)


@pytest.mark.parametrize("bad", ["sometimes", "always:3", "on-failure:x", "on-failure:-1"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        RestartPolicy.parse(bad)


def test_no_never_restarts() -> None:
    assert not should_restart(RestartPolicy(), 1, 0, False)


def test_always_restarts_on_any_exit_but_not_after_manual_stop() -> None:
    p = RestartPolicy.parse("always")
    assert should_restart(p, 0, 100, False)
    assert should_restart(p, 137, 0, False)
    assert not should_restart(p, 0, 0, True)
    assert not should_restart(RestartPolicy.parse("unless-stopped"), 1, 0, True)


def test_on_failure_counts_and_ignores_success() -> None:
    p = RestartPolicy.parse("on-failure:3")
    assert [should_restart(p, 1, n, False) for n in range(5)] == [True, True, True, False, False]
    assert not should_restart(p, 0, 0, False)
    assert should_restart(RestartPolicy.parse("on-failure"), 1, 1000, False)


def test_delay_doubles_caps_and_resets() -> None:
    delays = []
    d = 0.0
    for _ in range(12):
        d = next_delay(d, 0.5)
        delays.append(d)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == MAX_DELAY
    assert delays == sorted(delays)
    assert next_delay(6.4, 10.0) == INITIAL_DELAY
