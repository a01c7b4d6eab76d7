"""``opencontainer config`` through the real CLI entry point."""

from __future__ import annotations

import argparse
import io
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from opencontainer.cli.main import CliContext, main
from opencontainer.compose.cli_options import options_from_args
from opencontainer.compose.loader import load_project

COMPOSE = """
name: demo
services:
  web:
    image: "nginx:${TAG:-latest}"
    ports: ["8080:80"]
    depends_on: [db]
    environment:
      PRICE: "5$$"
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(COMPOSE))
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), ctx=CliContext(env=env or {"HOME": "/home/u"}, stdout=out, stderr=err))
    return rc, out.getvalue(), err.getvalue()


def test_config_yaml(project_dir: Path) -> None:
    rc, out, err = run("config")
    assert rc == 0, err
    data = YAML(typ="safe").load(out)
    assert list(data) == ["name", "services", "networks", "volumes"]
    assert list(data["services"]) == ["db", "web"]
    assert data["services"]["web"]["image"] == "nginx:latest"
    assert data["services"]["web"]["ports"] == [
        {"mode": "ingress", "protocol": "tcp", "published": "8080", "target": 80}]
    assert data["services"]["web"]["environment"] == {"PRICE": "5$$"}
    assert data["volumes"]["data"] == {"name": "demo_data"}


def test_config_json_and_compose_subcommand(project_dir: Path) -> None:
    rc, out, _ = run("compose", "config", "--format", "json")
    assert rc == 0
    assert json.loads(out)["name"] == "demo"
    rc2, out2, _ = run("compose", "-p", "other", "config", "--format", "json")
    assert rc2 == 0 and json.loads(out2)["name"] == "other"


def test_config_lists(project_dir: Path) -> None:
    assert run("config", "--services")[1] == "web\ndb\n"
    assert run("config", "--services", "--profile", "debug")[1] == "web\ndb\ndebug\n"
    assert run("config", "--volumes")[1] == "data\n"
    assert run("config", "--images")[1] == "nginx:latest\npostgres\n"
    assert run("config", "--profiles")[1] == "debug\n"
    rc, out, _ = run("config", "--hash", "web")
    assert rc == 0 and out.startswith("web ") and len(out.split()[1]) == 64
    assert len(run("config", "--hash", "*")[1].splitlines()) == 2
    rc, out, _ = run("config", "--variables")
    assert "TAG false latest" in out


def test_config_quiet_output_and_no_interpolate(project_dir: Path) -> None:
    assert run("config", "-q") == (0, "", "")
    rc, out, _ = run("config", "-o", "out.yaml")
    assert rc == 0 and out == ""
    assert "nginx:latest" in (project_dir / "out.yaml").read_text()
    rc, out, _ = run("config", "--no-interpolate", "--format", "json")
    assert json.loads(out)["services"]["web"]["image"] == "nginx:${TAG:-latest}"


def test_config_env_and_env_file(project_dir: Path) -> None:
    (project_dir / "alt.env").write_text("TAG=1.25\n")
    _, out, _ = run("config", "--env-file", "alt.env", "--format", "json")
    assert json.loads(out)["services"]["web"]["image"] == "nginx:1.25"
    _, out, _ = run("config", "--format", "json", env={"TAG": "shell"})
    assert json.loads(out)["services"]["web"]["image"] == "nginx:shell"


def test_config_selected_services(project_dir: Path) -> None:
    rc, out, _ = run("config", "--format", "json", "web")
    assert rc == 0 and sorted(json.loads(out)["services"]) == ["db", "web"]
    rc, _, err = run("config", "nope")
    assert rc == 1 and "no such service" in err


def test_config_errors_are_one_sentence(project_dir: Path) -> None:
    (project_dir / "compose.yaml").write_text("services:\n  a:\n    image: [1]\n")
    rc, out, err = run("config")
    assert rc == 1 and out == ""
    assert err.startswith("Error: ") and "compose.yaml:3 at 'services.a.image'" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_config_output_is_loadable_again(project_dir: Path, tmp_path: Path) -> None:
    rc, out, _ = run("config")
    (project_dir / "rendered.yaml").write_text(out)
    rc, again, _ = run("config", "-f", "rendered.yaml")
    assert rc == 0 and again == out


def test_options_from_args(tmp_path: Path) -> None:
    ns = argparse.Namespace(files=["a.yml", "b.yml"], project_name="p", profiles=["x,y", "z"],
                            env_files=None, project_directory=None)
    opts = options_from_args(ns, {"A": "1"}, tmp_path)
    assert opts.files == ("a.yml", "b.yml") and opts.project_name == "p"
    assert opts.profiles == ("x", "y", "z") and opts.env == {"A": "1"}
    assert opts.working_dir == str(tmp_path)


def test_options_from_args_loads(project_dir: Path) -> None:
    ns = argparse.Namespace(files=None, project_name=None, profiles=["debug"], env_files=None,
                            project_directory=None)
    p = load_project(options_from_args(ns, {}, project_dir))
    assert "debug" in p.services
