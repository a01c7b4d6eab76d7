"""OpenContainer: rootless, Docker-compatible containers and Compose stacks on PRoot.

The public API. Heavy parts (aiohttp, the engine) are imported lazily, on first attribute
access, so that ``import opencontainer`` and the CLI's start-up stay fast.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .errors import (
    AuthError,
    ComposeError,
    ConfigError,
    ContainerError,
    ContainerNotFound,
    DigestMismatch,
    ImageError,
    ImageNotFound,
    OpenContainerError,
    ProotError,
    RegistryError,
    StateError,
    UnpackError,
)

_LAZY = {
    "Engine": "opencontainer.engine.engine",
    "load_project": "opencontainer.compose.loader",
    "EventBus": "opencontainer.engine.bus",
    "events": "opencontainer.engine.events",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'opencontainer' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(module_name)
    return module if name == "events" else getattr(module, name)


__all__ = [
    "AuthError",
    "ComposeError",
    "ConfigError",
    "ContainerError",
    "ContainerNotFound",
    "DigestMismatch",
    "Engine",
    "EventBus",
    "ImageError",
    "ImageNotFound",
    "OpenContainerError",
    "ProotError",
    "RegistryError",
    "StateError",
    "UnpackError",
    "__version__",
    "events",
    "load_project",
]
