"""Turn the compose globals parsed by the CLI into :class:`LoadOptions` (shared by every
compose command)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from .loader import LoadOptions


def _split_profiles(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


def options_from_args(
    args: argparse.Namespace,
    env: Mapping[str, str],
    cwd: str | Path,
    *,
    interpolate: bool = True,
) -> LoadOptions:
    """``-f`` -> files, ``-p`` -> project name, ``--profile``, ``--env-file``,
    ``--project-directory``. ``COMPOSE_*`` variables are handled by the loader itself."""
    return LoadOptions(
        files=tuple(getattr(args, "files", None) or ()),
        project_name=getattr(args, "project_name", None) or None,
        profiles=_split_profiles(getattr(args, "profiles", None)),
        env_files=tuple(getattr(args, "env_files", None) or ()),
        project_directory=getattr(args, "project_directory", None) or None,
        env=dict(env),
        interpolate=interpolate,
        working_dir=str(cwd),
    )
