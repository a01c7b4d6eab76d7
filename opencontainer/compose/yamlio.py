"""Parse one compose file with ruamel.yaml (round-trip) into plain data plus a location map.

The result is built only from ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and
``None`` and the two tag markers :class:`Reset` / :class:`Override` (``!reset`` / ``!override``).
Next to it, a :class:`Locations` map remembers, for each key path, the file and the (1-based)
line where it was written, so that every later phase can name file:line in its errors.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import structlog
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarint import ScalarInt

from ..errors import ComposeError

Path = tuple[str | int, ...]
log = structlog.get_logger(__name__)


@attrs.frozen
class Reset:
    """A value tagged ``!reset``: in a merge, clears what the base had."""

    value: Any = None


@attrs.frozen
class Override:
    """A value tagged ``!override``: in a merge, replaces the base value without merging."""

    value: Any = None


class Locations:
    """Key path -> (file, line). Lookups fall back to the nearest known parent path.

    Building the map needs ruamel's slow round-trip parse, so a map made by
    :meth:`lazy` parses only when a location is first asked for (that is, when there is an
    error to report); operations done before that are recorded and replayed in order.
    """

    def __init__(self) -> None:
        self._map: dict[Path, tuple[str, int]] = {}
        self._pending: list[Callable[[], None]] = []

    @classmethod
    def lazy(cls, text: str, file: str) -> Locations:
        locs = cls()
        locs._pending.append(lambda: _fill_locations(locs._map, text, file))
        return locs

    def _ensure(self) -> None:
        while self._pending:
            ops, self._pending = self._pending, []
            for op in ops:
                op()

    def _do(self, op: Callable[[], None]) -> None:
        if self._pending:
            self._pending.append(op)
        else:
            op()

    def set(self, path: Path, file: str, line: int) -> None:
        self._do(lambda: self._map.__setitem__(path, (file, line)))

    def setdefault(self, path: Path, file: str, line: int) -> None:
        self._do(lambda: self._map.setdefault(path, (file, line)) and None)

    def update(self, other: Locations, *, overwrite: bool = True) -> None:
        def op() -> None:
            other._ensure()
            if overwrite:
                self._map.update(other._map)
            else:
                for k, v in other._map.items():
                    self._map.setdefault(k, v)

        if other._pending and not self._pending:
            self._pending.append(op)
        else:
            self._do(op)

    def copy_subtree(self, src: Path, dst: Path, *, overwrite: bool = False) -> None:
        def op() -> None:
            n = len(src)
            for k, v in list(self._map.items()):
                if k[:n] == src:
                    new = dst + k[n:]
                    if overwrite or new not in self._map:
                        self._map[new] = v

        self._do(op)

    def import_subtree(self, other: Locations, src: Path, dst: Path) -> None:
        """Copy ``other``'s locations under ``src`` to ``dst`` here (without overwriting)."""

        def op() -> None:
            other._ensure()
            n = len(src)
            for k, v in other._map.items():
                if k[:n] == src:
                    self._map.setdefault(dst + k[n:], v)

        if other._pending and not self._pending:
            self._pending.append(op)
        else:
            self._do(op)

    def find(self, path: Path) -> tuple[str | None, int | None]:
        self._ensure()
        p = tuple(path)
        while True:
            hit = self._map.get(p)
            if hit is not None:
                return hit
            if not p:
                return (None, None)
            p = p[:-1]

    def items(self) -> Iterable[tuple[Path, tuple[str, int]]]:
        self._ensure()
        return self._map.items()


def key_path_str(path: Path) -> str:
    """``('services', 'web', 'ports', 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def compose_error(
    message: str, locs: Locations | None, path: Path, *, file: str | None = None
) -> ComposeError:
    """A ComposeError naming the file and line of ``path`` (or its nearest parent)."""
    f, line = locs.find(path) if locs is not None else (None, None)
    return ComposeError(message, file=f or file, line=line, key=key_path_str(path) or None)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


_OCTAL = re.compile(r"0[0-7]+")


class _ComposeConstructor(SafeConstructor):
    """The safe constructor plus ``!reset``/``!override`` and go-yaml's octal ``0440``."""


def _construct_marker(kind: type[Reset] | type[Override]) -> Callable[[Any, Node], Any]:
    def construct(loader: Any, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            return kind(_scalar_from_text(str(node.value)))
        if isinstance(node, SequenceNode):
            return kind(loader.construct_sequence(node, deep=True))
        if isinstance(node, MappingNode):
            return kind(loader.construct_mapping(node, deep=True))
        return kind(None)  # pragma: no cover

    return construct


def _construct_int(loader: Any, node: Node) -> Any:
    text = str(node.value).replace("_", "")
    if _OCTAL.fullmatch(text):
        return int(text, 8)
    return SafeConstructor.construct_yaml_int(loader, node)


_ComposeConstructor.add_constructor("!reset", _construct_marker(Reset))
_ComposeConstructor.add_constructor("!override", _construct_marker(Override))
_ComposeConstructor.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _fast_yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.Constructor = _ComposeConstructor
    y.allow_duplicate_keys = False
    return y


def _load(y: YAML, text: str, file: str) -> Any:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            doc = y.load(text)
        for w in caught:
            first = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
            log.warning(f"{file}: {first or w.category.__name__}")
        return doc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ComposeError(f"invalid YAML: {problem}", file=file, line=line) from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ComposeError(f"invalid YAML: {first}", file=file) from None
    except RecursionError:
        raise ComposeError("invalid YAML: nesting is too deep", file=file) from None
    except Exception as exc:  # ruamel can fail inside its constructor on odd input
        raise ComposeError(f"invalid YAML ({type(exc).__name__}: {exc})", file=file) from None


def parse_yaml(text: str, file: str) -> tuple[Any, Locations]:
    """Parse ``text`` (the content of ``file``). Every YAML problem becomes a ComposeError.

    The data comes from ruamel's safe loader; the locations from its round-trip loader, run
    only when an error needs them (:meth:`Locations.lazy`)."""
    doc = _load(_fast_yaml(), text, file)
    locs = Locations.lazy(text, file)
    try:
        data = _plain(doc, (), file, None, 1, 0, locs)
    except RecursionError:
        raise ComposeError("YAML nesting is too deep", file=file) from None
    return data, locs


def parse_yaml_rt(text: str, file: str) -> tuple[Any, Locations]:
    """Like :func:`parse_yaml`, from the round-trip loader only (locations built eagerly)."""
    doc = _load(_yaml(), text, file)
    locs = Locations()
    try:
        data = _plain(doc, (), file, locs._map, 1, 0, locs)
    except RecursionError:
        raise ComposeError("YAML nesting is too deep", file=file) from None
    return data, locs


def _fill_locations(target: dict[Path, tuple[str, int]], text: str, file: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = _yaml().load(text)
        _plain(doc, (), file, target, 1, 0, None)
    except Exception:  # locations are best effort: the error itself is already known
        return


def _tag_of(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) else None


def _plain(
    node: Any, path: Path, file: str, rec: dict[Path, tuple[str, int]] | None, line: int,
    depth: int, locs: Locations | None,
) -> Any:
    if depth > 200:
        raise ComposeError("YAML nesting is too deep", file=file, line=line)
    if isinstance(node, (Reset, Override)):
        return type(node)(_plain(node.value, path, file, rec, line, depth + 1, locs))
    tag = _tag_of(node)
    if isinstance(node, TaggedScalar):
        raw = node.value
        value: Any = _scalar_from_text(raw) if tag in ("!reset", "!override") else raw
        return _wrap(tag, value, file, line, path)
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        base_line = node.lc.line + 1 if node.lc.line is not None else line
        for k in node:
            key = _key(k, file, base_line, path, locs)
            try:
                kl = node.lc.key(k)[0] + 1
            except (KeyError, TypeError, AttributeError):
                kl = base_line
            if rec is not None:
                rec.setdefault((*path, key), (file, kl))
            out[key] = _plain(node[k], (*path, key), file, rec, kl, depth + 1, locs)
        return _wrap(tag, out, file, line, path)
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        base_line = node.lc.line + 1 if node.lc.line is not None else line
        for i, item in enumerate(node):
            try:
                il = node.lc.item(i)[0] + 1
            except (KeyError, TypeError, AttributeError, IndexError):
                il = base_line
            if rec is not None:
                rec.setdefault((*path, i), (file, il))
            items.append(_plain(item, (*path, i), file, rec, il, depth + 1, locs))
        return _wrap(tag, items, file, line, path)
    if isinstance(node, dict):  # the safe loader's plain mappings
        plain: dict[str, Any] = {}
        for k, v in node.items():
            key = _key(k, file, line, path, locs)
            plain[key] = _plain(v, (*path, key), file, rec, line, depth + 1, locs)
        return plain
    if isinstance(node, list):
        return [_plain(v, (*path, i), file, rec, line, depth + 1, locs)
                for i, v in enumerate(node)]
    return _wrap(tag, _scalar(node), file, line, path)


def _wrap(tag: str | None, value: Any, file: str, line: int, path: Path) -> Any:
    if tag == "!reset":
        return Reset(value)
    if tag == "!override":
        return Override(value)
    return value


def _key(k: Any, file: str, line: int, path: Path, locs: Locations | None) -> str:
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, (list, dict, tuple, CommentedMap, CommentedSeq, Reset,
                                   Override)):
        if locs is not None:
            raise compose_error("a mapping key must be a string", locs, path, file=file)
        raise ComposeError(
            "a mapping key must be a string", file=file, line=line,
            key=key_path_str(path) or None,
        )
    if isinstance(k, bool):
        return "true" if k else "false"
    return str(k)


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return str(v) if isinstance(v, str) else v
    if isinstance(v, int):
        width = getattr(v, "_width", None)
        text = str(int(v))
        if (type(v) is ScalarInt and isinstance(width, int) and width > len(text) and v > 0
                and set(text) <= set("01234567")):
            return int(text, 8)  # "0440": an octal number, as go-yaml (and so compose) reads it
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def _scalar_from_text(raw: str) -> Any:
    text = raw.strip()
    if text in ("", "null", "~", "Null", "NULL"):
        return None
    if text in ("[]",):
        return []
    if text in ("{}",):
        return {}
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    return raw
