"""Bounded, seeded mutation fuzzing of the corpus: nothing but ComposeError may come out."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.errors import ComposeError

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OPENCONTAINER_SHARED") or REPO.parent / "shared")
CORPUS = SHARED / "compose-corpus"

pytestmark = pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").is_file(),
                                reason="shared compose corpus not found")

SNIPPETS = [":", "-", "[", "]", "{", "}", "$", "${", "${X:?}", "\"", "'", "\n", " ", "#", "&a",
            "*a", "!reset", "!override", "<<: *x", "\t", "0", "-1", "99999", "null", "~", "?",
            "|", ">", "%", "@", "`", "\\", "\x00", "é", ": :", "- -", "\n  - ", "\n    "]
VALUES: list[Any] = [None, True, False, 0, -1, 3.5, 99999, "", "x", "$", "${X:?e}", "~/x",
                     "../..", "a:b:c:d", [], {}, [None], {"k": None}, ["a", 1], {"x": [1]},
                     "1m30s", "on-failure:-1", "80:80:80", "[::1]::"]


def _files() -> list[Path]:
    out = []
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["role"] in ("compose", "override", "extends-base", "include-target"):
                out.append(CORPUS / r["corpus_path"])
    return out


def _mutate_text(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        if not text:
            text = rng.choice(SNIPPETS)
            continue
        i = rng.randrange(len(text))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i] + text[i + 1:]
        elif op == 1:
            text = text[:i] + rng.choice(SNIPPETS) + text[i:]
        elif op == 2:
            lines = text.splitlines(True)
            j = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[j])
            text = "".join(lines)
        elif op == 3:
            lines = text.splitlines(True)
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "".join(lines)
        else:
            j = rng.randrange(len(text))
            text = text[: min(i, j)] + text[max(i, j):]
    return text


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate_data(text: str, rng: random.Random) -> str:
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except Exception:  # tags such as !reset: fall back to text mutations
        return _mutate_text(text, rng)
    if not isinstance(data, dict):
        return text
    paths = [p for p in _paths(data) if p]
    for _ in range(rng.randint(1, 3)):
        if not paths:
            break
        p = rng.choice(paths)
        parent: Any = data
        try:
            for part in p[:-1]:
                parent = parent[part]
            parent[p[-1]] = rng.choice(VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        return json.dumps(data, default=str)
    except ValueError:  # aliases turned into a cycle by the mutation
        return _mutate_text(text, rng)


@pytest.mark.parametrize("seed", range(8))
def test_mutations_only_raise_compose_error(seed: int) -> None:
    rng = random.Random(seed)
    files = _files()
    assert files
    for _ in range(50):
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8")
        mutated = _mutate_text(text, rng) if rng.random() < 0.5 else _mutate_data(text, rng)
        opts = LoadOptions(files=("-",), stdin_text=mutated, env={"HOME": "/home/f"},
                           working_dir=str(path.parent))
        try:
            project = load_project(opts)
        except ComposeError as exc:
            assert str(exc)
            continue
        project.to_dict()
        for svc in project.services.values():
            svc.config_hash()
