"""Dependency order and observed-vs-desired planning."""

from __future__ import annotations

import pytest

from opencontainer.engine.model import DependencySpec, ProjectModel, ServiceConfig
from opencontainer.engine.planner import (
    Observed,
    PlanOptions,
    check_graph,
    dependents,
    layers,
    plan,
    stop_order,
    with_dependencies,
)
from opencontainer.errors import ComposeError


def svc(name: str, *deps: str, **kw: object) -> ServiceConfig:
    return ServiceConfig(name=name, image="busybox",
                         depends_on={d: DependencySpec() for d in deps}, **kw)  # type: ignore[arg-type]


def project(*services: ServiceConfig) -> ProjectModel:
    return ProjectModel(name="p", working_dir="/tmp", services={s.name: s for s in services})


STACK = project(svc("db"), svc("cache"), svc("migrate", "db"), svc("app", "db", "cache",
                                                                    "migrate"))


def test_layers_start_leaves_first_and_group_ready_nodes() -> None:
    assert layers(STACK.services) == [["cache", "db"], ["migrate"], ["app"]]
    assert stop_order(STACK.services) == ["app", "migrate", "db", "cache"]


def test_cycle_is_rejected() -> None:
    with pytest.raises(ComposeError, match="cycle"):
        layers(project(svc("a", "b"), svc("b", "a")).services)


def test_unknown_required_dependency_is_rejected_optional_is_not() -> None:
    with pytest.raises(ComposeError, match="undefined"):
        check_graph(project(svc("a", "ghost")).services)
    opt = ServiceConfig(name="a", depends_on={"ghost": DependencySpec(required=False)})
    check_graph(project(opt).services)


def test_with_dependencies_and_dependents() -> None:
    assert with_dependencies(STACK.services, ["migrate"]) == {"migrate", "db"}
    assert dependents(STACK.services, "db") == {"migrate", "app"}


def obs(name: str, service: str, h: str, status: str = "running") -> Observed:
    return Observed(name=name, service=service, number=1, config_hash=h, status=status)


def test_plan_creates_missing_and_keeps_unchanged() -> None:
    p = project(svc("db"), svc("app", "db"))
    actions = plan(p, [obs("p-db-1", "db", p.services["db"].config_hash())])
    kinds = {a.container: a.kind for a in actions}
    assert kinds == {"p-db-1": "keep", "p-app-1": "create"}


def test_plan_recreates_only_when_the_hash_changed() -> None:
    old = svc("db", environment={"A": "1"})
    new = svc("db", environment={"A": "2"})
    p = project(new)
    o = [obs("p-db-1", "db", old.config_hash())]
    assert [a.kind for a in plan(p, o)] == ["recreate"]
    assert [a.kind for a in plan(p, o, PlanOptions(no_recreate=True))] == ["keep"]
    same = [obs("p-db-1", "db", new.config_hash())]
    assert [a.kind for a in plan(p, same, PlanOptions(force_recreate=True))] == ["recreate"]


def test_hash_ignores_scale_and_depends_on() -> None:
    assert svc("a", scale=1).config_hash() == svc("a", "b", scale=3).config_hash()


def test_plan_starts_stopped_scales_and_removes_orphans() -> None:
    p = project(svc("db", scale=2))
    h = p.services["db"].config_hash()
    o = [obs("p-db-1", "db", h, "exited"), obs("p-db-3", "db", h), obs("p-old-1", "old", "x")]
    kinds = {a.container: a.kind for a in plan(p, o)}
    assert kinds == {"p-db-1": "start", "p-db-2": "create", "p-db-3": "remove"}
    kinds = {a.container: a.kind for a in plan(p, o, PlanOptions(remove_orphans=True))}
    assert kinds["p-old-1"] == "remove"


def test_plan_selected_services_pull_in_dependencies_unless_no_deps() -> None:
    names = {a.service for a in plan(STACK, [], PlanOptions(services=("migrate",)))}
    assert names == {"migrate", "db"}
    names = {a.service for a in plan(STACK, [], PlanOptions(services=("migrate",),
                                                               no_deps=True))}
    assert names == {"migrate"}


def test_container_name_and_scale_override() -> None:
    p = project(svc("db", container_name="mydb"), svc("web"))
    names = [a.container for a in plan(p, [], PlanOptions(scale={"web": 2}))]
    assert names == ["mydb", "p-web-1", "p-web-2"]
