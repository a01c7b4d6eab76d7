"""The container lifecycle: one status enum and one transition table, the only writer of a
container's status.

Docker's words, for every container (``run``, ``create``, compose services, ``compose run``)::

    created    -> starting -> running -> stopping -> exited
    starting   -> exited                      (the start failed: exit 126/127)
    exited     -> restarting -> starting       (restart policy, after a back-off)
    restarting -> exited                       (stopped during the back-off)
    exited | created -> starting               (``start``)
    running <-> paused                         (``pause`` / ``unpause``: SIGSTOP/SIGCONT)
    paused     -> stopping | exited            (stopped or killed while paused)
    running | starting | stopping | restarting -> exited   (its supervisor died: a leftover)
    created | exited -> removing -> (gone)     (``rm``, ``down``)
    removing   -> dead                         (the removal failed; ``rm -f`` again)

:func:`transition` checks the source, sets the status and the fields that go with it (times,
exit code, pids) and returns nothing else: the caller persists the record (``state.json``) and
publishes the event. Nothing else assigns ``status``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .state import ContainerState


class Status(StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RESTARTING = "restarting"
    PAUSED = "paused"
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"


S = Status
LIVE = frozenset({S.STARTING, S.RUNNING, S.STOPPING, S.RESTARTING, S.PAUSED})

# new status -> the statuses it may be entered from
ALLOWED_FROM: Mapping[Status, frozenset[Status]] = {
    S.STARTING: frozenset({S.CREATED, S.EXITED, S.RESTARTING}),
    S.RUNNING: frozenset({S.STARTING, S.PAUSED}),
    S.PAUSED: frozenset({S.RUNNING}),
    S.STOPPING: frozenset({S.RUNNING, S.STARTING, S.PAUSED}),
    S.EXITED: frozenset({S.STARTING, S.RUNNING, S.STOPPING, S.RESTARTING, S.PAUSED}),
    S.RESTARTING: frozenset({S.EXITED}),
    S.REMOVING: frozenset({S.CREATED, S.EXITED, S.DEAD}),
    S.DEAD: frozenset({S.REMOVING}),
}


class TransitionError(AssertionError):
    """A transition the table does not allow: a bug, never the user's doing."""


def transition(st: ContainerState, new: Status | str, **fields: Any) -> None:
    """Move ``st`` to ``new`` (checked against :data:`ALLOWED_FROM`), with its fields:

    - ``running``: ``pid``, ``pid_start`` (and ``started_at`` now); from ``paused``
      (``unpause``) nothing changes but the status;
    - ``exited``: ``exit_code`` (``finished_at`` now; pids and health cleared);
    - ``dead``: ``error``."""
    new = Status(new)
    old = Status(st.status)
    if old not in ALLOWED_FROM[new]:
        raise TransitionError(f"{st.name}: cannot go from {old} to {new}")
    now = time.time()
    st.status = new.value
    if new is S.STARTING:
        st.error = ""
    elif new is S.RUNNING and old is S.PAUSED:
        pass
    elif new is S.RUNNING:
        st.started_at = now
        st.pid = st.pgid = fields.get("pid")
        st.pid_start = fields.get("pid_start")
    elif new is S.EXITED:
        st.exit_code = int(fields["exit_code"])
        st.finished_at = now
        st.pid = st.pgid = st.pid_start = None
        st.health = ""
        if fields.get("error"):
            st.error = str(fields["error"])
    elif new is S.DEAD:
        st.error = str(fields.get("error", ""))


def recovered(old: ContainerState, new: ContainerState) -> None:
    """``new`` replaces the record ``old`` of the same container (a new supervisor, or a
    re-read configuration): it keeps the creation time, ID and last exit, and is ``exited``
    once ``old`` had ever started, ``created`` otherwise."""
    new.created_at = old.created_at
    new.id = old.id or new.id
    new.exit_code = old.exit_code
    new.finished_at = old.finished_at
    new.started_at = old.started_at
    if Status(old.status) is not S.CREATED:
        new.status = S.EXITED.value  # the record's starting point, not a transition


def leftover(st: ContainerState) -> bool:
    """``st`` was live when its supervisor died: mark it exited (137 unless known)."""
    if Status(st.status) in LIVE:
        transition(st, S.EXITED, exit_code=137 if st.exit_code is None else st.exit_code)
        return True
    return False
