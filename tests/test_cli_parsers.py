"""Every command line parser refuses abbreviated options (argparse's prefix matching would
turn ``--attach`` into ``--attach-foreground``), and a command line the parser refuses exits
125, as docker does."""

from __future__ import annotations

import argparse
import ast
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from opencontainer.cli import main as cli
from opencontainer.cli.main import CliContext, main

CLI_DIR = Path(cli.__file__).parent


def all_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The global parser and every command's parser, with their subparsers (recursively)."""
    tables: list[tuple[str, cli.CommandTable, bool]] = [
        ("opencontainer", {**cli.CONTAINER_COMMANDS, **cli.IMAGE_COMMANDS, **cli.GROUP_COMMANDS,
                           **cli.MORE_CONTAINER_COMMANDS,
                           **cli.OTHER_COMMANDS}, False),
        ("opencontainer compose", cli.COMPOSE_COMMANDS, True),
    ]
    todo: list[tuple[str, argparse.ArgumentParser]] = [("global", cli._global_parser())]
    for prog, table, compose in tables:
        for name, (module, helptext) in table.items():
            parser, _ = cli._build_command_parser(prog, name, module, helptext, compose)
            todo.append((f"{prog} {name}", parser))
    while todo:
        name, parser = todo.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]


def test_every_parser_refuses_abbreviations() -> None:
    parsers = dict(all_parsers())
    assert len(parsers) > 40
    lax = [name for name, p in parsers.items() if p.allow_abbrev]
    assert lax == []


def test_every_parser_in_the_source_says_so() -> None:
    """A parser built somewhere the walk above does not reach still has to say it."""
    missing = []
    for path in sorted(CLI_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname not in ("ArgumentParser", "add_parser"):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            value = kw.get("allow_abbrev")
            if not (isinstance(value, ast.Constant) and value.value is False):
                missing.append(f"{path.name}:{node.lineno}")
    assert missing == []


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), ctx=CliContext(stdout=out, stderr=err, env={}))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [
    ("run", "--rm", "--na", "x", "busybox", "true"),  # --name
    ("compose", "up", "--attach-fore"),  # --attach-foreground
    ("up", "--abort"),  # --abort-on-container-exit
    ("kill", "--sig", "TERM", "c"),  # --signal
])
def test_an_abbreviated_option_is_a_usage_error(argv: tuple[str, ...],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(*argv)
    assert code == 125
    assert "unrecognized arguments" in capsys.readouterr().err
    assert out == ""


def test_usage_error_and_help_exit_statuses() -> None:
    assert run("ps", "--no-such-option")[0] == 125
    code, out, _ = run("ps", "--help")  # docker's layout, on the command's stdout
    assert code == 0 and "Usage:  opencontainer ps [OPTIONS]" in out


def test_short_options_still_combine() -> None:
    parser, _ = cli._build_command_parser("opencontainer", "run", "opencontainer.cli.containers",
                                          "", False)
    args = parser.parse_args(["-it", "--rm", "busybox", "sh"])
    assert args.interactive and args.tty and args.rm
