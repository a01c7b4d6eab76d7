"""One internal event bus over anyio memory streams.

Each subscriber gets its own bounded stream pair (anyio streams hand each item to one receiver).
Reliable subscribers are awaited, so a slow one slows the publisher; lossy ones (printer, plugins)
get ``send_nowait`` and drops are counted and reported as one :class:`EventsDropped` event.

The bus carries news, not decisions.

Usage::

    bus = EventBus()
    async with bus.subscribe(ContainerEvent, name="printer", lossy=True) as events:
        async for event in events:
            ...
    await bus.publish(Started(project="p", service="db", container="p-db-1", pid=42))

``publish_nowait`` is for synchronous callers (e.g. progress callbacks); it never blocks and drops
for full reliable subscribers too (counted).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import anyio
import attrs
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream

from .events import Event, EventsDropped


@attrs.define(eq=False)
class _Subscriber:
    name: str
    classes: tuple[type[Event], ...]
    lossy: bool
    send: MemoryObjectSendStream[Event]
    dropped: int = 0

    def wants(self, event: Event) -> bool:
        return isinstance(event, self.classes)


@attrs.define(eq=False)
class EventBus:
    """Fan-out of events to subscribers, each on its own bounded stream."""

    buffer: int = 1024
    _subs: list[_Subscriber] = attrs.field(factory=list, init=False)
    _closed: bool = attrs.field(default=False, init=False)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        *classes: type[Event],
        name: str = "subscriber",
        lossy: bool = False,
        buffer: int | None = None,
    ) -> AsyncIterator[ObjectReceiveStream[Event]]:
        send, receive = anyio.create_memory_object_stream[Event](buffer or self.buffer)
        sub = _Subscriber(name=name, classes=tuple(classes) or (Event,), lossy=lossy, send=send)
        self._subs.append(sub)
        try:
            async with receive:
                yield receive
        finally:
            with contextlib.suppress(ValueError):
                self._subs.remove(sub)
            await send.aclose()

    @property
    def subscribers(self) -> Sequence[str]:
        return [s.name for s in self._subs]

    async def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            if not sub.wants(event):
                continue
            if sub.lossy:
                self._offer(sub, event)
            else:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await sub.send.send(event)

    def publish_nowait(self, event: Event) -> None:
        for sub in list(self._subs):
            if sub.wants(event):
                self._offer(sub, event)

    def _offer(self, sub: _Subscriber, event: Event) -> None:
        try:
            if sub.dropped:
                sub.send.send_nowait(
                    EventsDropped(project=event.project, subscriber=sub.name, count=sub.dropped)
                )
                sub.dropped = 0
            sub.send.send_nowait(event)
        except anyio.WouldBlock:
            sub.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
