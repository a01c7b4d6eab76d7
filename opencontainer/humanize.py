"""Human-readable durations and sizes, worded exactly as Docker's ``go-units`` words them."""

from __future__ import annotations

import time
from datetime import datetime


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
