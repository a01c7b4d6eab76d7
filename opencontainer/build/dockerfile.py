"""The Dockerfile parser: directives, continuations, heredocs, instructions, stages, and
Docker's variable substitution.

:func:`parse` turns the text into :class:`Dockerfile` (meta ``ARG``s before the first ``FROM``,
then :class:`Stage` s of :class:`Instruction` s). Variables are *not* substituted here: the
executor substitutes each instruction's words with :class:`Expander` when it runs the step, as
Docker does (an ``ARG`` or ``ENV`` above changes what comes below).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

import attrs

from ..errors import BuildError

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
    "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
})
# the instructions whose arguments the builder substitutes (RUN, CMD and ENTRYPOINT: the shell)
SUBSTITUTED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
                         "VOLUME", "WORKDIR", "ARG", "ONBUILD"})
FLAGS: Mapping[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"mount", "network", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "keep-git-dir", "checksum", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval",
                              "retries"}),
}
JSON_FORMS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
HEREDOC_FORMS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PLATFORM_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM",
                 "BUILDOS", "BUILDARCH", "BUILDVARIANT")
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@attrs.frozen
class Heredoc:
    name: str
    content: str
    expand: bool  # an unquoted delimiter: variables are expanded in the content
    chomp: bool  # ``<<-``: leading tabs are stripped


@attrs.frozen
class Instruction:
    """One instruction: ``cmd`` upper-case, ``flags`` the leading ``--name=value`` options (in
    order; a name may repeat), ``rest`` the raw text after them, ``json`` its exec form (None:
    shell form), ``heredocs`` the here-documents it opened; ``line`` (1-based) and ``file``
    for errors; ``original`` the logical line as written."""

    cmd: str
    rest: str
    line: int
    file: str
    original: str
    flags: tuple[tuple[str, str], ...] = ()
    json: tuple[str, ...] | None = None
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str, default: str | None = None) -> str | None:
        found = [v for k, v in self.flags if k == name]
        return found[-1] if found else default

    def error(self, message: str) -> BuildError:
        return BuildError(f"{self.file}:{self.line}: {self.cmd}: {message}")

    def __str__(self) -> str:
        return self.original


@attrs.frozen
class Stage:
    index: int
    base: str  # the FROM image text (variables not substituted yet)
    name: str | None
    platform: str | None
    from_: Instruction
    instructions: tuple[Instruction, ...] = ()


@attrs.frozen
class Dockerfile:
    file: str
    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    escape: str = "\\"
    syntax: str | None = None

    def stage(self, ref: str) -> Stage | None:
        """The stage called ``ref`` (case-insensitive) or with index ``ref``."""
        for st in self.stages:
            if st.name is not None and st.name == ref.lower():
                return st
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


# -- variable substitution -------------------------------------------------------------------
class Expander:
    """Docker's shell-word processing (``shell.Lex``): quotes removed, ``$v``, ``${v}``,
    ``${v:-word}``, ``${v-word}``, ``${v:+word}``, ``${v+word}``, ``${v:?msg}`` expanded from
    ``env``; the escape character escapes the next character (inside double quotes only
    ``$``, ``"``, the escape character itself and a newline)."""

    def __init__(self, env: Mapping[str, str], escape: str = "\\",
                 on_error: Callable[[str], BuildError] | None = None) -> None:
        self.env = env
        self.escape = escape
        self.on_error = on_error or BuildError

    def word(self, text: str) -> str:
        """One word: quotes removed, variables expanded (whitespace kept)."""
        words = self._process(text, split=False)
        return words[0] if words else ""

    def words(self, text: str) -> list[str]:
        """Split on unquoted whitespace; each word quote-removed and expanded."""
        return self._process(text, split=True)

    def _process(self, text: str, *, split: bool) -> list[str]:
        out: list[str] = []
        cur: list[str] = []
        started = False
        i, n, esc = 0, len(text), self.escape
        while i < n:
            c = text[i]
            if split and c in " \t\n\r":
                if started:
                    out.append("".join(cur))
                    cur, started = [], False
                i += 1
                continue
            started = True
            if c == esc:
                if i + 1 < n:
                    cur.append(text[i + 1])
                    i += 2
                else:
                    cur.append(c)
                    i += 1
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise self.on_error("unexpected end of statement while looking for "
                                        "matching single-quote")
                cur.append(text[i + 1:end])
                i = end + 1
            elif c == '"':
                i += 1
                while True:
                    if i >= n:
                        raise self.on_error("unexpected end of statement while looking for "
                                            "matching double-quote")
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == esc and i + 1 < n and text[i + 1] in ('"', "$", esc, "\n"):
                        cur.append(text[i + 1])
                        i += 2
                    elif c == "$":
                        value, i = self._dollar(text, i)
                        cur.append(value)
                    else:
                        cur.append(c)
                        i += 1
            elif c == "$":
                value, i = self._dollar(text, i)
                cur.append(value)
            else:
                cur.append(c)
                i += 1
        if started or not split:
            out.append("".join(cur))
        return out

    def _dollar(self, text: str, i: int) -> tuple[str, int]:
        """Expand the ``$…`` at ``text[i]``; (value, index after it)."""
        n = len(text)
        if i + 1 >= n:
            return "$", i + 1
        c = text[i + 1]
        if c == "{":
            return self._braced(text, i + 2)
        m = _NAME.match(text, i + 1)
        if m:
            return self.env.get(m.group(0), ""), m.end()
        if c.isdigit() or c in "*#@!?-$":  # positional / special parameters: empty
            return "", i + 2
        return "$", i + 1

    def _braced(self, text: str, i: int) -> tuple[str, int]:
        m = _NAME.match(text, i)
        if not m:
            raise self.on_error(f"bad substitution in {text!r}")
        name = m.group(0)
        i = m.end()
        if i < len(text) and text[i] == "}":
            return self.env.get(name, ""), i + 1
        op_m = re.compile(r":?[-+?]").match(text, i)
        if not op_m:
            raise self.on_error(f"unsupported modifier in ${{{name}…}} of {text!r}")
        op = op_m.group(0)
        i = op_m.end()
        # the word runs to the matching brace (nested ${…} allowed)
        depth, j = 1, i
        while j < len(text):
            if text[j] == self.escape:
                j += 2
                continue
            if text[j:j + 2] == "${":
                depth += 1
                j += 2
                continue
            if text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if depth:
            raise self.on_error(f"missing '}}' in {text!r}")
        word = self.word(text[i:j])
        value = self.env.get(name)
        colon = op.startswith(":")
        unset = value is None or (colon and value == "")
        kind = op[-1]
        if kind == "-":
            result = word if unset else (value or "")
        elif kind == "+":
            result = "" if unset else word
        else:  # "?"
            if unset:
                raise self.on_error(f"{name}: {word or 'is not allowed to be unset'}")
            result = value or ""
        return result, j + 1


# -- parsing -----------------------------------------------------------------------------------
def _directives(lines: Sequence[str]) -> tuple[dict[str, str], int]:
    """Parser directives at the top (``# syntax=``, ``# escape=``, ``# check=``); (values,
    index of the first line after them)."""
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _DIRECTIVE.fullmatch(line.rstrip("\r\n")) if line.lstrip().startswith("#") else None
        if m is None:
            return found, i
        key = m.group(1).lower()
        if key in found:  # a repeated directive is an error in Docker; a comment for us
            return found, i
        found[key] = m.group(2)
    return found, len(lines)


def _split_json(rest: str) -> tuple[str, ...] | None:
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _flags(cmd: str, rest: str, err: Callable[[str], BuildError]) -> tuple[
        tuple[tuple[str, str], ...], str]:
    allowed = FLAGS.get(cmd)
    if allowed is None:
        return (), rest
    flags: list[tuple[str, str]] = []
    text = rest.lstrip()
    while text.startswith("--"):
        m = re.match(r"--([a-zA-Z][a-zA-Z0-9-]*)(?:=((?:\"[^\"]*\"|'[^']*'|\S)*))?(?:\s+|$)", text)
        if not m:
            break
        name = m.group(1).lower()
        if name not in allowed:
            raise err(f"unknown flag: --{name}")
        value = m.group(2)
        if value is None:
            value = "true"
        flags.append((name, value))
        text = text[m.end():]
    return tuple(flags), text


def parse(text: str, file: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; :class:`BuildError` names ``file``, the line and the instruction."""
    lines = text.splitlines()
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise BuildError(f"{file}:1: invalid escape token {escape!r}: it must be \\ or `")
    instructions: list[Instruction] = []
    i = start
    n = len(lines)
    while i < n:
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i + 1
        parts: list[str] = []
        line = raw
        while True:
            body = line.rstrip()
            if body.endswith(escape):
                parts.append(body[:-1])
                i += 1
                # comment and empty lines inside a continuation are skipped
                while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                line = lines[i]
                continue
            parts.append(line)
            i += 1
            break
        logical = "".join(parts).strip()
        m = re.match(r"(\S+)\s*(.*)", logical, re.S)
        assert m is not None
        word, rest = m.group(1), m.group(2)
        cmd = word.upper()

        def err(message: str, cmd: str = cmd, line: int = first) -> BuildError:
            return BuildError(f"{file}:{line}: {cmd}: {message}")

        if cmd not in INSTRUCTIONS:
            raise BuildError(f"{file}:{first}: unknown instruction: {word}")
        flags, rest = _flags(cmd, rest, err)
        heredocs: list[Heredoc] = []
        if cmd in HEREDOC_FORMS and _split_json(rest) is None:
            for hm in _HEREDOC.finditer(rest):
                name, chomp = hm.group(3), hm.group(1) == "-"
                doc: list[str] = []
                while True:
                    if i >= n:
                        raise err(f"unterminated heredoc {name}")
                    cur = lines[i]
                    i += 1
                    if (cur.lstrip("\t") if chomp else cur) == name:
                        break
                    doc.append(cur.lstrip("\t") if chomp else cur)
                content = "\n".join(doc) + ("\n" if doc else "")
                heredocs.append(Heredoc(name, content, expand=not hm.group(2), chomp=chomp))
        json_form = _split_json(rest) if cmd in JSON_FORMS else None
        if cmd == "SHELL" and json_form is None:
            raise err("SHELL requires the arguments to be in JSON form")
        if cmd in ("COPY", "ADD") and json_form is None and not rest.strip():
            raise err(f"{cmd} requires at least two arguments")
        instructions.append(Instruction(cmd=cmd, rest=rest, line=first, file=file,
                                        original=logical, flags=flags, json=json_form,
                                        heredocs=tuple(heredocs)))
    return _stages(instructions, file, escape, directives.get("syntax"))


def _stages(instructions: Sequence[Instruction], file: str, escape: str,
            syntax: str | None) -> Dockerfile:
    meta: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    from_: Instruction | None = None

    def close() -> None:
        if from_ is None:
            return
        words = from_.rest.split()
        base = words[0] if words else ""
        name = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2].lower()
            if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
                raise from_.error(f"invalid name for build stage: {words[2]!r}")
        elif len(words) != 1:
            raise from_.error("FROM requires either one argument, or three: FROM <image> "
                              "[AS <name>]")
        stages.append(Stage(index=len(stages), base=base, name=name,
                            platform=from_.flag("platform"), from_=from_,
                            instructions=tuple(current)))

    for ins in instructions:
        if ins.cmd == "FROM":
            close()
            from_, current = ins, []
        elif from_ is None:
            if ins.cmd != "ARG":
                raise ins.error("no build stage in current context: the first instruction "
                                "must be FROM (or ARG before it)")
            meta.append(ins)
        else:
            if ins.cmd == "ONBUILD":
                inner = ins.rest.split(None, 1)
                if not inner:
                    raise ins.error("ONBUILD requires an instruction")
                what = inner[0].upper()
                if what in ("ONBUILD", "FROM", "MAINTAINER"):
                    raise ins.error(f"{what} isn't allowed as an ONBUILD trigger")
            current.append(ins)
    close()
    if not stages:
        raise BuildError(f"{file}: the Dockerfile has no FROM instruction")
    names = [s.name for s in stages if s.name]
    for s in stages:
        if s.name and names.count(s.name) > 1:
            raise s.from_.error(f"duplicate stage name {s.name!r}")
    return Dockerfile(file=file, meta_args=tuple(meta), stages=tuple(stages), escape=escape,
                      syntax=syntax)


# -- helpers for the executor ------------------------------------------------------------------
def key_values(ins: Instruction, ex: Expander) -> list[tuple[str, str]]:
    """ENV / LABEL / ARG arguments: ``k=v …`` (each word quote-removed and expanded), or the
    legacy ``ENV k v w`` form (ENV and LABEL only)."""
    rest = ins.rest.strip()
    if not rest:
        raise ins.error(f"{ins.cmd} requires at least one argument")
    first = rest.split(None, 1)[0]
    if "=" not in first and ins.cmd in ("ENV", "LABEL"):
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise ins.error(f"{ins.cmd} names {first} but no value")
        return [(parts[0], ex.word(parts[1].strip()))]
    out: list[tuple[str, str]] = []
    for raw in _raw_words(rest, ex.escape):
        key, eq, value = raw.partition("=")
        key = ex.word(key)
        if not key:
            raise ins.error(f"invalid {ins.cmd} argument {raw!r}")
        if not eq:
            if ins.cmd != "ARG":
                raise ins.error(f"{ins.cmd} names {key} without '=value'")
            out.append((key, "\0"))  # an ARG without a default
            continue
        out.append((key, ex.word(value)))
    return out


def _raw_words(text: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes (for ``k="a b"`` pairs)."""
    out: list[str] = []
    cur: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and i + 1 < len(text) and quote != "'":
            cur.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
            cur.append(c)
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c.isspace():
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return out


def duration(text: str, ins: Instruction) -> int:
    """A HEALTHCHECK duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    units = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000}
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ins.error(f"invalid duration {text!r}")
    return int(total)


__all__ = [
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "Dockerfile",
    "Expander",
    "Heredoc",
    "Instruction",
    "Stage",
    "duration",
    "key_values",
    "parse",
]
