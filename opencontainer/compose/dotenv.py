"""``.env`` and ``env_file`` parsing, exactly as compose-go's ``dotenv`` package does it.

``VAR[=[VAL]]`` statements; ``#`` comment lines; optional ``export`` prefix; spaces around ``=``;
``:`` also separates key and value (YAML style); unquoted values end at the line end, an inline
comment needs a preceding space; ``"..."`` supports escapes and is interpolated, ``'...'`` is
literal (``\\'`` escapes the quote); a bare ``VAR`` takes its value from the lookup and is absent
when unset; a UTF-8 BOM is skipped; keys that start with a digit are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from .interpolate import InterpolationError, substitute

Lookup = Callable[[str], "str | None"]

_SPACE = "\t\v\f\r \x85\xa0"
_ESCAPES = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-7]{0,3})")
_SIMPLE = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    '"': '"', "\\": "\\",
}
_EXPORT = re.compile(r"^export\s+")


class DotenvError(ValueError):
    """An env file that does not parse. ``str()`` starts with ``line N:``."""


def _no_lookup(_name: str) -> str | None:
    return None


def _valid_key_char(c: str) -> bool:
    return c in "_.-[]" or c.isalpha() or c.isdigit()


def _expand_escapes(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        text = m.group(0)
        if text == "\\$":
            return "$$"
        body = text[1:]
        if body[0] == "0":
            digits = body[1:]
            return chr(int(digits, 8)) if digits else "\0"
        return _SIMPLE.get(body, text)

    return _ESCAPES.sub(repl, value)


def parse_dotenv(text: str, lookup: Lookup | None = None) -> dict[str, str]:
    """Parse the content of an env file. ``lookup`` resolves bare keys and interpolation
    (it wins over values defined earlier in the file, as in compose-go)."""
    look = lookup or _no_lookup
    if text.startswith("\ufeff"):
        text = text[1:]
    out: dict[str, str] = {}

    def resolve(name: str) -> str | None:
        v = look(name)
        if v is not None:
            return v
        return out.get(name)

    def expand(value: str, line: int) -> str:
        try:
            return substitute(value, resolve)
        except InterpolationError as exc:
            raise DotenvError(f"line {line}: {exc}") from None

    pos = 0
    n = len(text)
    while True:
        # statement start: skip whitespace and comment lines
        while True:
            while pos < n and text[pos].isspace():
                pos += 1
            if pos >= n:
                return {k: v for k, v in out.items() if not k.lstrip()[:1].isdigit()}
            if text[pos] == "#":
                nl = text.find("\n", pos)
                if nl < 0:
                    return {k: v for k, v in out.items() if not k.lstrip()[:1].isdigit()}
                pos = nl
                continue
            break
        line = text.count("\n", 0, pos) + 1
        src = text[pos:]
        m = _EXPORT.match(src)
        skip = m.end() if m else 0
        src = src[skip:]
        # locate the key
        key_end = -1
        terminator = ""
        for i, c in enumerate(src):
            if c in _SPACE:
                continue
            if c in "=:\n":
                key_end = i
                terminator = c
                break
            if _valid_key_char(c):
                continue
            first = src.split("\n", 1)[0]
            raise DotenvError(
                f"line {line}: unexpected character {c!r} in variable name {first!r}"
            )
        if key_end < 0:  # a bare key at the end of the file
            key = src.rstrip()
            if " " in key or "\t" in key:
                raise DotenvError(f"line {line}: key cannot contain a space")
            value = look(key)
            if value is not None:
                out[key] = value
            pos = n
            continue
        key = src[:key_end].rstrip()
        if " " in key:
            raise DotenvError(f"line {line}: key cannot contain a space")
        consumed = pos + skip + key_end + 1
        if terminator == "\n":
            value = look(key)
            if value is not None:
                out[key] = value
            pos = consumed
            continue
        # the value
        while consumed < n and text[consumed] in _SPACE:
            consumed += 1
        rest = text[consumed:]
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            chars: list[str] = []
            escaped = False
            end = -1
            for i in range(1, len(rest)):
                c = rest[i]
                if escaped:
                    escaped = False
                    if c != quote:
                        chars.append("\\")
                    chars.append(c)
                    continue
                if c == "\\":
                    escaped = True
                elif c == quote:
                    end = i
                    break
                else:
                    chars.append(c)
            if end < 0:
                first = rest.split("\n", 1)[0]
                raise DotenvError(f"line {line}: unterminated quoted value {first}")
            value = "".join(chars)
            if quote == '"':
                value = expand(_expand_escapes(value), line)
            out[key] = value
            pos = consumed + end + 1
            continue
        nl = rest.find("\n")
        raw = rest if nl < 0 else rest[:nl]
        raw = raw.split(" #", 1)[0].rstrip()
        out[key] = expand(raw, line)
        pos = n if nl < 0 else consumed + nl + 1


def parse_raw(text: str) -> dict[str, str]:
    """``format: raw``: ``KEY=VALUE`` lines, values taken verbatim."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value
    return out


def read_dotenv(
    path: Path, lookup: Lookup | None = None, *, fmt: str | None = None
) -> dict[str, str]:
    """Read and parse an env file. OSError/UnicodeDecodeError/DotenvError propagate."""
    text = path.read_bytes().decode("utf-8")
    if fmt == "raw":
        return parse_raw(text)
    return parse_dotenv(text, lookup)


def lookup_from(*mappings: Mapping[str, str]) -> Lookup:
    """A lookup trying each mapping in turn."""

    def look(name: str) -> str | None:
        for m in mappings:
            v = m.get(name)
            if v is not None:
                return v
        return None

    return look
