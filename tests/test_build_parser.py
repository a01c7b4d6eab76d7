"""The Dockerfile parser, Docker's variable substitution and .dockerignore rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencontainer.build import dockerfile as df
from opencontainer.build.context import Source, archive_entries, checksum, entry_of
from opencontainer.build.dockerignore import Matcher, parse_patterns
from opencontainer.errors import BuildError

MULTI = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM --platform=linux/amd64 ${BASE} AS build
RUN echo one && \\
  # a comment inside the continuation
  echo two
RUN <<EOT
echo from a heredoc
EOT
COPY --chown=1:2 --chmod=644 a b /dst/
RUN ["/bin/echo", "exec form"]

FROM build
COPY --from=build /x /y
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost
"""


def test_stages_flags_forms_and_continuations() -> None:
    d = df.parse(MULTI)
    assert d.syntax == "docker/dockerfile:1"
    assert [a.rest for a in d.meta_args] == ["BASE=busybox"]
    build, final = d.stages
    assert (build.name, build.base, build.platform) == ("build", "${BASE}", "linux/amd64")
    run1, run2, copy, run3 = build.instructions
    assert run1.rest == "echo one &&   echo two" and run1.line == 4
    assert run2.heredocs[0].content == "echo from a heredoc\n" and run2.heredocs[0].expand
    assert copy.flags == (("chown", "1:2"), ("chmod", "644"))
    assert run3.json == ("/bin/echo", "exec form")
    assert final.base == "build" and final.instructions[0].flag("from") == "build"
    assert d.stage("build") is build and d.stage("1") is final


def test_escape_directive_and_errors_name_file_and_line() -> None:
    d = df.parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert d.escape == "`" and d.stages[0].instructions[0].rest == "echo a   b"
    with pytest.raises(BuildError, match=r"^Dockerfile\.dev:3: unknown instruction: FOO"):
        df.parse("FROM busybox\n\nFOO bar\n", "Dockerfile.dev")
    with pytest.raises(BuildError, match=r"Dockerfile:2: COPY: unknown flag: --nope"):
        df.parse("FROM busybox\nCOPY --nope=1 a b\n")
    with pytest.raises(BuildError, match=r"Dockerfile:1: RUN: .*first instruction must be FROM"):
        df.parse("RUN true\n")
    with pytest.raises(BuildError, match="unterminated heredoc"):
        df.parse("FROM busybox\nRUN <<EOF\necho\n")
    with pytest.raises(BuildError, match="ONBUILD"):
        df.parse("FROM busybox\nONBUILD FROM x\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("$a", ["x"]), ("${a}b", ["xb"]), ("${u:-def}", ["def"]), ("${e:-def}", ["def"]),
    ("${e-def}", [""]), ("${a:+set}", ["set"]), ("${u:+set}end", ["end"]), ("${e+set}", ["set"]),
    ("'$a'", ["$a"]), ('"$a b"', ["x b"]), ("\\$a", ["$a"]), ("a b  c", ["a", "b", "c"]),
    ("${u:-${a}}", ["x"]), ("$", ["$"]),
])
def test_substitution(text: str, expected: list[str]) -> None:
    assert df.Expander({"a": "x", "e": ""}).words(text) == expected


def test_substitution_errors() -> None:
    with pytest.raises(BuildError, match="u: need it"):
        df.Expander({}).word("${u:?need it}")
    with pytest.raises(BuildError, match="double-quote"):
        df.Expander({}).word('"open')


def test_key_values_forms() -> None:
    ex = df.Expander({"v": "1"})
    env = df.parse('FROM x\nENV A="a b" B=$v C=\'$v\'\nENV LEGACY some value\nARG N\n')
    i1, i2, i3 = env.stages[0].instructions
    assert df.key_values(i1, ex) == [("A", "a b"), ("B", "1"), ("C", "$v")]
    assert df.key_values(i2, ex) == [("LEGACY", "some value")]
    assert df.key_values(i3, ex) == [("N", "\0")]


def test_durations() -> None:
    ins = df.parse("FROM x\nUSER a\n").stages[0].instructions[0]
    assert df.duration("1m30s", ins) == 90 * 10**9
    assert df.duration("500ms", ins) == 5 * 10**8
    with pytest.raises(BuildError):
        df.duration("5 parsecs", ins)


def test_dockerignore_rules(tmp_path: Path) -> None:
    m = Matcher(parse_patterns([
        "# comment", "*.log", "!keep.log", "node_modules", "**/*.tmp", "docs/*/draft",
        "/secret", "build", "!build/out",
    ]))
    assert m.excluded("a.log") and not m.excluded("keep.log")
    assert not m.excluded("sub/a.log")  # '*' does not cross '/'
    assert m.excluded("node_modules/x/y.js")
    assert m.excluded("deep/er/x.tmp") and m.excluded("x.tmp")
    assert m.excluded("docs/v1/draft") and not m.excluded("docs/v1/final")
    assert m.excluded("secret") and not m.excluded("src/secret")
    assert m.excluded("build/tmp") and not m.excluded("build/out/bin")
    for rel in ("build/tmp/x", "build/out/bin", "keep.log", "a.log", "src/main.c"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    walked = m.walk(tmp_path)
    assert "build/out/bin" in walked and "build/tmp/x" not in walked
    assert "keep.log" in walked and "a.log" not in walked and "src/main.c" in walked


def test_context_globs_checksums_and_archives(tmp_path: Path) -> None:
    import tarfile

    (tmp_path / ".dockerignore").write_text("*.secret\n")
    for name in ("a.txt", "b.txt", "c.secret"):
        (tmp_path / name).write_text(name)
    src = Source.context(tmp_path)
    assert src.expand("*.txt") == ["a.txt", "b.txt"]
    assert src.expand("./a.txt") == ["a.txt"]
    with pytest.raises(BuildError, match="not found"):
        src.expand("c.secret")
    with pytest.raises(BuildError, match="matches nothing"):
        src.expand("*.none")
    e = entry_of(tmp_path / "a.txt", "app/a.txt", uid=1, gid=2, chmod=0o600)
    assert e is not None and (e.uid, e.gid, e.mode) == (1, 2, 0o600)
    before = checksum([e])
    (tmp_path / "a.txt").write_text("changed")
    assert checksum([e]) != before
    with tarfile.open(tmp_path / "t.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "b.txt", arcname="inner/b.txt")
    found = archive_entries(tmp_path / "t.tar.gz", "/opt", uid=None, gid=None)
    assert found is not None and [x.path for x in found] == ["opt/inner/b.txt"]
    assert archive_entries(tmp_path / "b.txt", "/opt", uid=None, gid=None) is None
