"""``--help`` in docker's layout, from argparse's own parser (standard library only: ``--help``
stays as fast as the command's module import).

A command's help::

    Usage:  opencontainer run [OPTIONS] IMAGE [COMMAND] [ARG...]

    Create and run a new container from an image

    Aliases:
      opencontainer container run, opencontainer run

    Options:
      -d, --detach                 Run container in background and print container ID
          --name string            Assign a name to the container

Option lines are docker's (cobra/pflag): the short form or six spaces, the long form, a type
word (``string``, ``list`` for a repeatable option, ``int``, ``decimal``), the description.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

NAME_WIDTH = 12  # docker's command column: "  container   Manage containers"


def _type_word(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if isinstance(action, (argparse._AppendAction, argparse._ExtendAction)):
        return "list"
    if action.type is int:
        return "int"
    if action.type is float:
        return "decimal"
    return "string"


def _positional(action: argparse.Action) -> str:
    if isinstance(action, argparse._SubParsersAction):
        return "COMMAND"
    name = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    if action.nargs == argparse.REMAINDER:
        return f"[{name}] [ARG...]"
    if action.nargs == "+":
        return f"{name} [{name}...]"
    if action.nargs == "*":
        return f"[{name}...]"
    if action.nargs == "?":
        return f"[{name}]"
    return name


def usage_line(parser: argparse.ArgumentParser) -> str:
    positionals = [a for a in parser._actions if not a.option_strings
                   and a.help is not argparse.SUPPRESS]
    optionals = [a for a in parser._actions if a.option_strings
                 and a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]
    parts = [parser.prog]
    if optionals:
        parts.append("[OPTIONS]")
    parts += [_positional(a) for a in positionals]
    return "Usage:  " + " ".join(parts)


def _describe(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default))
    if text[:1].islower():
        text = text[0].upper() + text[1:]
    if action.choices and "(" not in text and action.nargs != 0:
        text = (text + " " if text else "") + "(" + ", ".join(
            f'"{c}"' for c in action.choices) + ")"
    return text


def option_lines(actions: Iterable[argparse.Action]) -> list[str]:
    """Docker's option lines: ``  -a, --all string   Description``, aligned."""
    heads: list[tuple[str, str]] = []
    for a in sorted(actions, key=lambda a: max(a.option_strings, key=len).lstrip("-")):
        if a.help is argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
            continue
        shorts = [o for o in a.option_strings if not o.startswith("--")]
        longs = [o for o in a.option_strings if o.startswith("--")]
        head = f"  {shorts[0]}, " if shorts and longs else "      "
        head += (longs[0] if longs else shorts[0])
        word = _type_word(a)
        heads.append((head + (f" {word}" if word else ""), _describe(a)))
    if not heads:
        return []
    width = max(len(h) for h, _ in heads) + 3
    return [f"{h:<{width}}{d}".rstrip() for h, d in heads]


def format_help(parser: argparse.ArgumentParser, aliases: Sequence[str] = ()) -> str:
    lines = ["", usage_line(parser), ""]
    if parser.description:
        lines += [parser.description, ""]
    if aliases:
        lines += ["Aliases:", "  " + ", ".join(aliases), ""]
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if sub:
        lines.append("Commands:")
        for choice in sorted(sub[0]._choices_actions, key=lambda c: c.dest):
            lines.append(f"  {choice.dest:<{NAME_WIDTH - 2}}  {choice.help or ''}".rstrip())
        lines.append("")
    own: list[argparse.Action] = []
    sections: list[tuple[str, list[argparse.Action]]] = []
    for group in parser._action_groups:
        acts = [a for a in group._group_actions if a.option_strings]
        if group.title in ("options", "optional arguments", "positional arguments", None):
            own += acts
        elif group.title != "compose options":  # docker compose's: in `compose --help`
            sections.append((group.title, acts))
    body = option_lines(own)
    if body:
        lines += ["Options:", *body, ""]
    for title, acts in sections:
        body = option_lines(acts)
        if body:
            lines += [f"{title[:1].upper()}{title[1:]}:".replace(" options:", " Options:"),
                      *body, ""]
    if sub:
        lines += [f"Run '{parser.prog} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


class DockerParser(argparse.ArgumentParser):
    """An ArgumentParser whose ``--help`` and usage are docker's."""

    def __init__(self, *args: Any, aliases: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.aliases = tuple(aliases)
        self.out: TextIO | None = None  # where --help goes (the command's stdout)

    def direct_help(self, out: TextIO) -> None:
        """``--help`` (of this parser and its subcommands') to ``out``."""
        self.out = out
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                for p in a.choices.values():
                    if isinstance(p, DockerParser):
                        p.direct_help(out)

    def print_help(self, file: Any = None) -> None:
        super().print_help(file if file is not None else self.out)

    def format_usage(self) -> str:
        return usage_line(self) + "\n"

    def format_help(self) -> str:
        return format_help(self, self.aliases)


def command_table(rows: Iterable[tuple[str, str]]) -> list[str]:
    return [f"  {n:<{NAME_WIDTH - 2}}  {h}" for n, h in rows]
