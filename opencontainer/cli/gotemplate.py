"""A small interpreter for the part of Go's ``text/template`` that ``docker --format`` uses.

Supported: text and actions (``{{- x -}}`` trimming, ``{{/* comments */}}``), field chains on
the dot, on variables and on parenthesized pipelines (``.A.B``, ``$x.A``, ``(index . 0).A``),
pipelines with ``|``, variables (``$x := ...``, ``$x = ...``, ``$``), ``if``/``else if``/
``else``, ``range`` (lists, maps in key order, integers; ``$i, $e :=``; ``else``; ``break``;
``continue``), ``with``/``else``, string, raw-string, number, ``true``/``false``/``nil``
literals; Go's built-in functions (``and or not len index slice print printf println eq ne
lt le gt ge html js urlquery call``) and docker's (``json split join title lower upper pad
truncate``). ``define``/``template``/``block`` are not.

Data are Python values: a ``dict`` is a Go map (a missing key is ``<no value>``), a
:class:`Struct` (or the root when ``strict``) is a Go struct (a missing field is an error, as
``docker ps --format '{{.Nope}}'`` is); a callable value is a method, called with the
arguments given to it (``{{.Label "com.example"}}``). Values print as Go's ``fmt`` prints
them: ``true``, ``[a b]``, ``map[k:v]``, ``1e+06``, ``<nil>``.

Errors are :class:`TemplateError`, worded as Go's (``template: :1:2: executing "" at <.Nope>:
can't evaluate field Nope in type ...``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import OpenContainerError

__all__ = ["Struct", "Template", "TemplateError", "go_string", "to_json"]


class TemplateError(OpenContainerError):
    """A --format template that does not parse or cannot be executed (exit 1, as docker)."""


class Struct(dict[str, Any]):
    """A Go struct: asking for a field it does not have is an error (a dict is a map)."""


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


# -- values as Go prints them -------------------------------------------------------------------
def _go_float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    from decimal import Decimal

    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    e = len(ds) + exp - 1  # exponent of the first digit
    neg = "-" if sign else ""
    if e < -4 or e >= 6:  # strconv's %g, shortest: precision 6 decides
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if e < 0:
        return f"{neg}0.{'0' * (-e - 1)}{ds}"
    if len(ds) <= e + 1:
        return f"{neg}{ds}{'0' * (e + 1 - len(ds))}"
    return f"{neg}{ds[:e + 1]}.{ds[e + 1:]}"


def go_string(v: Any, top: bool = True) -> str:
    """``fmt.Sprint(v)`` for a template value."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, Struct):
        return "{" + " ".join(go_string(x, False) for x in v.values()) + "}"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{go_string(k, False)}:{go_string(x, False)}"
                                 for k, x in items) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_string(x, False) for x in v) + "]"
    return str(v)


def _jsonable(v: Any) -> Any:
    if v is MISSING:
        return None
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    if isinstance(v, Mapping):
        items = v.items() if isinstance(v, Struct) else sorted(v.items(), key=lambda kv: kv[0])
        return {str(k): _jsonable(x) for k, x in items if not callable(x)}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def to_json(v: Any) -> str:
    """docker's ``json`` function: Go's encoding/json, compact, no HTML escaping; maps with
    sorted keys, structs (and the rows) in field order."""
    return json.dumps(_jsonable(v), ensure_ascii=False, separators=(",", ":"))


def _type_name(v: Any) -> str:
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Struct):
        return "struct"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return type(v).__name__


def _truth(v: Any) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, Struct) or callable(v):
        return True
    return bool(v)


# -- lexing and parsing -------------------------------------------------------------------------
class _Node:
    pos: int = 0


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Arg(_Node):
    """An operand: kind is field/dot/var/str/num/bool/nil/ident/pipe; chain is the field
    names that follow it (``$x.A.B``, ``(pipe).A``)."""

    def __init__(self, kind: str, value: Any, pos: int, chain: Sequence[str] = ()) -> None:
        self.kind = kind
        self.value = value
        self.pos = pos
        self.chain = list(chain)
        self.src = ""


class _Pipe(_Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.decl: list[str] = []
        self.assign = False
        self.cmds: list[list[_Arg]] = []
        self.src = ""


class _Action(_Node):
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe
        self.pos = pipe.pos


class _Branch(_Node):
    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node], other: list[_Node]) -> None:
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.other = other
        self.pos = pipe.pos


class _Jump(_Node):
    def __init__(self, kind: str, pos: int) -> None:
        self.kind = kind
        self.pos = pos


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<decl>:=)
      | (?P<op>[|(),=])
      | (?P<str>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<char>'(?:[^'\\\n]|\\.)+')
      | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<var>\$[A-Za-z0-9_]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(s: str) -> str:
    def esc(m: re.Match[str]) -> str:
        body = m.group(1)
        if body[0] in "xuU":
            return chr(int(body[1:], 16))
        if body[0] in "01234567" and len(body) == 3:
            return chr(int(body, 8))
        return _ESCAPES.get(body, "\\" + body)

    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", esc, s)


class _Parser:
    def __init__(self, src: str, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.src = src
        self.funcs = funcs
        self.vars: list[str] = ["$"]

    def line(self, pos: int) -> int:
        return self.src.count("\n", 0, pos) + 1

    def fail(self, pos: int, msg: str) -> TemplateError:
        return TemplateError(f"template parsing error: template: :{self.line(pos)}: {msg}")

    def actions(self) -> Iterator[tuple[str, str, int]]:
        """("text", text, pos) and ("action", inside, pos) items, trimming applied."""
        src, i, pending_trim = self.src, 0, False
        while True:
            j = src.find("{{", i)
            text = src[i:] if j < 0 else src[i:j]
            if pending_trim:
                text = text.lstrip(" \t\r\n")
            if j < 0:
                if text:
                    yield "text", text, i
                return
            start = j + 2
            if src.startswith("- ", start) or src.startswith("-\t", start) or \
                    src.startswith("-\n", start) or src.startswith("-\r", start):
                text = text.rstrip(" \t\r\n")
                start += 1
            if text:
                yield "text", text, i
            if src[start:].lstrip(" \t\r\n").startswith("/*"):
                k = src.find("*/", start)
                end = src.find("}}", k + 2) if k >= 0 else -1
                if end < 0 or src[k + 2:end].strip(" \t\r\n") not in ("", "-"):
                    raise self.fail(j, "comment ends before closing delimiter")
                pending_trim = src[k + 2:end].strip(" \t\r\n") == "-"
                i = end + 2
                continue
            end = self._action_end(start)
            if end < 0:
                raise self.fail(j, "unclosed action")
            inner = src[start:end]
            pending_trim = False
            if inner.endswith((" -", "\t-", "\n-", "\r-")):
                inner, pending_trim = inner[:-1], True
            yield "action", inner, start
            i = end + 2

    def _action_end(self, start: int) -> int:
        """The ``}}`` that closes the action at ``start``, skipping quoted strings."""
        src, i = self.src, start
        while i < len(src):
            c = src[i]
            if src.startswith("}}", i):
                return i
            if c in "\"'":
                i += 1
                while i < len(src) and src[i] != c:
                    if src[i] == "\n":
                        return -1
                    i += 2 if src[i] == "\\" else 1
            elif c == "`":
                k = src.find("`", i + 1)
                if k < 0:
                    return -1
                i = k
            i += 1
        return -1

    def tokens(self, inner: str, pos: int) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        i = 0
        while i < len(inner):
            m = _TOKEN.match(inner, i)
            if m is None or m.end() == i:
                raise self.fail(pos, f"unexpected {inner[i]!r} in command".replace("'", '"'))
            kind = m.lastgroup or ""
            if kind != "ws":
                out.append((kind, m.group(), pos + i))
            i = m.end()
        return out

    def parse(self) -> list[_Node]:
        self.items = list(self.actions())
        self.k = 0
        body, stop, pos = self.list_until()
        if stop is not None:
            raise self.fail(pos, f"unexpected {{{{{stop}}}}}")
        return body

    def list_until(self) -> tuple[list[_Node], str | None, int]:
        """Nodes up to an ``end``/``else`` (returned with the rest of that action)."""
        nodes: list[_Node] = []
        while self.k < len(self.items):
            kind, text, pos = self.items[self.k]
            self.k += 1
            if kind == "text":
                nodes.append(_Text(text))
                continue
            toks = self.tokens(text, pos)
            if not toks:
                raise self.fail(pos, "missing value for command")
            head = toks[0]
            if head[0] == "ident" and head[1] in ("end", "else"):
                self.rest = toks[1:]
                return nodes, head[1], pos
            if head[0] == "ident" and head[1] in ("if", "range", "with"):
                nodes.append(self.branch(head[1], toks[1:], pos))
            elif head[0] == "ident" and head[1] in ("break", "continue"):
                nodes.append(_Jump(head[1], pos))
            elif head[0] == "ident" and head[1] in ("define", "template", "block"):
                raise self.fail(pos, f"{{{{{head[1]}}}}} is not supported")
            else:
                nodes.append(_Action(self.pipeline(toks, pos, text)))
        return nodes, None, len(self.src)

    def branch(self, kind: str, toks: list[tuple[str, str, int]], pos: int) -> _Branch:
        depth = len(self.vars)
        pipe = self.pipeline(toks, pos, "", allow_two=kind == "range")
        body, stop, spos = self.list_until()
        other: list[_Node] = []
        if stop is None:
            raise self.fail(len(self.src), "unexpected EOF")
        if stop == "else":
            rest = self.rest
            del self.vars[depth:]
            if rest and rest[0][0] == "ident" and rest[0][1] in ("if", "with") and \
                    kind != "range":
                # {{else if ...}}: the rest of this chain is one nested branch, sharing {{end}}
                other = [self.branch(rest[0][1], rest[1:], spos)]
                del self.vars[depth:]
                return _Branch(kind, pipe, body, other)
            if rest:
                raise self.fail(spos, "unexpected tokens after else")
            other, stop, spos = self.list_until()
            if stop != "end":
                raise self.fail(spos, "expected end; found " + (
                    "EOF" if stop is None else f"{{{{{stop}}}}}"))
        if self.rest:
            raise self.fail(spos, "unexpected tokens after end")
        del self.vars[depth:]
        return _Branch(kind, pipe, body, other)

    def pipeline(self, toks: list[tuple[str, str, int]], pos: int, src: str,
                 allow_two: bool = False) -> _Pipe:
        pipe = _Pipe(pos)
        pipe.src = src.strip()
        # declarations: $x :=  |  $i, $e :=  |  $x =
        if len(toks) >= 2 and toks[0][0] == "var":
            if toks[1][0] == "decl" or (toks[1] == ("op", "=", toks[1][2])):
                pipe.decl, pipe.assign = [toks[0][1]], toks[1][0] == "op"
                toks = toks[2:]
            elif allow_two and len(toks) >= 4 and toks[1][1] == "," and \
                    toks[2][0] == "var" and toks[3][0] == "decl":
                pipe.decl = [toks[0][1], toks[2][1]]
                toks = toks[4:]
        if pipe.assign and pipe.decl[0] not in self.vars:
            raise self.fail(pos, f'undefined variable "{pipe.decl[0]}"')
        cmds, i = self.commands(toks, 0, pos, nested=False)
        del i
        if not cmds:
            raise self.fail(pos, "missing value for command")
        pipe.cmds = cmds
        if not pipe.assign:
            self.vars.extend(pipe.decl)
        return pipe

    def commands(self, toks: list[tuple[str, str, int]], i: int, pos: int,
                 nested: bool) -> tuple[list[list[_Arg]], int]:
        cmds: list[list[_Arg]] = []
        cmd: list[_Arg] = []
        while i < len(toks):
            kind, text, _ = toks[i]
            if kind == "op" and text == ")":
                if not nested:
                    raise self.fail(pos, "unexpected right paren")
                break
            if kind == "op" and text == "|":
                if not cmd:
                    raise self.fail(pos, "missing command")
                cmds.append(cmd)
                cmd = []
                i += 1
                continue
            arg, i = self.operand(toks, i, pos)
            cmd.append(arg)
        if cmd:
            cmds.append(cmd)
        elif cmds:
            raise self.fail(pos, "missing command")
        return cmds, i

    def operand(self, toks: list[tuple[str, str, int]], i: int, pos: int) -> tuple[_Arg, int]:
        kind, text, tpos = toks[i]
        i += 1
        arg: _Arg
        if kind == "field":
            arg = _Arg("dot", None, tpos) if text == "." else \
                _Arg("field", None, tpos, text[1:].split("."))
        elif kind == "var":
            if text not in self.vars:
                raise self.fail(pos, f'undefined variable "{text}"')
            arg = _Arg("var", text, tpos)
        elif kind == "str":
            arg = _Arg("str", _unquote(text[1:-1]), tpos)
        elif kind == "raw":
            arg = _Arg("str", text[1:-1], tpos)
        elif kind == "char":
            arg = _Arg("num", ord(_unquote(text[1:-1])[0]), tpos)
        elif kind == "num":
            t = text.replace("_", "")
            try:
                num: int | float = int(t, 0)
            except ValueError:
                try:
                    num = float(t)
                except ValueError:
                    raise self.fail(pos, f'bad number syntax: "{text}"') from None
            arg = _Arg("num", num, tpos)
        elif kind == "ident":
            if text in ("true", "false"):
                arg = _Arg("bool", text == "true", tpos)
            elif text == "nil":
                arg = _Arg("nil", None, tpos)
            elif text in self.funcs:
                arg = _Arg("ident", text, tpos)
            else:
                raise self.fail(pos, f'function "{text}" not defined')
        elif kind == "op" and text == "(":
            inner = _Pipe(tpos)
            inner.cmds, i = self.commands(toks, i, pos, nested=True)
            if i >= len(toks) or toks[i][1] != ")":
                raise self.fail(pos, "unclosed left paren")
            if not inner.cmds:
                raise self.fail(pos, "missing value for parenthesized pipeline")
            i += 1
            arg = _Arg("pipe", inner, tpos)
        else:
            raise self.fail(pos, f'unexpected "{text}" in operand')
        # a field chain right after a variable or a parenthesized pipeline: $x.A, (..).A
        if arg.kind in ("var", "pipe") and i < len(toks) and toks[i][0] == "field" and \
                toks[i][2] == self._end_of(toks[i - 1]) and toks[i][1] != ".":
            arg.chain = toks[i][1][1:].split(".")
            i += 1
        arg.src = self.src[tpos:self._end_of(toks[i - 1])]
        return arg, i

    @staticmethod
    def _end_of(tok: tuple[str, str, int]) -> int:
        return tok[2] + len(tok[1])


# -- execution ----------------------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Exec:
    def __init__(self, tmpl: Template, root: Any, strict_root: bool, type_name: str) -> None:
        self.tmpl = tmpl
        self.root = root
        self.strict_root = strict_root
        self.type_name = type_name
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []

    def fail(self, node: _Node, where: str, msg: str) -> TemplateError:
        src = self.tmpl.source
        line = src.count("\n", 0, node.pos) + 1
        col = node.pos - (src.rfind("\n", 0, node.pos) + 1)
        return TemplateError(
            f'template parsing error: template: :{line}:{col}: executing "" at <{where}>: {msg}')

    def walk(self, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(go_string(value))
            elif isinstance(node, _Branch):
                self.branch(node, dot)
            elif isinstance(node, _Jump):
                raise _Break() if node.kind == "break" else _Continue()

    def branch(self, node: _Branch, dot: Any) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range_(node, dot)
                return
            value = self.pipe(node.pipe, dot)
            if _truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            else:
                self.walk(node.other, dot)
        finally:
            del self.vars[mark:]

    def range_(self, node: _Branch, dot: Any) -> None:
        decl, node.pipe.decl = node.pipe.decl, []
        try:
            value = self.pipe(node.pipe, dot)
        finally:
            node.pipe.decl = decl
        items: list[tuple[Any, Any]]
        if value is MISSING or value is None:
            items = []
        elif isinstance(value, Mapping):
            items = sorted(value.items(), key=lambda kv: kv[0])
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(n, n) for n in range(value)]
        else:
            raise self.fail(node, node.pipe.src or "range",
                            f"range can't iterate over {go_string(value)}")
        if not items:
            self.walk(node.other, dot)
            return
        mark = len(self.vars)
        for key, elem in items:
            del self.vars[mark:]
            if len(decl) == 1:
                self.vars.append((decl[0], elem))
            elif len(decl) == 2:
                self.vars += [(decl[0], key), (decl[1], elem)]
            try:
                self.walk(node.body, elem)
            except _Continue:
                continue
            except _Break:
                break

    def pipe(self, pipe: _Pipe, dot: Any) -> Any:
        value: Any = MISSING
        final = False
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value, final)
            final = True
        for name in pipe.decl:
            if pipe.assign:
                for i in range(len(self.vars) - 1, -1, -1):
                    if self.vars[i][0] == name:
                        self.vars[i] = (name, value)
                        break
            else:
                self.vars.append((name, value))
        return value

    def command(self, cmd: list[_Arg], dot: Any, final: Any, has_final: bool) -> Any:
        head = cmd[0]
        extra = [final] if has_final else []
        if head.kind == "ident":
            args = [self.arg(a, dot) for a in cmd[1:]] + extra
            fn = self.tmpl.funcs[head.value]
            try:
                return fn(*args)
            except TemplateError:
                raise
            except _FuncError as exc:
                raise self.fail(head, head.value, f"error calling {head.value}: {exc}") \
                    from None
            except TypeError:
                raise self.fail(head, head.value,
                                f"wrong number of args for {head.value}") from None
        if head.kind in ("field", "var", "pipe") and (len(cmd) > 1 or has_final):
            args = [self.arg(a, dot) for a in cmd[1:]] + extra
            return self.arg(head, dot, args)
        if len(cmd) > 1 or has_final:
            raise self.fail(head, head.src, f"can't give argument to non-function {head.src}")
        return self.arg(head, dot)

    def arg(self, a: _Arg, dot: Any, call_args: list[Any] | None = None) -> Any:
        if a.kind == "dot":
            return dot
        if a.kind in ("str", "num", "bool", "nil"):
            return a.value
        if a.kind == "ident":  # a function as an argument: called without arguments
            return self.tmpl.funcs[a.value]()
        if a.kind == "field":
            return self.chain(a, dot, a.chain, call_args, dot is self.root and self.strict_root)
        if a.kind == "var":
            base = next(v for n, v in reversed(self.vars) if n == a.value)
            return self.chain(a, base, a.chain, call_args, base is self.root and self.strict_root)
        assert isinstance(a.value, _Pipe)
        base = self.pipe(a.value, dot)
        return self.chain(a, base, a.chain, call_args, False)

    def chain(self, a: _Arg, value: Any, names: list[str], call_args: list[Any] | None,
              strict: bool) -> Any:
        if not names:
            if call_args:
                raise self.fail(a, a.src, f"can't give argument to non-function {a.src}")
            return value
        for n, name in enumerate(names):
            last = n == len(names) - 1
            value = self.field(a, value, name, strict)
            strict = False
            if callable(value):
                try:
                    value = value(*(call_args or [])) if last else value()
                except TypeError:
                    raise self.fail(a, a.src, f"wrong number of args for {name}") from None
            elif last and call_args:
                raise self.fail(a, a.src, f"{name} has arguments but cannot be invoked as "
                                          "function")
        return value

    def field(self, a: _Arg, recv: Any, name: str, strict: bool) -> Any:
        if recv is MISSING or recv is None:
            return MISSING
        if isinstance(recv, Mapping):
            if name in recv:
                return recv[name]
            if strict or isinstance(recv, Struct):
                typ = self.type_name if strict else "struct"
                raise self.fail(a, a.src, f"can't evaluate field {name} in type {typ}")
            return MISSING
        raise self.fail(a, a.src, f"can't evaluate field {name} in type {_type_name(recv)}")


class _FuncError(Exception):
    pass


# -- functions ----------------------------------------------------------------------------------
def _want_str(v: Any) -> str:
    if not isinstance(v, str):
        raise _FuncError(f"wrong type for value; expected string; got {_type_name(v)}")
    return v


def _want_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise _FuncError(f"wrong type for value; expected int; got {_type_name(v)}")
    return int(v)


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if item is MISSING or item is None:
            raise _FuncError("index of untyped nil")
        if isinstance(item, Mapping):
            item = item.get(k, MISSING)
        elif isinstance(item, (list, tuple, str)):
            i = _want_int(k)
            if not 0 <= i < len(item):
                raise _FuncError(f"index out of range: {i}")
            item = item[i]
        else:
            raise _FuncError(f"can't index item of type {_type_name(item)}")
    return item


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, (list, tuple, str)):
        raise _FuncError(f"can't slice item of type {_type_name(item)}")
    bounds = [_want_int(i) for i in idx]
    if len(bounds) > 2 or any(not 0 <= b <= len(item) for b in bounds):
        raise _FuncError("slice index out of range")
    return item[bounds[0]:bounds[1]] if len(bounds) == 2 else item[bounds[0]:] if bounds else item


def _len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v)
    raise _FuncError(f"len of type {_type_name(v)}")


def _cmp(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        num = (int, float)
        if not ((isinstance(a, num) and isinstance(b, num)) or type(a) is type(b)) or \
                isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise _FuncError("incompatible types for comparison")
        return bool({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op])

    return compare


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in others:
        if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            raise _FuncError("non-comparable types")
        if a == b and (isinstance(a, bool) == isinstance(b, bool)):
            return True
    return False


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_string(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\\u007f", "\\x7f")


def _sprintf(fmt: Any, *args: Any) -> str:
    fmt = _want_str(fmt)
    out: list[str] = []
    n = 0
    pos = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        v = args[n]
        n += 1
        p = int(prec) if prec else (0 if prec == "" else None)
        s = _format_one(verb, v, p, flags)
        if width and len(s) < int(width):
            w = int(width)
            if "-" in flags:
                s = s.ljust(w)
            elif "0" in flags and verb in "dfegxX" and isinstance(v, (int, float)):
                sign = s[0] if s[:1] in "+-" else ""
                s = sign + s[len(sign):].rjust(w - len(sign), "0")
            else:
                s = s.rjust(w)
        out.append(s)
    out.append(fmt[pos:])
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_type_name(a)}={go_string(a)}"
                                           for a in args[n:]) + ")")
    return "".join(out)


def _format_one(verb: str, v: Any, prec: int | None, flags: str) -> str:
    isnum = isinstance(v, (int, float)) and not isinstance(v, bool)
    plus = "+" if "+" in flags else ""
    if verb == "v" or (verb == "s" and not isnum and not isinstance(v, bool)):
        s = go_string(v)
        return s[:prec] if prec is not None and isinstance(v, str) else s
    if verb == "q" and isinstance(v, str):
        return _go_quote(v)
    if verb == "t" and isinstance(v, bool):
        return "true" if v else "false"
    if verb == "d" and isinstance(v, int) and not isinstance(v, bool):
        return format(v, plus + "d")
    if verb in "xX" and isinstance(v, int) and not isinstance(v, bool):
        return format(v, verb.lower() if verb == "x" else "X")
    if verb in "xX" and isinstance(v, str):
        h = v.encode().hex()
        return h if verb == "x" else h.upper()
    if verb in "feEgG" and isnum:
        return format(float(v), f"{plus}.{6 if prec is None else prec}{verb}") \
            if verb in "feE" or prec is not None else _go_float(float(v))
    if verb == "c" and isinstance(v, int):
        return chr(v)
    return f"%!{verb}({_type_name(v)}={go_string(v)})"


def _title(s: Any) -> str:
    s = _want_str(s)
    out, prev = [], " "
    for c in s:
        out.append(c.upper() if not (prev.isalnum() or prev == "_") else c)
        prev = c
    return "".join(out)


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, (list, tuple)):
        raise _FuncError(f"wrong type for value; expected []string; got {_type_name(items)}")
    return _want_str(sep).join(go_string(x) for x in items)


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    text = _want_str(s)
    return " " * _want_int(prefix) + text + " " * _want_int(suffix) if text else text


def _truncate(s: Any, length: Any) -> str:
    text = _want_str(s)
    return text[:max(0, _want_int(length))]


def _html(*args: Any) -> str:
    import html

    return html.escape(_sprint(*args)).replace("&#x27;", "&#39;")


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(*args))


def _call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise _FuncError(f"non-function of type {_type_name(fn)}")
    return fn(*args)


def _and(*args: Any) -> Any:
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _or(*args: Any) -> Any:
    for a in args:
        if _truth(a):
            return a
    return args[-1]


def _split(s: Any, sep: Any) -> list[str]:
    s, sep = _want_str(s), _want_str(sep)
    return list(s) if sep == "" else s.split(sep)


FUNCS: dict[str, Callable[..., Any]] = {
    # Go's
    "and": _and, "or": _or, "not": lambda v: not _truth(v), "len": _len, "index": _index,
    "slice": _slice, "print": _sprint, "printf": _sprintf,
    "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    "eq": _eq, "ne": lambda a, b: not _eq(a, b), "lt": _cmp("lt"), "le": _cmp("le"),
    "gt": _cmp("gt"), "ge": _cmp("ge"), "html": _html,
    "js": lambda *a: json.dumps(_sprint(*a))[1:-1], "urlquery": _urlquery, "call": _call,
    # docker's (templates.basicFunctions)
    "json": to_json, "split": _split, "join": _join, "title": _title,
    "lower": lambda s: _want_str(s).lower(), "upper": lambda s: _want_str(s).upper(),
    "pad": _pad, "truncate": _truncate,
}

# docker's HeaderFunctions: a table's header row keeps the column names as they are
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    **FUNCS,
    "json": lambda v: v, "split": lambda v, _s: v, "join": lambda v, _s: v,
    "title": lambda v: v, "lower": lambda v: v, "upper": lambda v: v,
    "truncate": lambda v, _n: v,
}


class Template:
    """A parsed template; :meth:`execute` renders it for one value."""

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]] | None = None
                 ) -> None:
        self.source = source
        self.funcs = dict(FUNCS if funcs is None else funcs)
        self.nodes = _Parser(source, self.funcs).parse()

    def execute(self, data: Any, *, strict: bool = False, type_name: str = "struct",
                funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        """Render for ``data``. ``strict``: the root is a struct (an unknown field is an
        error naming ``type_name``). ``funcs`` replaces functions of the same names."""
        saved = self.funcs
        if funcs is not None:
            self.funcs = {**self.funcs, **funcs}
        try:
            ex = _Exec(self, data, strict and isinstance(data, Mapping), type_name)
            try:
                ex.walk(self.nodes, data)
            except (_Break, _Continue):
                raise TemplateError("template parsing error: {{break}} or {{continue}} "
                                    "outside {{range}}") from None
            return "".join(ex.out)
        finally:
            self.funcs = saved
