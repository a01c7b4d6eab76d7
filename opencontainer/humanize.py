"""Human-readable durations and sizes, worded exactly as Docker's ``go-units`` words them."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine.state import ContainerState


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration``: ``Less than a second``, ``About a minute``, ``3 days``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_ago(when: str | None, now: float | None = None) -> str:
    """``3 weeks ago`` for an ISO-8601 timestamp; ``N/A`` when there is none."""
    if not when:
        return "N/A"
    try:
        ts = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "N/A"
    return f"{human_duration(max(0.0, (now or time.time()) - ts))} ago"


def human_size(size: float) -> str:
    """Docker's ``units.HumanSizeWithPrecision(size, 3)``: SI units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"


def _ago(seconds: float) -> str:
    return human_duration(max(0.0, seconds))


def status_text(st: ContainerState, now: float | None = None) -> str:
    """A container's STATUS column, as docker's: ``Up 3 minutes (healthy)``, ``Exited (0) 2
    hours ago``, ``Created``."""
    now = now or time.time()
    if st.status in ("running", "starting", "stopping", "paused"):
        text = f"Up {_ago(now - (st.started_at or now))}"
        if st.status == "paused":
            return text + " (Paused)"
        if st.health:
            text += f" ({st.health})" if st.health != "starting" else " (health: starting)"
        return text
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {_ago(now - (st.finished_at or now))} ago"
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {_ago(now - (st.finished_at or now))} ago"
    return st.status.capitalize()
