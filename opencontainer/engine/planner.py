"""Planning: dependency order and observed-vs-desired reconciliation (pure functions).

Follows compose's split (``observed_state.go`` → ``reconcile.go`` → ``plan.go``): the caller
snapshots what exists (:class:`Observed`), :func:`build_plan` turns desired vs observed into a
:class:`Plan`: the :class:`Action` of every container with its cause, and the steps (:class:`Step`)
that carry them out as a dependency graph (each step lists the steps it waits for). The
supervisor only walks that graph (:func:`.execute.walk`); it never re-derives an order.

The graph of ``up``::

    remove:<dependent's container> -> remove:<dependency's container>   (reverse dependency order)
    remove:<c> -> create:<c>                  (a recreate: remove, then create ...)
    create:<svc-1> -> create:<svc-2>          (one service's containers one after the other)
    every remove and create -> created        (nothing starts before every container exists)
    created -> start:<svc>                    (... then start)
    start:<dependency> -> start:<svc>         (with the depends_on condition)

:func:`teardown` gives the graph of ``down``, ``stop`` and ``rm``: each container's step waits for
those of the containers of the services that depend on it.
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
    start: bool = True  # false: the plan creates, it starts nothing (``up --no-start``)


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
    """What to do to get from ``observed`` to ``project``, container by container."""
    return list(build_plan(project, observed, options).actions)


def _actions(
    project: ProjectModel, observed: Sequence[Observed], options: PlanOptions
) -> list[Action]:
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


# -- the plan as a dependency graph -------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Step:
    """One node of a :class:`Plan`.

    ``kind``: ``remove`` / ``stop`` (one container: stop it, and remove it), ``create`` (make
    sure the container exists: a new root filesystem when ``fresh``, else the one on disk; a
    kept container that runs is left alone), ``created`` (the point where every container of
    the plan exists) or ``start`` (every container of ``service``)."""

    kind: str
    service: str = ""
    container: str = ""
    number: int = 0
    fresh: bool = False
    action: str = ""  # the kind of the container's Action (remove and create steps of up)
    reason: str = ""

    @property
    def key(self) -> str:
        if self.kind == "created":
            return "created"
        return f"{self.kind}:{self.container or self.service}"


@attrs.frozen(kw_only=True)
class Wait:
    """An edge: a step waits for the step ``on`` (a key) to be done.

    Between start steps, ``service`` is the dependency, ``condition`` its ``depends_on``
    condition and ``required`` whether a failure of it fails the dependent. ``on`` is empty
    for a dependency outside the plan: then only its condition is waited for."""

    on: str = ""
    service: str = ""
    condition: str = ""
    required: bool = True


def _check_waits(plan: Plan, attribute: object, waits: Mapping[str, tuple[Wait, ...]]) -> None:
    seen: set[str] = set()
    for step in plan.steps:
        for w in waits.get(step.key, ()):
            if w.on and w.on not in seen:
                raise ValueError(f"step {step.key} waits for {w.on}, which is not before it.")
        if step.key in seen:
            raise ValueError(f"two steps {step.key}.")
        seen.add(step.key)


@attrs.frozen(kw_only=True)
class Plan:
    """``actions``: what happens to each container (and why); ``steps``: the graph's nodes in
    an order where every step comes after those it waits for; ``waits``: step key -> its
    edges (a step without waits can run at once)."""

    actions: tuple[Action, ...] = ()
    steps: tuple[Step, ...] = ()
    waits: Mapping[str, tuple[Wait, ...]] = attrs.field(
        factory=dict, converter=as_dict, hash=False, validator=_check_waits)

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def needs(self, key: str) -> list[str]:
        """The keys of the steps ``key`` waits for."""
        return [w.on for w in self.waits.get(key, ()) if w.on]

    def order(self, kind: str | None = None) -> list[str]:
        """The containers (services, for start steps) of the steps of ``kind``, in order."""
        return [s.container or s.service for s in self.steps
                if kind is None or s.kind == kind]


def _teardown_steps(services: Mapping[str, ServiceConfig],
                    steps: Sequence[Step]) -> tuple[list[Step], dict[str, tuple[Wait, ...]]]:
    """``steps`` (one per container) ordered dependents first, each waiting for the steps of
    the containers of every service that (transitively) depends on its service."""
    rank = {s: i for i, s in enumerate(stop_order(services))}
    ordered = sorted(steps, key=lambda s: rank.get(s.service, len(rank)))
    of_service: dict[str, list[str]] = {}
    for s in ordered:
        of_service.setdefault(s.service, []).append(s.key)
    waits: dict[str, tuple[Wait, ...]] = {}
    for s in ordered:
        if s.service not in services:
            continue
        after = sorted(dependents(services, s.service), key=lambda n: rank[n])
        ws = tuple(Wait(on=k) for n in after for k in of_service.get(n, ()))
        if ws:
            waits[s.key] = ws
    return ordered, waits


def teardown(services: Mapping[str, ServiceConfig], containers: Iterable[tuple[str, str]],
             kind: str = "remove") -> Plan:
    """The graph of stopping (``kind`` ``stop``) or removing (``remove``) ``containers``
    (``(name, service)`` pairs): a container goes once those of the services that depend on
    its service are gone. Containers of services not in ``services`` wait for nothing."""
    steps, waits = _teardown_steps(
        services, [Step(kind=kind, service=svc, container=name) for name, svc in containers])
    return Plan(steps=tuple(steps), waits=waits)


def removal_order(services: Mapping[str, ServiceConfig],
                  containers: Iterable[tuple[str, str]]) -> list[str]:
    """``containers`` (``(name, service)`` pairs) in reverse dependency order."""
    return teardown(services, containers).order()


def start_plan(services: Mapping[str, ServiceConfig], wanted: Iterable[str],
               after: Sequence[str] = ()) -> Plan:
    """The graph of starting the services ``wanted``: a start step per service, waiting for
    the steps ``after`` and for the start steps of its dependencies (dependencies not in
    ``wanted``: for their condition only)."""
    return Plan(steps=tuple(_start_steps(services, wanted)),
                waits=_start_waits(services, wanted, after))


def _start_steps(services: Mapping[str, ServiceConfig], wanted: Iterable[str]) -> list[Step]:
    chosen = set(wanted)
    return [Step(kind="start", service=n) for n in start_order(services) if n in chosen]


def _start_waits(services: Mapping[str, ServiceConfig], wanted: Iterable[str],
                 after: Sequence[str]) -> dict[str, tuple[Wait, ...]]:
    chosen = set(wanted)
    waits: dict[str, tuple[Wait, ...]] = {}
    for name in start_order(services):
        if name not in chosen:
            continue
        ws = [Wait(on=k) for k in after]
        for dep, spec in services[name].depends_on.items():
            ws.append(Wait(on=f"start:{dep}" if dep in chosen else "", service=dep,
                           condition=spec.condition, required=spec.required))
        if ws:
            waits[f"start:{name}"] = tuple(ws)
    return waits


def build_plan(
    project: ProjectModel, observed: Sequence[Observed], options: PlanOptions | None = None
) -> Plan:
    """What to do to get from ``observed`` to ``project``, as a dependency graph."""
    options = options or PlanOptions()
    actions = _actions(project, observed, options)
    removes, waits = _teardown_steps(project.services, [
        Step(kind="remove", service=a.service, container=a.container, number=a.number,
             action=a.kind, reason=a.reason)
        for a in actions if a.kind in ("remove", "recreate")])
    steps = list(removes)
    last: dict[str, str] = {}
    started: list[str] = []
    for a in actions:
        if a.kind == "remove":
            continue
        step = Step(kind="create", service=a.service, container=a.container, number=a.number,
                    fresh=a.kind in ("create", "recreate"), action=a.kind, reason=a.reason)
        ws = []
        if a.kind == "recreate":
            ws.append(Wait(on=f"remove:{a.container}"))
        if a.service in last:
            ws.append(Wait(on=last[a.service]))
        else:
            started.append(a.service)
        last[a.service] = step.key
        if ws:
            waits[step.key] = tuple(ws)
        steps.append(step)
    if options.start and started:
        barrier = Step(kind="created")
        waits[barrier.key] = tuple(Wait(on=s.key) for s in steps)
        steps.append(barrier)
        steps.extend(_start_steps(project.services, started))
        waits.update(_start_waits(project.services, started, (barrier.key,)))
    return Plan(actions=tuple(actions), steps=tuple(steps), waits=waits)
