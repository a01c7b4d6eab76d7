"""The benchmark scenarios, in table order. Each module has ``plan(ctx) -> Plan``."""

from __future__ import annotations

from collections.abc import Callable

from ..context import BenchContext
from . import api, build, compose_load, create, pgbench, proot_overhead, pull, run, up
from .base import Plan

# key -> (number, title, plan function)
SCENARIOS: dict[str, tuple[str, str, Callable[[BenchContext], Plan]]] = {
    "pull": ("1", "pull + unpack of the multi-layer image", pull.plan),
    "create": ("2", "container creation from a cached image", create.plan),
    "run": ("3", "run --rm busybox true", run.plan),
    "up": ("4", "up of a 3-service stack, ps, supervisor RSS", up.plan),
    "compose": ("5", "compose load of the largest corpus file", compose_load.plan),
    "proot": ("6", "proot overhead for syscall-heavy loops", proot_overhead.plan),
    "pgbench": ("7", "PostgreSQL pgbench, native vs proot backend", pgbench.plan),
    "api": ("8", "the Docker Engine API: docker run --rm, service RSS", api.plan),
    "build": ("9", "Dockerfile build: cold and a no-change rebuild", build.plan),
}


def select(only: str | None) -> list[str]:
    """Scenario keys for ``--only`` (a key, its number, or a comma list); all when None."""
    if not only:
        return list(SCENARIOS)
    wanted: list[str] = []
    for item in only.split(","):
        item = item.strip()
        match = [k for k, (num, _, _) in SCENARIOS.items() if item in (k, num)]
        if not match:
            choices = ", ".join(f"{k} ({v[0]})" for k, v in SCENARIOS.items())
            raise ValueError(f"unknown scenario {item!r}; choose from {choices}")
        wanted += [k for k in match if k not in wanted]
    return [k for k in SCENARIOS if k in wanted]
