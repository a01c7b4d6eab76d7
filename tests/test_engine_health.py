"""Health streaks with moby's daemon/health.go rules."""

from __future__ import annotations

from opencontainer.engine.health import (
    HEALTHY,
    STARTING,
    UNHEALTHY,
    HealthState,
    ProbeResult,
    apply_probe,
    from_image,
    probe_argv,
    probe_interval,
)
from opencontainer.engine.model import HealthSpec

SPEC = HealthSpec(test=("CMD", "true"), interval=10, timeout=2, start_period=30,
                  start_interval=1, retries=3)


def probe(at: float, code: int) -> ProbeResult:
    return ProbeResult(start=at, end=at + 0.1, exit_code=code, output=f"probe {at}")


def run(results: list[tuple[float, int]], spec: HealthSpec = SPEC) -> HealthState:
    state = HealthState()
    for at, code in results:
        state = apply_probe(state, probe(at, code), spec, started_at=0.0)
    return state


def test_starts_in_starting() -> None:
    assert HealthState().status == STARTING


def test_success_is_healthy_and_resets_streak() -> None:
    s = run([(31, 1), (32, 1), (33, 0)])
    assert s.status == HEALTHY and s.failing_streak == 0


def test_failures_inside_start_period_do_not_count() -> None:
    s = run([(1, 1), (2, 1), (3, 1), (4, 1)])
    assert s.status == STARTING and s.failing_streak == 0


def test_retries_consecutive_failures_make_unhealthy() -> None:
    s = run([(31, 1), (41, 1)])
    assert s.status == STARTING and s.failing_streak == 2
    s = run([(31, 1), (41, 1), (51, 1)])
    assert s.status == UNHEALTHY


def test_once_healthy_failures_count_even_in_start_period() -> None:
    s = run([(1, 0), (2, 1), (3, 1), (4, 1)])
    assert s.status == UNHEALTHY


def test_timeout_result_fails_a_probe() -> None:
    s = run([(31, -1), (41, -1), (51, -1)])
    assert s.status == UNHEALTHY


def test_keeps_last_five() -> None:
    s = run([(31 + i, 0) for i in range(8)])
    assert len(s.log) == 5 and s.log[-1].start == 38


def test_interval_uses_start_interval_during_start_period() -> None:
    assert probe_interval(HealthState(), SPEC, 0.0, 5.0) == 1
    assert probe_interval(HealthState(), SPEC, 0.0, 31.0) == 10
    assert probe_interval(HealthState(status=HEALTHY), SPEC, 0.0, 5.0) == 10


def test_probe_argv_forms() -> None:
    assert probe_argv(("CMD", "pg_isready", "-q")) == ("pg_isready", "-q")
    assert probe_argv(("CMD-SHELL", "redis-cli ping")) == ("/bin/sh", "-c", "redis-cli ping")
    assert probe_argv(("NONE",)) is None
    assert probe_argv(()) is None


def test_from_image_converts_nanoseconds() -> None:
    spec = from_image({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 5})
    assert spec is not None and spec.interval == 2.0 and spec.retries == 5
    assert spec.timeout == 30.0
    assert from_image(None) is None
