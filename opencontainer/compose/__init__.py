"""The Compose loader: compose files -> a typed, immutable :class:`Project`.

``load_project(LoadOptions(...))`` runs compose-go's phases (parse, interpolate, validate,
include, extends, merge, canonical form, defaults, relative paths); every error is a
:class:`~opencontainer.errors.ComposeError` naming file, line and key. ``graph`` has the
depends_on helpers, ``cli_options.options_from_args`` maps the CLI's compose globals.
"""

from __future__ import annotations

from .loader import LoadOptions, load_project, normalize_project_name
from .model import (
    Dependency,
    EnvFileProblem,
    FileReference,
    Healthcheck,
    PortConfig,
    Project,
    Resource,
    RestartPolicy,
    RunProblem,
    Service,
    ServiceNetwork,
    VolumeMount,
)

__all__ = [
    "Dependency",
    "EnvFileProblem",
    "FileReference",
    "Healthcheck",
    "LoadOptions",
    "PortConfig",
    "Project",
    "Resource",
    "RestartPolicy",
    "RunProblem",
    "Service",
    "ServiceNetwork",
    "VolumeMount",
    "load_project",
    "normalize_project_name",
]
