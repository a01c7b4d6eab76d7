"""Walking a :class:`~.planner.Plan`: each step starts when the steps it waits for are done.

Independent steps run concurrently in one task group. A step whose required predecessor
failed fails without running (``blocked`` says so); an optional one that failed is skipped.
``gate`` decides, edge by edge once the predecessor is done, whether the step may go on
(the supervisor waits there for ``depends_on`` conditions).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ..errors import OpenContainerError
from .planner import Plan, Step, Wait

Run = Callable[[Step], Awaitable[bool]]
Gate = Callable[[Step, Wait], Awaitable[bool]]
Blocked = Callable[[Step, Wait], None]


async def walk(plan: Plan, run: Run, *, gate: Gate | None = None,
               blocked: Blocked | None = None) -> set[str]:
    """Run every step of ``plan`` with ``run`` (true: it succeeded) and return the keys of
    the steps that failed. An :class:`OpenContainerError` out of a step fails it, and the
    first one is raised once every step is done (or blocked)."""
    done = {s.key: anyio.Event() for s in plan.steps}
    failed: set[str] = set()
    raised: list[OpenContainerError] = []

    async def one(step: Step) -> None:
        try:
            for w in plan.waits.get(step.key, ()):
                if w.on:
                    await done[w.on].wait()
                    if w.on in failed:
                        if w.required:
                            failed.add(step.key)
                            if blocked is not None:
                                blocked(step, w)
                            return
                        continue
                if gate is not None and not await gate(step, w):
                    failed.add(step.key)
                    return
            if not await run(step):
                failed.add(step.key)
        except OpenContainerError as exc:
            failed.add(step.key)
            raised.append(exc)
        finally:
            done[step.key].set()

    async with anyio.create_task_group() as tg:
        for step in plan.steps:
            tg.start_soon(one, step)
    if raised:
        raise raised[0]
    return failed
