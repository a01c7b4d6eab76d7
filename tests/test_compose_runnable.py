"""``Project.check_runnable``: what loads (``config`` shows it, with a warning) but cannot be
run is refused, naming file, line and key, before a project is pulled, created or started."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import structlog

from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.compose.model import Project
from opencontainer.errors import ComposeError

STACK = """
services:
  web:
    image: busybox
    depends_on: [builder]
  builder:
    build: .
  bare: {}
  envy:
    image: busybox
    env_file: missing.env
  tools:
    image: busybox
    profiles: [debug]
    depends_on: [bare]
  plain:
    image: busybox
"""


def load(d: Path, text: str = STACK, **kw: object) -> Project:
    (d / "compose.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_project(LoadOptions(files=(str(d / "compose.yaml"),), env={"HOME": "/h"},
                                    working_dir=str(d), **kw))  # type: ignore[arg-type]


def _error(project: Project, *names: str, **kw: bool) -> ComposeError:
    with pytest.raises(ComposeError) as info:
        project.check_runnable(list(names) or None, **kw)
    return info.value


def test_build_only_service_is_runnable(tmp_path: Path) -> None:
    # built by up / compose build (issue 16), so nothing to refuse
    assert load(tmp_path).check_runnable(["builder"], deps=False) == ("builder",)


def test_service_without_image_is_refused(tmp_path: Path) -> None:
    exc = _error(load(tmp_path), "bare")
    assert exc.line == 7 and exc.key == "services.bare"
    assert "'bare'" in str(exc) and "image" in str(exc)


def test_missing_env_file_is_refused(tmp_path: Path) -> None:
    exc = _error(load(tmp_path), "envy")
    assert exc.key == "services.envy.env_file[0]" and exc.line == 10
    assert f"env file {tmp_path / 'missing.env'} not found" in str(exc)


def test_dependencies_are_checked_unless_no_deps(tmp_path: Path) -> None:
    project = load(tmp_path)
    assert project.check_runnable(["web"]) == ("web", "builder")
    assert _error(project, "tools").key == "services.bare"
    assert project.check_runnable(["tools"], deps=False) == ("tools",)
    assert project.check_runnable(["plain"]) == ("plain",)
    # a service of an inactive profile, named explicitly, and what it depends on
    assert _error(project, "tools").key == "services.bare"


def test_whole_project_and_unknown_names(tmp_path: Path) -> None:
    project = load(tmp_path)
    assert _error(project).key == "services.bare"  # first problem in file order
    assert str(_error(project, "nosuch")) == "no such service: nosuch"
    ok = load(tmp_path, "services:\n  a:\n    image: busybox\n  b:\n    image: busybox\n"
                        "    depends_on: [a]\n")
    assert ok.check_runnable() == ("a", "b")
    assert ok.check_runnable(["b"]) == ("b", "a")


def test_pull_needs_no_image_but_env_files(tmp_path: Path) -> None:
    project = load(tmp_path)
    assert project.check_runnable(["builder", "bare"], need_image=False) == ("builder", "bare")
    assert _error(project, "envy", need_image=False).key == "services.envy.env_file[0]"


def test_loading_to_run_does_not_warn_what_check_runnable_reports(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        load(tmp_path)
    warned = " ".join(str(e.get("event")) for e in logs)
    assert "neither an image nor a build" in warned and "missing.env not found" in warned
    with structlog.testing.capture_logs() as logs:
        project = load(tmp_path, for_run=True)
    warned = " ".join(str(e.get("event")) for e in logs)
    assert "neither an image" not in warned and "not found" not in warned
    assert _error(project, "envy").key == "services.envy.env_file[0]"
