"""OpenContainer: rootless, Docker-compatible containers and Compose stacks on PRoot.

The public API, for embedding the engine in a Python program (see docs/embedding.md):

- loading: :func:`load_project`, :class:`LoadOptions`, :class:`Project`;
- running: :class:`Engine` with :class:`UpOptions` / :class:`UpResult`, :class:`DownOptions`,
  :class:`ContainerSnapshot` (what :meth:`Engine.ps` returns);
- events: the :class:`Event` hierarchy (``opencontainer.events`` is its module,
  :mod:`opencontainer.engine.events`), :class:`EventBus`, and the :class:`Plugin` protocol;
- errors: :class:`OpenContainerError` and its subclasses (one-sentence messages).

Everything but the errors is imported lazily, on first attribute access, so that
``import opencontainer`` and the CLI's start-up stay fast; type checkers see the real types.
"""

from __future__ import annotations

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

# typing.TYPE_CHECKING without importing typing (~3 ms at every start of the CLI)
TYPE_CHECKING = False
if TYPE_CHECKING:  # the real types for type checkers; imported lazily at run time
    from typing import Any

    from .compose.loader import LoadOptions, load_project
    from .compose.model import Project
    from .engine import events
    from .engine.bus import EventBus
    from .engine.engine import ContainerSnapshot, DownOptions, Engine
    from .engine.events import (
        ContainerEvent,
        Created,
        Event,
        EventsDropped,
        Exited,
        HealthChanged,
        ImageEvent,
        LayerDone,
        LayerProgress,
        LogLine,
        Paused,
        ProjectDown,
        ProjectEvent,
        ProjectUp,
        Pulled,
        PullStarted,
        Removed,
        RestartScheduled,
        Started,
        Starting,
        Stopped,
        Stopping,
        Unpaused,
    )
    from .engine.plugins import Plugin
    from .engine.supervisor import UpOptions, UpResult

#: public name -> the module it comes from (imported on first access)
_LAZY: dict[str, str] = {
    "LoadOptions": "opencontainer.compose.loader",
    "load_project": "opencontainer.compose.loader",
    "Project": "opencontainer.compose.model",
    "EventBus": "opencontainer.engine.bus",
    "ContainerSnapshot": "opencontainer.engine.engine",
    "DownOptions": "opencontainer.engine.engine",
    "Engine": "opencontainer.engine.engine",
    "Plugin": "opencontainer.engine.plugins",
    "UpOptions": "opencontainer.engine.supervisor",
    "UpResult": "opencontainer.engine.supervisor",
    "ContainerEvent": "opencontainer.engine.events",
    "Created": "opencontainer.engine.events",
    "Event": "opencontainer.engine.events",
    "EventsDropped": "opencontainer.engine.events",
    "Exited": "opencontainer.engine.events",
    "HealthChanged": "opencontainer.engine.events",
    "ImageEvent": "opencontainer.engine.events",
    "LayerDone": "opencontainer.engine.events",
    "LayerProgress": "opencontainer.engine.events",
    "LogLine": "opencontainer.engine.events",
    "Paused": "opencontainer.engine.events",
    "Unpaused": "opencontainer.engine.events",
    "ProjectDown": "opencontainer.engine.events",
    "ProjectEvent": "opencontainer.engine.events",
    "ProjectUp": "opencontainer.engine.events",
    "PullStarted": "opencontainer.engine.events",
    "Pulled": "opencontainer.engine.events",
    "Removed": "opencontainer.engine.events",
    "RestartScheduled": "opencontainer.engine.events",
    "Started": "opencontainer.engine.events",
    "Starting": "opencontainer.engine.events",
    "Stopped": "opencontainer.engine.events",
    "Stopping": "opencontainer.engine.events",
    "events": "opencontainer.engine.events",
}


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is an error

    def __getattr__(name: str) -> Any:
        module_name = _LAZY.get(name)
        if module_name is None:
            raise AttributeError(f"module 'opencontainer' has no attribute {name!r}")
        import importlib

        module = importlib.import_module(module_name)
        return module if name == "events" else getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
    "ComposeError",
    "ConfigError",
    "ContainerError",
    "ContainerEvent",
    "ContainerNotFound",
    "ContainerSnapshot",
    "Created",
    "DigestMismatch",
    "DownOptions",
    "Engine",
    "Event",
    "EventBus",
    "EventsDropped",
    "Exited",
    "HealthChanged",
    "ImageError",
    "ImageEvent",
    "ImageNotFound",
    "LayerDone",
    "LayerProgress",
    "LoadOptions",
    "LogLine",
    "OpenContainerError",
    "Paused",
    "Plugin",
    "Project",
    "ProjectDown",
    "ProjectEvent",
    "ProjectUp",
    "ProotError",
    "PullStarted",
    "Pulled",
    "RegistryError",
    "Removed",
    "RestartScheduled",
    "Started",
    "Starting",
    "StateError",
    "Stopped",
    "Stopping",
    "UnpackError",
    "Unpaused",
    "UpOptions",
    "UpResult",
    "__version__",
    "events",
    "load_project",
]
