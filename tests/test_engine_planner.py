"""Dependency order and observed-vs-desired planning."""

from __future__ import annotations

import pytest

from opencontainer.engine.model import DependencySpec, ProjectModel, ServiceConfig
from opencontainer.engine.planner import (
    Observed,
    Plan,
    PlanOptions,
    Step,
    Wait,
    build_plan,
    check_graph,
    dependents,
    layers,
    plan,
    removal_order,
    start_plan,
    stop_order,
    teardown,
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


# -- the plan as a dependency graph -------------------------------------------------------------
def dep(condition: str = "service_started", required: bool = True) -> DependencySpec:
    return DependencySpec(condition=condition, required=required)


DIAMOND = project(
    svc("base"),
    ServiceConfig(name="left", depends_on={"base": dep("service_healthy")}),
    ServiceConfig(name="right", depends_on={"base": dep()}),
    ServiceConfig(name="top", depends_on={"left": dep(), "right": dep(required=False)}),
    ServiceConfig(name="tail", depends_on={"top": dep("service_completed_successfully")}),
)


def edges(p: Plan, key: str) -> list[tuple[str, str, bool]]:
    return [(w.on, w.condition, w.required) for w in p.waits.get(key, ())]


def test_start_steps_wait_for_their_dependencies_with_the_condition() -> None:
    p = build_plan(DIAMOND, [])
    assert [s.key for s in p.steps] == [
        "create:p-base-1", "create:p-left-1", "create:p-right-1", "create:p-top-1",
        "create:p-tail-1", "created",
        "start:base", "start:left", "start:right", "start:top", "start:tail"]
    assert p.needs("created") == [f"create:p-{s}-1" for s in
                                  ("base", "left", "right", "top", "tail")]
    assert edges(p, "start:base") == [("created", "", True)]
    assert edges(p, "start:left") == [("created", "", True),
                                      ("start:base", "service_healthy", True)]
    assert edges(p, "start:top") == [("created", "", True),
                                     ("start:left", "service_started", True),
                                     ("start:right", "service_started", False)]
    assert edges(p, "start:tail") == [("created", "", True),
                                      ("start:top", "service_completed_successfully", True)]
    assert p.needs("create:p-base-1") == []


def test_a_dependency_outside_the_plan_is_waited_for_by_its_condition_only() -> None:
    p = build_plan(DIAMOND, [], PlanOptions(services=("left",), no_deps=True))
    assert [w.service for w in p.waits["start:left"]] == ["", "base"]
    assert p.waits["start:left"][1].on == ""
    assert start_plan(DIAMOND.services, ["top"]).waits["start:top"][0].on == ""


def test_no_start_plans_creation_only() -> None:
    p = build_plan(DIAMOND, [], PlanOptions(start=False))
    assert {s.kind for s in p.steps} == {"create"}


def test_removals_wait_for_the_removals_of_their_dependents() -> None:
    o = [obs(f"p-{s}-1", s, "old") for s in DIAMOND.services]
    p = build_plan(DIAMOND, o)
    removes = p.order("remove")
    assert removes[0] == "p-tail-1" and removes[1] == "p-top-1" and removes[-1] == "p-base-1"
    assert p.needs("remove:p-tail-1") == []
    assert p.needs("remove:p-top-1") == ["remove:p-tail-1"]
    assert set(p.needs("remove:p-left-1")) == {"remove:p-top-1", "remove:p-tail-1"}
    assert set(p.needs("remove:p-base-1")) == {
        "remove:p-left-1", "remove:p-right-1", "remove:p-top-1", "remove:p-tail-1"}
    # a recreate: remove, then create, then start (once everything exists)
    assert p.needs("create:p-base-1") == ["remove:p-base-1"]
    assert "create:p-base-1" in p.needs("created")
    assert p.step("create:p-base-1").fresh


def test_recreating_a_dependency_leaves_its_kept_dependents_alone() -> None:
    p2 = project(svc("db", environment={"A": "2"}), svc("app", "db"))
    o = [obs("p-db-1", "db", "old"), obs("p-app-1", "app", p2.services["app"].config_hash())]
    p = build_plan(p2, o)
    assert {a.container: a.kind for a in p.actions} == {"p-db-1": "recreate",
                                                        "p-app-1": "keep"}
    assert p.order("remove") == ["p-db-1"]
    assert p.step("create:p-app-1").action == "keep"
    assert not p.step("create:p-app-1").fresh


def test_one_services_containers_are_created_one_after_the_other() -> None:
    p = build_plan(project(svc("web")), [], PlanOptions(scale={"web": 3}))
    assert p.needs("create:p-web-2") == ["create:p-web-1"]
    assert p.needs("create:p-web-3") == ["create:p-web-2"]


def test_teardown_and_removal_order() -> None:
    pairs = [("p-base-1", "base"), ("x-1", "gone"), ("p-left-1", "left"),
             ("p-top-1", "top"), ("p-left-2", "left"), ("run-1", "top")]
    assert removal_order(DIAMOND.services, pairs) == [
        "p-top-1", "run-1", "p-left-1", "p-left-2", "p-base-1", "x-1"]
    t = teardown(DIAMOND.services, pairs, "stop")
    assert t.step("stop:p-base-1").kind == "stop"
    assert set(t.needs("stop:p-left-2")) == {"stop:p-top-1", "stop:run-1"}
    assert t.needs("stop:x-1") == []  # a service the project no longer has waits for nothing


def test_a_plan_refuses_a_wait_on_a_later_step() -> None:
    with pytest.raises(ValueError, match="not before it"):
        Plan(steps=(Step(kind="start", service="a"), Step(kind="start", service="b")),
             waits={"start:a": (Wait(on="start:b"),)})
