"""depends_on graph helpers: levels, reverse order, cycles."""

from __future__ import annotations

import pytest

from opencontainer.compose.graph import (
    dependency_order,
    dependents,
    find_cycle,
    reverse_order,
    with_dependencies,
)
from opencontainer.compose.model import Dependency, Project, Service
from opencontainer.errors import ComposeError


def project(deps: dict[str, list[str]]) -> Project:
    return Project(name="p", working_dir="/", services={
        name: Service(name=name, image="x", depends_on={d: Dependency() for d in ds})
        for name, ds in deps.items()
    })


def test_levels() -> None:
    p = project({"web": ["api", "cache"], "api": ["db"], "db": [], "cache": [], "solo": []})
    assert dependency_order(p) == [["db", "cache", "solo"], ["api"], ["web"]]
    assert reverse_order(p) == [["web"], ["api"], ["db", "cache", "solo"]]


def test_subset_includes_dependencies() -> None:
    p = project({"web": ["api"], "api": ["db"], "db": [], "other": []})
    assert dependency_order(p, ["api"]) == [["db"], ["api"]]
    assert with_dependencies(p, ["web"]) == {"web", "api", "db"}
    assert dependents(p, "db") == {"api", "web"}


def test_cycle_named() -> None:
    p = project({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
    assert find_cycle(p.services) == ["a", "b", "c", "a"]
    with pytest.raises(ComposeError, match="a -> b -> c -> a"):
        dependency_order(p)


def test_self_cycle() -> None:
    with pytest.raises(ComposeError, match="a -> a"):
        dependency_order(project({"a": ["a"]}))


def test_unknown_dependencies_are_ignored_by_the_pure_helpers() -> None:
    assert dependency_order(project({"a": ["ghost"]})) == [["a"]]
