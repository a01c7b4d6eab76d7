"""Health status with moby's rules (``daemon/health.go``), as pure functions.

- every start resets health to ``starting`` with an empty streak;
- a probe exiting 0 makes the container ``healthy`` and resets the streak;
- a failing probe while still ``starting`` inside ``start_period`` does not count;
- ``retries`` consecutive counted failures make it ``unhealthy``;
- a probe running longer than ``timeout`` fails (exit code -1);
- during ``start_period`` (while starting) probes run every ``start_interval``, else ``interval``;
- the last 5 results are kept.
"""

from __future__ import annotations

import attrs

from .model import HealthSpec

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
MAX_LOG = 5
MAX_OUTPUT = 4096


@attrs.frozen(kw_only=True)
class ProbeResult:
    start: float
    end: float
    exit_code: int
    output: str = ""


@attrs.frozen(kw_only=True)
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()


def initial() -> HealthState:
    return HealthState()


def apply_probe(
    state: HealthState, result: ProbeResult, spec: HealthSpec, started_at: float
) -> HealthState:
    """The health after one probe result (``started_at``: when the container started)."""
    log = (*state.log, attrs.evolve(result, output=result.output[:MAX_OUTPUT]))[-MAX_LOG:]
    if result.exit_code == 0:
        return HealthState(status=HEALTHY, failing_streak=0, log=log)
    counts = True
    if state.status == STARTING and result.start - started_at < spec.start_period:
        counts = False
    if not counts:
        return HealthState(status=state.status, failing_streak=state.failing_streak, log=log)
    streak = state.failing_streak + 1
    status = UNHEALTHY if streak >= max(spec.retries, 1) else state.status
    return HealthState(status=status, failing_streak=streak, log=log)


def probe_interval(state: HealthState, spec: HealthSpec, started_at: float, now: float) -> float:
    """Seconds to wait before the next probe."""
    if state.status == STARTING and now - started_at < spec.start_period:
        return spec.start_interval
    return spec.interval


def probe_argv(test: tuple[str, ...]) -> tuple[str, ...] | None:
    """The command a probe runs (``CMD`` exec form, ``CMD-SHELL`` via sh), None if disabled."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return tuple(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return ("/bin/sh", "-c", " ".join(test))


def from_image(config: dict[str, object] | None) -> HealthSpec | None:
    """The image's ``Healthcheck`` (durations in nanoseconds) as a :class:`HealthSpec`."""
    if not config:
        return None
    test = config.get("Test") or config.get("test")
    if not test or not isinstance(test, list | tuple):
        return None

    def sec(key: str, default: float) -> float:
        v = config.get(key)
        return float(v) / 1e9 if isinstance(v, int | float) and v else default

    retries = config.get("Retries")
    return HealthSpec(
        test=tuple(str(t) for t in test),
        interval=sec("Interval", 30.0),
        timeout=sec("Timeout", 30.0),
        start_period=sec("StartPeriod", 0.0),
        start_interval=sec("StartInterval", 5.0),
        retries=int(retries) if isinstance(retries, int) and retries > 0 else 3,
    )
