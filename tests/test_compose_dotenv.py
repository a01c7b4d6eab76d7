"""``.env`` parsing exactly as compose-go: every case of compose-go's dotenv tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from opencontainer.compose.dotenv import DotenvError, parse_dotenv, parse_raw, read_dotenv

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OPENCONTAINER_SHARED") or REPO.parent / "shared")
CORPUS = SHARED / "compose-corpus"
EXPECTED = CORPUS / "compose-go" / "dotenv-expected.json"


def _cases() -> list[dict[str, Any]]:
    if not EXPECTED.is_file():
        return []
    return list(json.loads(EXPECTED.read_text())["cases"])


CASES = _cases()


@pytest.mark.skipif(not CASES, reason="shared compose corpus not found")
def test_there_are_cases() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[c["test"] for c in CASES])
def test_compose_go_dotenv_case(case: dict[str, Any]) -> None:
    path = CORPUS / case["file"]
    lookup = dict(case["lookup_env"]).get
    if case["expected_error_contains"]:
        with pytest.raises(DotenvError) as info:
            read_dotenv(path, lookup)
        assert case["expected_error_contains"] in str(info.value)
        return
    got = read_dotenv(path, lookup)
    for key, value in case["expected"].items():
        assert got.get(key) == value, key
    if case["exact_key_set"]:
        assert set(got) == set(case["expected"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\n", {"A": "1"}),
        ("export A=1\n", {"A": "1"}),
        ("A = spaced value  \n", {"A": "spaced value"}),
        ("A=val # comment\n", {"A": "val"}),
        ("A=val#nocomment\n", {"A": "val#nocomment"}),
        ("A='single $X'\n", {"A": "single $X"}),
        ('A="double $X"\n', {"A": "double x"}),
        ('A="tab\\tnew\\nquote\\" dollar\\$X"\n', {"A": 'tab\tnew\nquote" dollar$X'}),
        ("A=\n", {"A": ""}),
        ("X\nY\n", {"X": "x"}),
        ("# only a comment\n\n   \n", {}),
        ("A: yaml style\n", {"A": "yaml style"}),
        ("A=${X:-d}${NOPE:-d2}\n", {"A": "xd2"}),
        ("A=1\nB=${A}2\n", {"A": "1", "B": "12"}),
        ("\ufeffA=bom\n", {"A": "bom"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("A='multi\nline'\n", {"A": "multi\nline"}),
        ("1A=ignored\nB=ok", {"B": "ok"}),
        ("LAST", {}),
        ("A=$$X", {"A": "$X"}),
    ],
)
def test_dotenv_syntax(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text, {"X": "x"}.get) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A B=1\n", "line 1: key cannot contain a space"),
        ("OK=1\nA'B=1\n", "line 2: unexpected character"),
        ('A="never closed\n', "line 1: unterminated quoted value"),
        ("A=${X:?must be set}\n", "line 1: required variable X"),
    ],
)
def test_dotenv_errors(text: str, message: str) -> None:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text)
    assert message in str(info.value)


def test_raw_format() -> None:
    assert parse_raw("A=\"q\" $X # c\n#c\nB=2\n") == {"A": '"q" $X # c', "B": "2"}
