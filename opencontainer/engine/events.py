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
    │   ├── Paused / Unpaused
    │   ├── Renamed(old_name)
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
    """Base of all events: the ``project`` name and when it happened (``at``, Unix time). ``kind``
    is the ``type`` of its JSON form (:meth:`to_dict`)."""

    kind: ClassVar[str] = "event"
    project: str = ""
    at: float = attrs.field(factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the fields, and ``type`` (the :attr:`kind`)."""
        data = attrs.asdict(self, recurse=True)
        data["type"] = self.kind
        return data


# -- images -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ImageEvent(Event):
    """Base of the image events: ``ref`` is the image reference being pulled."""

    kind: ClassVar[str] = "image"
    ref: str


@attrs.frozen(kw_only=True)
class PullStarted(ImageEvent):
    """A pull began; ``layers`` is how many layers the image has."""

    kind: ClassVar[str] = "pull-started"
    layers: int = 0


@attrs.frozen(kw_only=True)
class LayerProgress(ImageEvent):
    """Bytes ``done`` of ``total`` of one layer, while ``phase`` is downloading, extracting or
    exists."""

    kind: ClassVar[str] = "layer-progress"
    digest: str
    done: int
    total: int
    phase: str = "downloading"  # downloading | extracting | exists


@attrs.frozen(kw_only=True)
class LayerDone(ImageEvent):
    """One layer is in the store (``cached``: it was there already)."""

    kind: ClassVar[str] = "layer-done"
    digest: str
    size: int
    cached: bool = False


@attrs.frozen(kw_only=True)
class Pulled(ImageEvent):
    """The image is in the store; ``digest`` is its manifest digest."""

    kind: ClassVar[str] = "pulled"
    digest: str


# -- containers -------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ContainerEvent(Event):
    """Base of the container events: the ``service`` and the ``container`` name."""

    kind: ClassVar[str] = "container"
    service: str
    container: str


@attrs.frozen(kw_only=True)
class Created(ContainerEvent):
    """The container was created (root filesystem ready, not started)."""

    kind: ClassVar[str] = "create"


@attrs.frozen(kw_only=True)
class Starting(ContainerEvent):
    """The container's process is being started."""

    kind: ClassVar[str] = "starting"


@attrs.frozen(kw_only=True)
class Started(ContainerEvent):
    """The container's process runs; ``pid`` is its host pid."""

    kind: ClassVar[str] = "start"
    pid: int


@attrs.frozen(kw_only=True)
class Exited(ContainerEvent):
    """The container's process ended with ``exit_code``; ``restarting``: its restart policy starts
    it again."""

    kind: ClassVar[str] = "die"
    exit_code: int
    restarting: bool = False


@attrs.frozen(kw_only=True)
class RestartScheduled(ContainerEvent):
    """The container restarts in ``delay`` seconds (its ``attempt``-th restart)."""

    kind: ClassVar[str] = "restart-scheduled"
    delay: float
    attempt: int


@attrs.frozen(kw_only=True)
class HealthChanged(ContainerEvent):
    """The healthcheck's verdict changed to ``status`` (starting, healthy or unhealthy);
    ``output`` is the last probe's output."""

    kind: ClassVar[str] = "health_status"
    status: str  # starting | healthy | unhealthy
    output: str = ""


@attrs.frozen(kw_only=True)
class LogLine(ContainerEvent):
    """One line the container wrote on ``stream`` (stdout or stderr), without the newline."""

    kind: ClassVar[str] = "log"
    stream: str  # stdout | stderr
    text: str


@attrs.frozen(kw_only=True)
class Paused(ContainerEvent):
    """Every process of the container was stopped (SIGSTOP): ``pause``."""

    kind: ClassVar[str] = "pause"


@attrs.frozen(kw_only=True)
class Unpaused(ContainerEvent):
    """The paused container's processes were continued (SIGCONT): ``unpause``."""

    kind: ClassVar[str] = "unpause"


@attrs.frozen(kw_only=True)
class Stopping(ContainerEvent):
    """The container is sent its stop ``signal``."""

    kind: ClassVar[str] = "kill"
    signal: str = "SIGTERM"


@attrs.frozen(kw_only=True)
class Stopped(ContainerEvent):
    """The container stopped (after a stop request)."""

    kind: ClassVar[str] = "stop"


@attrs.frozen(kw_only=True)
class Removed(ContainerEvent):
    """The container and its files were removed."""

    kind: ClassVar[str] = "destroy"


# -- project ----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ProjectEvent(Event):
    """Base of the project events."""

    kind: ClassVar[str] = "project"


@attrs.frozen(kw_only=True)
class ProjectUp(ProjectEvent):
    """``up`` finished starting the project."""

    kind: ClassVar[str] = "project-up"


@attrs.frozen(kw_only=True)
class ProjectDown(ProjectEvent):
    """``down`` finished removing the project."""

    kind: ClassVar[str] = "project-down"


@attrs.frozen(kw_only=True)
class EventsDropped(Event):
    """The lossy subscriber ``subscriber`` fell behind and lost ``count`` events."""

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
    "Paused",
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
    "Unpaused",
]
