"""Planning: dependency order and observed-vs-desired reconciliation (pure functions).

Follows compose's split (``observed_state.go`` → ``reconcile.go`` → ``plan.go``): the caller
snapshots what exists (:class:`Observed`), :func:`plan` turns desired vs observed into a list of
:class:`Action` with their cause, and the supervisor only walks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from ..errors import ComposeError
from .model import ProjectModel, ServiceConfig, as_dict


# -- dependency order ---------------------------------------------------------------------------
def dependencies(services: Mapping[str, ServiceConfig]) -> dict[str, set[str]]:
    """service -> the services it depends on (only those in ``services``)."""
    return {
        name: {d for d in svc.depends_on if d in services} for name, svc in services.items()
    }


def check_graph(services: Mapping[str, ServiceConfig]) -> None:
    """Reject unknown required dependencies and cycles."""
    for name, svc in services.items():
        for dep, spec in svc.depends_on.items():
            if dep not in services and spec.required:
                raise ComposeError(f"service {name!r} depends on undefined service {dep!r}.")
    layers(services)


def layers(services: Mapping[str, ServiceConfig]) -> list[list[str]]:
    """Start order in layers: leaves first; services of one layer can start concurrently."""
    deps = dependencies(services)
    done: set[str] = set()
    out: list[list[str]] = []
    while len(done) < len(deps):
        ready = sorted(n for n, d in deps.items() if n not in done and d <= done)
        if not ready:
            cycle = sorted(n for n in deps if n not in done)
            raise ComposeError(
                "dependency cycle between services: " + ", ".join(cycle) + "."
            )
        out.append(ready)
        done.update(ready)
    return out


def start_order(services: Mapping[str, ServiceConfig]) -> list[str]:
    return [n for layer in layers(services) for n in layer]


def stop_order(services: Mapping[str, ServiceConfig]) -> list[str]:
    return list(reversed(start_order(services)))


def with_dependencies(services: Mapping[str, ServiceConfig], wanted: Iterable[str]) -> set[str]:
    """``wanted`` plus everything it transitively depends on."""
    deps = dependencies(services)
    out: set[str] = set()
    todo = list(wanted)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        if n not in services:
            raise ComposeError(f"no such service: {n}.")
        out.add(n)
        todo.extend(deps.get(n, ()))
    return out


def dependents(services: Mapping[str, ServiceConfig], of: str) -> set[str]:
    """Services that (transitively) depend on ``of``."""
    deps = dependencies(services)
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for n, d in deps.items():
            if n not in out and (of in d or d & out):
                out.add(n)
                changed = True
    return out


# -- reconciliation -----------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Observed:
    """A container that exists on disk."""

    name: str
    service: str
    number: int
    config_hash: str
    status: str  # created | running | exited | ...


@attrs.frozen(kw_only=True)
class Action:
    """``kind``: create | recreate | start | keep | remove."""

    kind: str
    service: str
    container: str
    number: int
    reason: str


@attrs.frozen(kw_only=True)
class PlanOptions:
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    services: tuple[str, ...] = ()  # empty = all
    no_deps: bool = False
    scale: Mapping[str, int] = attrs.field(factory=dict, converter=as_dict, hash=False)


def desired_containers(
    project: ProjectModel, options: PlanOptions | None = None
) -> list[tuple[str, int, str]]:
    """(service, number, container name) for every container the project wants."""
    options = options or PlanOptions()
    selected = selected_services(project, options)
    out = []
    for name in start_order(project.services):
        if name not in selected:
            continue
        svc = project.services[name]
        scale = options.scale.get(name, svc.scale)
        if svc.container_name:
            out.append((name, 1, svc.container_name))
            continue
        for n in range(1, scale + 1):
            out.append((name, n, f"{project.name}-{name}-{n}"))
    return out


def selected_services(project: ProjectModel, options: PlanOptions) -> set[str]:
    if not options.services:
        return set(project.services)
    if options.no_deps:
        for s in options.services:
            if s not in project.services:
                raise ComposeError(f"no such service: {s}.")
        return set(options.services)
    return with_dependencies(project.services, options.services)


def plan(
    project: ProjectModel, observed: Sequence[Observed], options: PlanOptions | None = None
) -> list[Action]:
    """What to do to get from ``observed`` to ``project``."""
    options = options or PlanOptions()
    if options.force_recreate and options.no_recreate:
        raise ComposeError("--force-recreate and --no-recreate cannot be used together.")
    by_name = {o.name: o for o in observed}
    actions: list[Action] = []
    wanted = desired_containers(project, options)
    wanted_names = {c for _, _, c in wanted}
    for service, number, cname in wanted:
        want_hash = project.services[service].config_hash()
        have = by_name.get(cname)
        if have is None:
            actions.append(Action(kind="create", service=service, container=cname,
                                  number=number, reason="missing"))
        elif options.force_recreate:
            actions.append(Action(kind="recreate", service=service, container=cname,
                                  number=number, reason="--force-recreate"))
        elif have.config_hash != want_hash and not options.no_recreate:
            actions.append(Action(kind="recreate", service=service, container=cname,
                                  number=number, reason="configuration changed"))
        elif have.status == "running":
            actions.append(Action(kind="keep", service=service, container=cname,
                                  number=number, reason="up to date"))
        else:
            actions.append(Action(kind="start", service=service, container=cname,
                                  number=number, reason=f"was {have.status}"))
    selected = selected_services(project, options)
    for o in observed:
        if o.name in wanted_names:
            continue
        if o.service in project.services and o.service in selected:
            # scaled down
            actions.append(Action(kind="remove", service=o.service, container=o.name,
                                  number=o.number, reason="scaled down"))
        elif o.service not in project.services and options.remove_orphans:
            actions.append(Action(kind="remove", service=o.service, container=o.name,
                                  number=o.number, reason="orphan"))
    return actions


def orphans(project: ProjectModel, observed: Sequence[Observed]) -> list[Observed]:
    return [o for o in observed if o.service not in project.services]
