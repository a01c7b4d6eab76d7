"""The depends_on graph: start levels, reverse order for ``down``, cycle detection.

Pure functions over ``{service name: Service}`` (anything with a ``depends_on`` mapping).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..errors import ComposeError
from .yamlio import Locations, compose_error


class _HasDeps(Protocol):
    @property
    def depends_on(self) -> Mapping[str, Any]: ...


def _services(project_or_services: Any) -> Mapping[str, _HasDeps]:
    services = getattr(project_or_services, "services", project_or_services)
    return services  # type: ignore[no-any-return]


def find_cycle(services: Mapping[str, _HasDeps]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None. Unknown targets are ignored."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(services, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in services[node].depends_on:
            if dep not in services:
                continue
            if color[dep] == grey:
                return [*stack[stack.index(dep):], dep]
            if color[dep] == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for name in services:
        if color[name] == white:
            found = visit(name)
            if found:
                return found
    return None


def check_cycles(services: Mapping[str, _HasDeps], locs: Locations | None = None) -> None:
    cycle = find_cycle(services)
    if cycle:
        message = f"dependency cycle detected: {' -> '.join(cycle)}"
        if locs is not None:
            raise compose_error(message, locs, ("services", cycle[0], "depends_on", cycle[1]))
        raise ComposeError(message)


def dependency_order(project: Any, services: Iterable[str] | None = None) -> list[list[str]]:
    """Start levels: every service comes after all of its dependencies. With ``services``,
    only those and what they (transitively) depend on. Raises ComposeError on a cycle."""
    all_services = _services(project)
    check_cycles(all_services)
    wanted = set(all_services) if services is None else with_dependencies(project, services)
    remaining = [s for s in all_services if s in wanted]
    done: set[str] = set()
    levels: list[list[str]] = []
    while remaining:
        level = [
            s for s in remaining
            if all(d in done or d not in all_services for d in all_services[s].depends_on)
        ]
        if not level:  # pragma: no cover - excluded by check_cycles
            raise ComposeError("dependency cycle detected")
        levels.append(level)
        done.update(level)
        remaining = [s for s in remaining if s not in done]
    return levels


def reverse_order(project: Any, services: Iterable[str] | None = None) -> list[list[str]]:
    """Stop/remove levels: dependents first (the start levels reversed)."""
    return list(reversed(dependency_order(project, services)))


def with_dependencies(project: Any, services: Iterable[str]) -> set[str]:
    """The given services and everything they depend on, transitively."""
    all_services = _services(project)
    out: set[str] = set()
    todo = list(services)
    while todo:
        s = todo.pop()
        if s in out or s not in all_services:
            continue
        out.add(s)
        todo.extend(all_services[s].depends_on)
    return out


def dependents(project: Any, service: str) -> set[str]:
    """Services that depend on ``service``, transitively."""
    all_services = _services(project)
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, svc in all_services.items():
            if name in out:
                continue
            if service in svc.depends_on or out & set(svc.depends_on):
                out.add(name)
                changed = True
    return out
