"""Lifecycle events: frozen attrs classes in one hierarchy.

::

    Event(project, at)
    ├── ImageEvent(ref)
    │   ├── PullStarted
    │   ├── LayerProgress(digest, done, total)
    │   ├── LayerDone(digest, size)
    │   └── Pulled(digest)
    ├── ContainerEvent(service, container)
    │   ├── Created
    │   ├── Starting
    │   ├── Started(pid)
    │   ├── Exited(exit_code, restarting)
    │   ├── RestartScheduled(delay, attempt)
    │   ├── HealthChanged(status, output)
    │   ├── LogLine(stream, text)
    │   ├── Stopping
    │   ├── Stopped
    │   └── Removed
    ├── ProjectEvent
    │   ├── ProjectUp / ProjectDown
    └── EventsDropped(subscriber, count)

Subscribers name classes; delivery uses ``isinstance``, so subscribing to ``ContainerEvent``
gets all container events. ``to_dict()`` gives the JSON form used by ``events --json``, the
control socket and the JSON-lines recorder plugin.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import attrs


def _now() -> float:
    return time.time()


@attrs.frozen(kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    project: str = ""
    at: float = attrs.field(factory=_now)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=True)
        data["type"] = self.kind
        return data


# -- images -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ImageEvent(Event):
    kind: ClassVar[str] = "image"
    ref: str


@attrs.frozen(kw_only=True)
class PullStarted(ImageEvent):
    kind: ClassVar[str] = "pull-started"
    layers: int = 0


@attrs.frozen(kw_only=True)
class LayerProgress(ImageEvent):
    kind: ClassVar[str] = "layer-progress"
    digest: str
    done: int
    total: int
    phase: str = "downloading"  # downloading | extracting | exists


@attrs.frozen(kw_only=True)
class LayerDone(ImageEvent):
    kind: ClassVar[str] = "layer-done"
    digest: str
    size: int
    cached: bool = False


@attrs.frozen(kw_only=True)
class Pulled(ImageEvent):
    kind: ClassVar[str] = "pulled"
    digest: str


# -- containers -------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ContainerEvent(Event):
    kind: ClassVar[str] = "container"
    service: str
    container: str


@attrs.frozen(kw_only=True)
class Created(ContainerEvent):
    kind: ClassVar[str] = "create"


@attrs.frozen(kw_only=True)
class Starting(ContainerEvent):
    kind: ClassVar[str] = "starting"


@attrs.frozen(kw_only=True)
class Started(ContainerEvent):
    kind: ClassVar[str] = "start"
    pid: int


@attrs.frozen(kw_only=True)
class Exited(ContainerEvent):
    kind: ClassVar[str] = "die"
    exit_code: int
    restarting: bool = False


@attrs.frozen(kw_only=True)
class RestartScheduled(ContainerEvent):
    kind: ClassVar[str] = "restart-scheduled"
    delay: float
    attempt: int


@attrs.frozen(kw_only=True)
class HealthChanged(ContainerEvent):
    kind: ClassVar[str] = "health_status"
    status: str  # starting | healthy | unhealthy
    output: str = ""


@attrs.frozen(kw_only=True)
class LogLine(ContainerEvent):
    kind: ClassVar[str] = "log"
    stream: str  # stdout | stderr
    text: str


@attrs.frozen(kw_only=True)
class Stopping(ContainerEvent):
    kind: ClassVar[str] = "kill"
    signal: str = "SIGTERM"


@attrs.frozen(kw_only=True)
class Stopped(ContainerEvent):
    kind: ClassVar[str] = "stop"


@attrs.frozen(kw_only=True)
class Removed(ContainerEvent):
    kind: ClassVar[str] = "destroy"


# -- project ----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ProjectEvent(Event):
    kind: ClassVar[str] = "project"


@attrs.frozen(kw_only=True)
class ProjectUp(ProjectEvent):
    kind: ClassVar[str] = "project-up"


@attrs.frozen(kw_only=True)
class ProjectDown(ProjectEvent):
    kind: ClassVar[str] = "project-down"


@attrs.frozen(kw_only=True)
class EventsDropped(Event):
    kind: ClassVar[str] = "events-dropped"
    subscriber: str
    count: int


__all__ = [
    "ContainerEvent",
    "Created",
    "Event",
    "EventsDropped",
    "Exited",
    "HealthChanged",
    "ImageEvent",
    "LayerDone",
    "LayerProgress",
    "LogLine",
    "ProjectDown",
    "ProjectEvent",
    "ProjectUp",
    "PullStarted",
    "Pulled",
    "Removed",
    "RestartScheduled",
    "Started",
    "Starting",
    "Stopped",
    "Stopping",
]
