"""Pull policies: whether the local store's image will do, without importing the puller.

:func:`local_image` answers from the store alone; only when it says "pull" does a caller need
:mod:`.pull` (aiohttp, the registry client: ~150 ms of imports that a ``run`` of an image
already in the store never uses).
"""

from __future__ import annotations

import re
import time

from ..errors import ConfigError, ImageNotFound
from .store import ImageRecord, ImageStore

POLICIES = ("missing", "always", "never", "daily", "weekly", "if_not_present", "build")


def normalize(policy: str) -> str:
    """``policy`` in its canonical spelling; an unknown one is a :class:`ConfigError`."""
    policy = policy.replace("-", "_")
    if policy == "if_not_present":
        policy = "missing"
    if policy not in POLICIES and not policy.startswith("every_"):
        raise ConfigError(f"unknown pull policy {policy!r}.")
    return policy


def stale(rec: ImageRecord, policy: str) -> bool:
    """A ``daily``/``weekly``/``every_<interval>`` image older than its policy allows."""
    age = time.time() - rec.pulled_at
    if policy == "daily":
        return age > 86400
    if policy == "weekly":
        return age > 7 * 86400
    if policy.startswith("every_"):
        return age > duration(policy[len("every_") :])
    return False


def duration(text: str) -> float:
    total = 0.0
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    found = re.findall(r"(\d+)([wdhms])", text)
    if not found:
        raise ConfigError(f"invalid pull policy interval {text!r}.")
    for num, unit in found:
        total += int(num) * units[unit]
    return total


def local_image(ref: str, store: ImageStore, policy: str) -> ImageRecord | None:
    """The store's image for ``ref`` when ``policy`` lets it be used as it is; None when it
    has to be pulled. ``never`` with nothing in the store is an :class:`ImageNotFound`."""
    policy = normalize(policy)
    try:
        rec: ImageRecord | None = store.resolve(ref)
    except ImageNotFound:
        rec = None
    if rec is not None and not rec.rootfs.is_dir():
        rec = None
    if policy == "never":
        if rec is None:
            raise ImageNotFound(
                f"image {ref} is not in the local store and the pull policy is 'never'; "
                f"run 'opencontainer pull {ref}'."
            )
        return rec
    if rec is not None and policy in ("missing", "build"):
        return rec
    if rec is not None and policy != "always" and not stale(rec, policy):
        return rec
    return None


__all__ = ["POLICIES", "local_image", "normalize", "stale"]
