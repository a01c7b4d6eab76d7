"""Platforms (``os/arch[/variant]``) and picking one manifest out of an index."""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import ConfigError, ImageNotFound

_MACHINE = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64le", None),
}


@attrs.frozen
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(f"invalid platform {text!r}: expected os/arch[/variant].")
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else None
        return cls(parts[0], arch, variant)

    @classmethod
    def host(cls) -> Platform:
        arch, variant = _MACHINE.get(_platform.machine().lower(), (_platform.machine(), None))
        return cls("linux", arch, variant)

    def matches(self, other: Mapping[str, Any]) -> bool:
        if other.get("os") != self.os or other.get("architecture") != self.architecture:
            return False
        theirs = other.get("variant") or None
        if self.variant is None or theirs is None:
            return True
        if self.architecture == "arm64":
            return bool((theirs or "v8") == (self.variant or "v8"))
        return bool(theirs == self.variant)


def select_manifest(
    index: Mapping[str, Any], wanted: Platform, *, explicit: bool, name: str
) -> Mapping[str, Any]:
    """The descriptor of ``wanted`` in an index (an exact variant beats a missing one).

    ``explicit`` (the user named the platform) is accepted for callers; the choice is the same.
    """
    entries: Sequence[Mapping[str, Any]] = index.get("manifests") or []
    candidates = [
        e
        for e in entries
        if isinstance(e.get("platform"), dict) and wanted.matches(e["platform"])
    ]
    if not candidates:
        listed = ", ".join(
            str(Platform(p.get("os", "?"), p.get("architecture", "?"), p.get("variant")))
            for e in entries
            if isinstance(p := e.get("platform"), dict) and p.get("os") != "unknown"
        )
        raise ImageNotFound(
            f"no matching manifest for {wanted} in the manifest list of {name}"
            + (f" (it has {listed})." if listed else ".")
        )
    exact = [e for e in candidates if (e["platform"].get("variant") or None) == wanted.variant]
    return (exact or candidates)[0]


__all__ = ["Platform", "select_manifest"]
