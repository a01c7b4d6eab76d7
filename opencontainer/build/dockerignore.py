""".dockerignore: Docker's rules (``moby/patternmatcher``).

Each line is a pattern, cleaned like a path (``./a/../b`` is ``b``, a leading ``/`` dropped);
``#`` starts a comment line; ``*`` and ``?`` do not cross ``/``; ``**`` matches any number of
directories; ``[…]`` is a class; ``!`` makes an exception. The *last* matching pattern wins, and
a pattern also matches everything below a path it matches (``node_modules`` excludes its whole
tree). A directory is walked even when excluded if an exception may match inside it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs


@attrs.frozen
class Pattern:
    text: str
    exclusion: bool  # a ``!`` line
    regex: re.Pattern[str]
    dirs: tuple[str, ...]  # the pattern's path components (for "may match below" checks)


def _translate(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern[i:i + 2] == "**":
                i += 2
                if pattern[i:i + 1] == "/":  # "**/": zero or more directories
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def _clean(text: str) -> str:
    cleaned = posixpath.normpath(text.strip())
    cleaned = cleaned.lstrip("/")
    return "" if cleaned == "." else cleaned


def parse_patterns(lines: Iterable[str]) -> list[Pattern]:
    out: list[Pattern] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        line = line.strip()
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = _clean(line)
        if not cleaned:
            continue
        out.append(Pattern(cleaned, exclusion, _translate(cleaned), tuple(cleaned.split("/"))))
    return out


def read_dockerignore(context: Path, dockerfile: Path | None = None) -> list[Pattern]:
    """The context's ignore file: ``<Dockerfile>.dockerignore`` beside the Dockerfile first (as
    BuildKit), else ``.dockerignore`` at the root of the context."""
    candidates = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context / ".dockerignore")
    for path in candidates:
        try:
            return parse_patterns(path.read_text().splitlines())
        except (FileNotFoundError, NotADirectoryError):
            continue
    return []


class Matcher:
    """Decides which context paths (relative, ``/``-separated) are excluded."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = list(patterns)
        self.has_exceptions = any(p.exclusion for p in patterns)

    def excluded(self, rel: str) -> bool:
        """``rel`` or one of its parent directories is matched, the last pattern deciding."""
        rel = rel.strip("/")
        if not rel or not self.patterns:
            return False
        parents = rel.split("/")
        prefixes = ["/".join(parents[:k]) for k in range(1, len(parents) + 1)]
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # cannot change the verdict
            if any(p.regex.match(prefix) for prefix in prefixes):
                matched = not p.exclusion
        return matched

    def may_include_below(self, rel_dir: str) -> bool:
        """Whether an exception could re-include something below the excluded ``rel_dir``."""
        if not self.has_exceptions:
            return False
        depth = len(rel_dir.strip("/").split("/"))
        for p in self.patterns:
            if not p.exclusion:
                continue
            if "**" in p.text or len(p.dirs) > depth:
                prefix = "/".join(p.dirs[:depth])
                if "**" in p.text or _translate(prefix).match(rel_dir.strip("/")):
                    return True
        return False

    def walk(self, root: Path) -> list[str]:
        """Every path under ``root`` that is not excluded (relative, sorted, parents first)."""
        out: list[str] = []

        def visit(rel: str) -> None:
            here = root / rel if rel else root
            try:
                names = sorted(os.listdir(here))
            except OSError:
                return
            for name in names:
                sub = f"{rel}/{name}" if rel else name
                full = here / name
                is_dir = full.is_dir() and not full.is_symlink()
                if self.excluded(sub):
                    if is_dir and self.may_include_below(sub):
                        visit(sub)
                    continue
                out.append(sub)
                if is_dir:
                    visit(sub)

        visit("")
        return out


__all__ = ["Matcher", "Pattern", "parse_patterns", "read_dockerignore"]
