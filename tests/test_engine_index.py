"""The index of containers and the per-user project registry, from state files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencontainer.engine import index
from opencontainer.engine.state import (
    ContainerState,
    ProjectState,
    read_index,
    register_project,
    registered_projects,
)
from opencontainer.errors import ContainerError, ContainerNotFound
from opencontainer.paths import Paths


def make_project(root: Path, paths: Paths, name: str, services: dict[str, int]) -> ProjectState:
    wd = root / name
    state = ProjectState(wd / ".containers", paths.runtime)
    state.root.mkdir(parents=True)
    model = {"name": name, "working_dir": str(wd), "services": {
        s: {"name": s, "labels": {"ci": "1"} if s == "api" else {}} for s in services}}
    state.project_json.write_text(json.dumps(model))
    t = 1000.0
    for svc, count in services.items():
        for n in range(1, count + 1):
            t += 1
            state.write_container(ContainerState(
                name=f"{name}-{svc}-{n}", service=svc, number=n, project=name,
                status="running", image="busybox", created_at=t, publishers=[
                    ["0.0.0.0", 8080, 80, "tcp"]] if svc == "api" else []))
    register_project(paths, name, state.root, str(wd), [str(wd / "compose.yaml")])
    return state


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env({"OPENCONTAINER_HOME": str(tmp_path / "home")})


def test_compose_containers_from_every_registered_project(tmp_path: Path, paths: Paths) -> None:
    make_project(tmp_path, paths, "shop", {"api": 1, "db": 1})
    make_project(tmp_path, paths, "blog", {"web": 2})
    got = index.entries(paths)
    assert sorted(e.name for e in got) == ["blog-web-1", "blog-web-2", "shop-api-1",
                                           "shop-db-1"]
    api = next(e for e in got if e.name == "shop-api-1")
    # no supervisor holds the lock: what ps shows is the truth, exited
    assert api.summary.status == "exited"
    assert api.summary.labels["com.docker.compose.project"] == "shop"
    assert api.summary.labels["com.docker.compose.service"] == "api"
    assert api.summary.labels["com.docker.compose.container-number"] == "1"
    assert api.summary.labels["com.docker.compose.oneoff"] == "False"
    assert api.summary.labels["ci"] == "1"  # the service's labels: from the model
    assert api.summary.networks == ("shop_default",)
    assert api.ports_text == "0.0.0.0:8080->80/tcp"
    assert len(api.id) == 64 and api.id == index.entries(paths)[
        [e.name for e in index.entries(paths)].index("shop-api-1")].id  # stable


def test_find_by_name_id_prefix_and_ambiguity(tmp_path: Path, paths: Paths) -> None:
    make_project(tmp_path, paths, "blog", {"web": 3})
    got = index.entries(paths)
    web2 = next(e for e in got if e.name == "blog-web-2")
    assert index.find(got, "blog-web-2") is web2
    assert index.find(got, "/blog-web-2") is web2
    assert index.find(got, web2.id) is web2
    assert index.find(got, web2.id[:12]) is web2
    with pytest.raises(ContainerNotFound, match="no such container: nope"):
        index.find(got, "nope")
    with pytest.raises(ContainerError, match="several containers") as exc:
        _ambiguous(got)
    assert "blog-web-" in str(exc.value) and "give more of the ID" in str(exc.value)


def _ambiguous(entries: list[index.Entry]) -> index.Entry:
    """Two containers whose IDs share ``abc``: looking up ``abc`` is an error."""
    import attrs

    twins = [attrs.evolve(e, summary=attrs.evolve(e.summary, id=f"abc{i}" + "0" * 60))
             for i, e in enumerate(entries[:2])]
    return index.find(twins, "abc")


def test_registry_prunes_deleted_projects(tmp_path: Path, paths: Paths) -> None:
    keep = make_project(tmp_path, paths, "keep", {"a": 1})
    gone = make_project(tmp_path, paths, "gone", {"a": 1})
    assert set(read_index(paths)) == {"keep", "gone"}
    import shutil

    shutil.rmtree(gone.root)
    assert [p.name for p in registered_projects(paths)] == ["keep"]
    assert set(read_index(paths)) == {"keep"}  # written back
    assert [p.state_dir for p in registered_projects(paths)] == [keep.root]


def test_an_unregistered_project_can_be_added(tmp_path: Path, paths: Paths) -> None:
    state = make_project(tmp_path, paths, "here", {"svc": 1})
    paths.projects_index.unlink()
    assert index.entries(paths) == []
    extra = index.Project(name="here", working_dir=state.root.parent, state=state)
    assert [e.name for e in index.entries(paths, [extra])] == ["here-svc-1"]
    # listed once even when also registered
    register_project(paths, "here", state.root, str(state.root.parent), [])
    assert [e.name for e in index.entries(paths, [extra])] == ["here-svc-1"]
