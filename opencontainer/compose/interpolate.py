"""Variable interpolation as the Compose spec (and compose-go ``template``) define it.

``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``,
``${VAR:+alt}``, ``${VAR+alt}``, nesting inside the default/alternative, and ``$$`` for a literal
``$``. Only values are interpolated, never keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from .yamlio import Locations, Override, Path, Reset, compose_error

log = structlog.get_logger(__name__)

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")

Lookup = Callable[[str], "str | None"]


class InterpolationError(ValueError):
    """A template that cannot be substituted (bad syntax or a required variable)."""


def _find_closing(s: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose content starts at ``start``; -1 if none."""
    depth = 1
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if c == "$" and i + 1 < n:
            if s[i + 1] == "$":
                i += 2
                continue
            if s[i + 1] == "{":
                depth += 1
                i += 2
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def substitute(
    template: str,
    lookup: Lookup,
    *,
    on_missing: Callable[[str], None] | None = None,
) -> str:
    """Substitute variables in ``template``. Raises InterpolationError."""
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        c = template[i]
        if c != "$":
            j = template.find("$", i)
            if j < 0:
                out.append(template[i:])
                break
            out.append(template[i:j])
            i = j
            continue
        if i + 1 >= n:
            out.append("$")
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = _find_closing(template, i + 2)
            if end < 0:
                raise InterpolationError(f"invalid interpolation format for {template!r}")
            out.append(_braced(template[i + 2 : end], template, lookup, on_missing))
            i = end + 1
            continue
        m = _NAME.match(template, i + 1)
        if m is None:
            out.append("$")
            i += 1
            continue
        name = m.group(0)
        value = lookup(name)
        if value is None:
            if on_missing is not None:
                on_missing(name)
            value = ""
        out.append(value)
        i = m.end()
    return "".join(out)


def _braced(
    content: str, template: str, lookup: Lookup, on_missing: Callable[[str], None] | None
) -> str:
    m = _NAME.match(content)
    if m is None:
        raise InterpolationError(f"invalid interpolation format for {template!r}")
    name = m.group(0)
    rest = content[m.end() :]
    if not rest:
        value = lookup(name)
        if value is None:
            if on_missing is not None:
                on_missing(name)
            return ""
        return value
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(f"invalid interpolation format for {template!r}")
    arg = rest[len(op) :]
    value = lookup(name)
    if op == ":-":
        return value if value else substitute(arg, lookup, on_missing=on_missing)
    if op == "-":
        return value if value is not None else substitute(arg, lookup, on_missing=on_missing)
    if op == ":+":
        return substitute(arg, lookup, on_missing=on_missing) if value else ""
    if op == "+":
        return substitute(arg, lookup, on_missing=on_missing) if value is not None else ""
    # ":?" and "?"
    if (op == ":?" and not value) or (op == "?" and value is None):
        msg = substitute(arg, lookup, on_missing=on_missing)
        detail = f": {msg}" if msg else ""
        raise InterpolationError(f"required variable {name} is missing a value{detail}")
    return value or ""


def mapping_lookup(env: Mapping[str, str]) -> Lookup:
    return env.get


def interpolate_tree(
    data: Any,
    env: Mapping[str, str],
    locs: Locations,
    *,
    path: Path = (),
    warned: set[str] | None = None,
) -> Any:
    """Interpolate every string value of ``data`` (keys are left alone)."""
    seen = warned if warned is not None else set()

    def on_missing(name: str) -> None:
        if name not in seen:
            seen.add(name)
            log.warning(
                f'The "{name}" variable is not set. Defaulting to a blank string.',
                variable=name,
            )

    lookup = env.get

    def walk(node: Any, p: Path) -> Any:
        if isinstance(node, str):
            if "$" not in node:
                return node
            try:
                return substitute(node, lookup, on_missing=on_missing)
            except InterpolationError as exc:
                raise compose_error(str(exc), locs, p) from None
        if isinstance(node, dict):
            return {k: walk(v, (*p, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*p, i)) for i, v in enumerate(node)]
        if isinstance(node, Reset):
            return Reset(walk(node.value, p))
        if isinstance(node, Override):
            return Override(walk(node.value, p))
        return node

    return walk(data, path)
