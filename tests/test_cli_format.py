"""The --format engine: Go's text/template as docker uses it, and docker's table layout."""

from __future__ import annotations

from typing import Any

import pytest

from opencontainer.cli.format import render, render_one, tabwrite
from opencontainer.cli.gotemplate import Struct, Template, TemplateError

DATA: dict[str, Any] = {
    "Name": "Web-1",
    "Image": "debian:bookworm",
    "Empty": "",
    "N": 3,
    "F": 1.5,
    "Big": 1e6,
    "Mid": 123456.0,
    "Yes": True,
    "Nil": None,
    "L": ["a", "b"],
    "Nums": [1, 2, 3],
    "M": {"b": 1, "a": "x"},
    "Config": {"Labels": {"com.example": "yes"}, "Env": ["A=1", "B=2"]},
    "S": Struct(Status="running", Pid=42),
    "Label": lambda key: {"com.example": "yes"}.get(key, ""),
    "Rows": [{"A": "z"}],
}

CASES: list[tuple[str, str]] = [
    ("{{.Name}}", "Web-1"),
    ("{{ .Name }}", "Web-1"),
    ("{{.Config.Labels}}", "map[com.example:yes]"),
    ('{{index .Config.Labels "com.example"}}', "yes"),
    ("{{.Config.Nope}}", "<no value>"),
    ("{{.Config.Nope.Deeper}}", "<no value>"),
    ('{{index .M "nope"}}', "<no value>"),
    ("{{.S.Status}} {{.S}}", "running {running 42}"),
    ("{{json .M}}", '{"a":"x","b":1}'),
    ("{{json .S}}", '{"Status":"running","Pid":42}'),
    ("{{json .L}} {{json .Nil}} {{json .Big}}", '["a","b"] null 1000000'),
    ('{{json "<&>"}}', '"<&>"'),
    ("{{.Yes}} {{.N}} {{.F}} {{.Big}} {{.Mid}} {{.Nil}}", "true 3 1.5 1e+06 123456 <nil>"),
    ("{{.L}} {{.Nums}}", "[a b] [1 2 3]"),
    ("{{range .L}}<{{.}}>{{end}}", "<a><b>"),
    ("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", "0=a 1=b "),
    ("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", "a=x;b=1;"),
    ("{{range .Config.Nope}}x{{else}}none{{end}}{{range .L}}{{else}}-{{end}}", "none"),
    ("{{range .Nums}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", "13"),
    ("{{range .Nums}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}", "1"),
    ("{{range .Config.Env}}{{println .}}{{end}}", "A=1\nB=2\n"),
    ("{{if .Empty}}y{{else if .N}}n={{.N}}{{else}}z{{end}}", "n=3"),
    ("{{if not .Yes}}y{{else}}n{{end}}", "n"),
    ('{{if eq .S.Status "exited" "running"}}up{{end}}', "up"),
    ("{{if and .Yes .N}}both{{end}}{{if or .Empty .Nil}}x{{else}}neither{{end}}", "bothneither"),
    ("{{if lt .N 4}}lt{{end}} {{if ge .F 1.5}}ge{{end}} {{ne .N 3}}", "lt ge false"),
    ("{{with .S}}{{.Pid}}{{end}}{{with .Empty}}x{{else}}-{{end}}", "42-"),
    ('{{printf "%s:%d" .Name .N}}', "Web-1:3"),
    ('{{printf "%-6s|%6s|%05d|%.2f|%q|%v|%t|%x" "ab" "cd" 42 3.14159 "q" .L true 255}}',
     'ab    |    cd|00042|3.14|"q"|[a b]|true|ff'),
    ('{{printf "%.3s" .Image}}', "deb"),
    ('{{printf "%d"}}|{{printf "%d" "x"}}|{{printf "%s" 1}}',
     "%!d(MISSING)|%!d(string=x)|%!s(int=1)"),
    ("{{lower .Name}} {{upper .Name}} {{.Name | lower}}", "web-1 WEB-1 web-1"),
    ('{{title "hello big-world"}}', "Hello Big-World"),
    ('{{join .L ", "}}', "a, b"),
    ('{{split .Image ":"}} {{index (split .Image ":") 1}}', "[debian bookworm] bookworm"),
    ("{{truncate .Image 6}}|{{truncate .Name 99}}", "debian|Web-1"),
    ("{{pad .Name 1 2}}|{{pad .Empty 1 2}}|", " Web-1  ||"),
    ("{{len .L}} {{len .Name}} {{len .M}}", "2 5 2"),
    ("{{slice .Name 0 3}} {{slice .Nums 1}}", "Web [2 3]"),
    ('{{print "a" 1 2 "b"}}|{{println "a" 1}}', "a1 2b|a 1\n"),
    ('{{.Label "com.example"}}|{{.Label "other"}}|', "yes||"),
    ("{{(index .Rows 0).A}}", "z"),
    ("{{$x := .N}}{{$x}}{{$x = 5}}{{$x}}{{$.Name}}", "35Web-1"),
    ("{{range .L}}{{$.N}}{{end}}", "33"),
    ("a  {{- .N -}}  b", "a3b"),
    ("a {{/* a comment */}}b{{- /* trimmed */ -}} c", "a bc"),
    ('{{"tab\\there"}}{{`raw\\t`}}', "tab\there" + "raw\\t"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{.Nums | len | printf \"%d items\"}}", "3 items"),
    ("{{1.5}} {{-2}} {{0x10}} {{true}} {{nil}}", "1.5 -2 16 true <nil>"),
]


@pytest.mark.parametrize(("template", "expected"), CASES)
def test_template_renders_as_go(template: str, expected: str) -> None:
    assert Template(template).execute(DATA) == expected


ERRORS: list[tuple[str, str]] = [
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in '
                  "type ContainerContext"),
    ("x\n{{.S.Nope}}", "template: :2:2: executing \"\" at <.S.Nope>: can't evaluate field "
                       "Nope in type struct"),
    ("{{.Name.X}}", "can't evaluate field X in type string"),
    ("{{.Name", "template: :1: unclosed action"),
    ("{{nope .Name}}", 'template: :1: function "nope" not defined'),
    ("{{if .N}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{$y}}", 'undefined variable "$y"'),
    ("{{}}", "missing value for command"),
    ("{{lower .N}}", "wrong type for value; expected string; got int"),
    ("{{index .L 5}}", "index out of range: 5"),
    ("{{.Name 1}}", "Name has arguments but cannot be invoked as function"),
    ("{{.N | .Name}}", "Name has arguments but cannot be invoked as function"),
    ("{{\"x\" 1}}", "can't give argument to non-function"),
    ("{{range .Name}}{{end}}", "range can't iterate over Web-1"),
    ("{{lt .N \"a\"}}", "incompatible types for comparison"),
    ("{{define \"x\"}}{{end}}", "is not supported"),
]


@pytest.mark.parametrize(("template", "message"), ERRORS)
def test_template_errors_are_worded_as_go(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        Template(template).execute(DATA, strict=True, type_name="ContainerContext")
    text = str(err.value)
    assert text.startswith("template parsing error: template: :")
    assert message in text
    assert "\n" not in text.rstrip()


def test_error_exit_status_is_docker_s() -> None:
    assert TemplateError("x").exit_code == 1


ROWS = [
    {"ID": "0123456789ab", "Image": "busybox", "Names": "web", "Status": "Up 2 seconds"},
    {"ID": "ba9876543210", "Image": "debian:bookworm-slim", "Names": "db",
     "Status": "Exited (0) 3 minutes ago"},
]
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Names": "NAMES", "Status": "STATUS"}
TABLE = "{{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}"


def test_default_table_is_aligned_as_docker_s() -> None:
    out = render(None, ROWS, table=TABLE, headers=HEADERS)
    assert out == (
        "CONTAINER ID   IMAGE                  STATUS                     NAMES\n"
        "0123456789ab   busybox                Up 2 seconds               web\n"
        "ba9876543210   debian:bookworm-slim   Exited (0) 3 minutes ago   db\n"
    )
    assert render("table", ROWS, table=TABLE, headers=HEADERS) == out


def test_custom_table_uses_literal_backslash_t_and_minimum_width() -> None:
    out = render("table {{.Names}}\\t{{upper .Image}}", ROWS, table=TABLE, headers=HEADERS)
    # header functions leave the titles alone; a column is at least 10 wide
    assert out.splitlines() == ["NAMES     IMAGE", "web       BUSYBOX",
                                "db        DEBIAN:BOOKWORM-SLIM"]


def test_table_without_rows_prints_the_header() -> None:
    assert render("table {{.Names}}\\t{{.Other}}", [], table=TABLE,
                  headers=HEADERS) == "NAMES     OTHER\n"


def test_plain_template_and_json() -> None:
    assert render("{{.Names}}", ROWS, table=TABLE, headers=HEADERS) == "web\ndb\n"
    assert render("{{.Names}}\\t{{.ID}}", ROWS[:1], table=TABLE,
                  headers=HEADERS) == "web\t0123456789ab\n"
    out = render("json", ROWS[:1], table=TABLE, headers=HEADERS)
    assert out == ('{"ID":"0123456789ab","Image":"busybox","Names":"web",'
                   '"Status":"Up 2 seconds"}\n')


def test_unknown_field_in_a_listing_is_an_error() -> None:
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type Ctx"):
        render("{{.Nope}}", ROWS, table=TABLE, headers=HEADERS, type_name="Ctx")
    # not strict (inspect): an unknown key is <no value>
    assert render_one("{{.Nope}}", ROWS[0], strict=False) == "<no value>\n"


def test_tabwriter_blocks() -> None:
    # a line without tabs ends a column block; the last cell of a line is not padded
    assert tabwrite("a\tb\nccc\td\nplain\nxxxxxxxxxxxxx\ty\n") == (
        "a         b\nccc       d\nplain\nxxxxxxxxxxxxx   y\n")
