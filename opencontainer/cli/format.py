"""``--format`` for every listing command, as docker's ``formatter`` package does it.

``render(fmt, rows, table=..., headers=...)`` takes what the user gave (``None``/``""``/
``table`` for the default table, ``table {{.A}}\\t{{.B}}`` for a custom one, ``json`` for one
JSON object a row, or any Go template, run once per row) and returns the text to print.
A literal ``\\t`` or ``\\n`` in the format is a tab or a newline; a table's columns are the
tab-separated cells, aligned as Go's ``tabwriter`` (minimum width 10, padding 3) aligns
docker's, and its header row is the template run over the column titles (``headers``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["is_table", "render", "render_one", "tabwrite"]

JSON_FORMAT = "{{json .}}"
# ``{{.Field}}``: the only action of the default tables (and of most custom ones)
_FIELD = re.compile(r"\{\{ *\.(\w+) *\}\}")


def is_table(fmt: str | None) -> bool:
    return not fmt or fmt.startswith("table")


def _prepare(fmt: str) -> str:
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


class _Headers(dict[str, Any]):
    """The header row's data: every field is there (a column title, or the field's name in
    capitals when the command has no title for it), callable with any arguments
    (``{{.Label "x"}}``)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Callable[..., str]:
        return lambda *_a: key.upper()

    def __getitem__(self, key: str) -> Callable[..., str]:
        title = dict.get(self, key)
        if title is None:
            return self.__missing__(key)
        return lambda *_a: str(title)


def render(fmt: str | None, rows: Sequence[Mapping[str, Any]], *, table: str,
           headers: Mapping[str, str], type_name: str = "struct", strict: bool = True) -> str:
    """The output of a listing: ``table`` is the default table's template (without the
    ``table`` word), ``headers`` the column titles by field; ``strict``: a field the rows do
    not have is an error (``can't evaluate field X in type <type_name>``), as in docker's
    listings (``inspect`` is not strict: an unknown key prints ``<no value>``)."""
    fmt = fmt or "table"
    tabular = fmt.startswith("table")
    if tabular:
        body = _prepare(fmt[len("table"):]) or table
    elif fmt == "json":
        body = JSON_FORMAT
    else:
        body = _prepare(fmt)
    quick = _plain_fields(body, rows)
    if quick is not None:
        out = [_fill(quick, row) + "\n" for row in rows]
        if not tabular:
            return "".join(out)
        return tabwrite(_fill(quick, _titles(quick, headers)) + "\n" + "".join(out))
    from .gotemplate import HEADER_FUNCS, Template, TemplateError

    tmpl = Template(body)
    out = [tmpl.execute(row, strict=strict, type_name=type_name) + "\n" for row in rows]
    if not tabular:
        return "".join(out)
    try:
        head = tmpl.execute(_Headers(headers), funcs=HEADER_FUNCS)
    except TemplateError:
        head = ""
    return tabwrite(head + "\n" + "".join(out))


def _plain_fields(body: str, rows: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """``body`` split into literal text and field names (text, field, text, ..., text) when
    it is only text and ``{{.Field}}`` actions and every row has every field as a string:
    what the template would print, without the template interpreter (``ps`` and ``images``
    with their default table need nothing else). None otherwise."""
    parts = _FIELD.split(body)
    if any("{{" in t or "}}" in t for t in parts[::2]):
        return None
    fields = parts[1::2]
    for row in rows:
        for f in fields:
            if not isinstance(row.get(f), str):
                return None
    return parts


def _fill(parts: list[str], row: Mapping[str, Any]) -> str:
    return "".join(p if i % 2 == 0 else row[p] for i, p in enumerate(parts))


def _titles(parts: list[str], headers: Mapping[str, str]) -> dict[str, str]:
    """The header row's data, as :class:`_Headers` gives it to the template."""
    return {f: str(headers[f]) if headers.get(f) is not None else f.upper()
            for f in parts[1::2]}


def render_one(fmt: str, value: Any, *, type_name: str = "struct", strict: bool = True) -> str:
    """One value through a template (``version``, ``info``, ``inspect``), with a newline."""
    from .gotemplate import Template

    body = JSON_FORMAT if fmt == "json" else _prepare(fmt)
    return Template(body).execute(value, strict=strict, type_name=type_name) + "\n"


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's ``tabwriter.NewWriter(w, minwidth, 1, padding, ' ', 0)``: each tab-terminated
    cell is padded to its column's width (the widest cell of the column's block of adjacent
    lines, plus ``padding``, at least ``minwidth``); a line's last cell is not aligned."""
    lines = text.split("\n")
    tail = lines.pop() if lines else ""
    cells = [line.split("\t") for line in lines]
    out: list[str] = []
    widths: list[int] = []

    def write(line0: int, line1: int) -> None:
        for row in cells[line0:line1]:
            parts = []
            for j, c in enumerate(row):
                parts.append(c.ljust(widths[j]) if j < len(widths) else c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write(line0, line1)

    fmt(0, len(cells))
    return "\n".join(out) + "\n" + tail if out else tail
