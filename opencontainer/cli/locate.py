"""Finding the compose project beside the current directory (or named with ``-p``/``-f``/
``--project-directory``) the cheap way: no YAML, no engine. Its own module so that ``ps`` (which
lists that project's containers too) does not import :mod:`opencontainer.cli.compose`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import attrs

from ..engine.state import ProjectState
from ..errors import ConfigError, StateError
from ..paths import project_state_dir

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


@attrs.frozen
class Located:
    name: str
    working_dir: Path
    state: ProjectState


def _find_compose_dir(start: Path) -> Path | None:
    d = start
    while True:
        if any((d / f).is_file() for f in COMPOSE_FILES):
            return d
        if d.parent == d:
            return None
        d = d.parent


def _default_name(d: Path) -> str:
    import re

    return re.sub(r"[^a-z0-9_-]", "", d.name.lower()) or "default"


def _locate(args: argparse.Namespace, ctx: Any) -> Located:
    from ..engine.state import read_index

    given = getattr(args, "located", None)  # a container command found the project already
    if isinstance(given, Located):
        return given
    env = ctx.env
    runtime = ctx.paths.runtime
    name = getattr(args, "project_name", None) or env.get("COMPOSE_PROJECT_NAME")
    files = getattr(args, "files", None)
    pdir = getattr(args, "project_directory", None)
    if name and not files and not pdir:
        entry = read_index(ctx.paths).get(name)
        if entry:
            return Located(name, Path(entry["working_dir"]),
                           ProjectState(Path(entry["state_dir"]), runtime))
    if pdir:
        wd = Path(pdir).absolute()
    elif files and files[0] != "-":
        wd = Path(files[0]).absolute().parent
    else:
        found = _find_compose_dir(Path(os.getcwd()))
        if found is None:
            if name:
                raise StateError(f"no project named {name!r} is known.")
            raise ConfigError(
                "no configuration file provided: not found (compose.yaml or "
                "docker-compose.yml in this directory or a parent)."
            )
        wd = found
    state = ProjectState(project_state_dir(wd, env), runtime)
    data = state.read_project()
    pname = name or (data or {}).get("name") or _default_name(wd)
    return Located(str(pname), wd, state)
