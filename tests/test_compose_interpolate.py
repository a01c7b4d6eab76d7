"""Interpolation (``$VAR``, ``${VAR:-d}``, ... ``$$``), examples and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencontainer.compose.interpolate import InterpolationError, substitute

ENV = {"SET": "value", "EMPTY": "", "NESTED": "n"}


def sub(text: str, env: dict[str, str] | None = None) -> str:
    return substitute(text, (ENV if env is None else env).get)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a${SET}b", "avalueb"),
        ("$SET-x", "value-x"),
        ("${UNSET}", ""),
        ("$UNSET", ""),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${NESTED}}", "n"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a ${SET} b}", "a value b"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: 5$", "cost: 5$"),
        ("$ 1", "$ 1"),
        ("$(cmd)", "$(cmd)"),
        ("${SET?required}", "value"),
        ("${EMPTY?required}", ""),
        ("${UNSET:-}", ""),
        ("${UNSET:-with:colon}", "with:colon"),
        ("${UNSET:-{braces\\}", "{braces\\"),
    ],
)
def test_examples(template: str, expected: str) -> None:
    assert sub(template) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?it is needed}", "required variable UNSET is missing a value: it is needed"),
        ("${EMPTY:?}", "required variable EMPTY"),
        ("${UNSET?}", "required variable UNSET"),
        ("${", "invalid interpolation format"),
        ("${SET", "invalid interpolation format"),
        ("${}", "invalid interpolation format"),
        ("${1abc}", "invalid interpolation format"),
        ("${SET!x}", "invalid interpolation format"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("?", r"\?")):
        sub(template)


def test_missing_callback() -> None:
    missing: list[str] = []
    substitute("$A ${B} ${C:-x} $SET", ENV.get, on_missing=missing.append)
    assert missing == ["A", "B"]


_literal = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=30)
_names = st.from_regex(r"[_a-zA-Z][_a-zA-Z0-9]{0,10}", fullmatch=True)


@given(_literal)
@settings(deadline=None, database=None)
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert sub(text) == text


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None, database=None)
def test_escaped_text_round_trips(text: str) -> None:
    assert sub(text.replace("$", "$$")) == text


@given(_names, _literal, _literal)
@settings(deadline=None, database=None)
def test_set_variable_is_substituted(name: str, value: str, suffix: str) -> None:
    env = {name: value}
    assert sub("${" + name + "}" + suffix.replace("}", ""), env) == value + suffix.replace("}", "")


@given(_names, _literal.filter(lambda s: "}" not in s))
@settings(deadline=None, database=None)
def test_default_used_only_when_unset_or_empty(name: str, default: str) -> None:
    assert sub("${" + name + ":-" + default + "}", {}) == default
    assert sub("${" + name + ":-" + default + "}", {name: ""}) == default
    assert sub("${" + name + "-" + default + "}", {name: ""}) == ""
    assert sub("${" + name + ":-" + default + "}", {name: "v"}) == "v"


@given(st.text(max_size=60))
@settings(max_examples=400, deadline=None, database=None)
def test_never_crashes(text: str) -> None:
    try:
        result = sub(text)
    except InterpolationError:
        return
    assert isinstance(result, str)
