"""The event bus: isinstance delivery, reliable vs lossy subscribers, drop accounting."""

from __future__ import annotations

import anyio
import pytest

from opencontainer.engine.bus import EventBus
from opencontainer.engine.events import (
    ContainerEvent,
    Event,
    EventsDropped,
    Exited,
    LogLine,
    Pulled,
    Started,
)

pytestmark = pytest.mark.anyio


async def test_isinstance_delivery() -> None:
    bus = EventBus()
    got: list[Event] = []
    async with bus.subscribe(ContainerEvent, name="t") as events:
        await bus.publish(Started(project="p", service="s", container="c", pid=1))
        await bus.publish(Pulled(project="p", ref="busybox", digest="sha256:x"))
        await bus.publish(Exited(project="p", service="s", container="c", exit_code=3))
        with anyio.fail_after(1):
            got.append(await events.receive())
            got.append(await events.receive())
    assert [type(e) for e in got] == [Started, Exited]
    assert bus.subscribers == []


async def test_lossy_subscriber_counts_drops() -> None:
    bus = EventBus()
    async with bus.subscribe(LogLine, name="printer", lossy=True, buffer=2) as events:
        for i in range(5):
            await bus.publish(LogLine(project="p", service="s", container="c", stream="stdout",
                                      text=str(i)))
        first = [await events.receive(), await events.receive()]
        await bus.publish(LogLine(project="p", service="s", container="c", stream="stdout",
                                  text="late"))
        dropped = await events.receive()
        late = await events.receive()
    assert [e.text for e in first if isinstance(e, LogLine)] == ["0", "1"]
    assert isinstance(dropped, EventsDropped) and dropped.count == 3
    assert isinstance(late, LogLine) and late.text == "late"


async def test_reliable_subscriber_applies_backpressure() -> None:
    bus = EventBus()
    received: list[int] = []
    async with (
        bus.subscribe(Started, name="state", buffer=1) as events,
        anyio.create_task_group() as tg,
    ):

        async def reader() -> None:
            async for ev in events:
                assert isinstance(ev, Started)
                received.append(ev.pid)
                if len(received) == 10:
                    return

        tg.start_soon(reader)
        for pid in range(10):
            await bus.publish(Started(project="p", service="s", container="c", pid=pid))
    assert received == list(range(10))


def test_event_to_dict() -> None:
    d = Exited(project="p", service="db", container="p-db-1", exit_code=1).to_dict()
    assert d["type"] == "die" and d["exit_code"] == 1 and d["service"] == "db"
