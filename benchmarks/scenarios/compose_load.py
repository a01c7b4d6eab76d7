"""Scenario 5: compose load time of the largest corpus file (airflow's docker-compose.yaml).

- ours (in process): ``load_project(LoadOptions(files=[...]))`` — parse, interpolate, merge,
  validate, normalise (imports and one warm-up call are not timed);
- baseline: a plain ``ruamel.yaml`` safe load of the same file (what any loader must pay);
- ``opencontainer config -f FILE`` as a command (start-up included), ours only.

The corpus is ``<repo>/../shared/compose-corpus`` unless ``OPENCONTAINER_SHARED`` says otherwise.
"""

from __future__ import annotations

import importlib
import io
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..context import BenchContext, shared_dir
from ..core import Metrics, NotAvailable, RowSpec, Side, timed
from ..ours import module_missing, oc, require_cli
from .base import Plan

SCENARIO = "5"
PREFERRED = "airflow"


def largest_compose_file(corpus: Path) -> Path:
    """The biggest compose file of the airflow source, else of the whole corpus."""
    if not corpus.is_dir():
        raise NotAvailable(f"compose corpus not found at {corpus}")
    for base in (corpus / PREFERRED, corpus):
        found = [p for p in base.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml")
                 and "compose" in p.name]
        if found:
            return max(found, key=lambda p: p.stat().st_size)
    raise NotAvailable(f"no compose files under {corpus}")


def _loader() -> tuple[Any, Any]:
    reason = module_missing("opencontainer.compose.loader", "load_project")
    if reason:
        raise NotAvailable(reason)
    mod = importlib.import_module("opencontainer.compose.loader")
    options = getattr(mod, "LoadOptions", None)
    if options is None:
        options = importlib.import_module("opencontainer.compose.model").LoadOptions
    return mod.load_project, options


def plan(ctx: BenchContext) -> Plan:
    path = largest_compose_file(shared_dir() / "compose-corpus")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env.setdefault("AIRFLOW_UID", "50000")  # what airflow's docs tell users to put in .env
    text = path.read_text()
    loops = 5 if ctx.quick else 20  # calls per sample: one call is a few ms

    def load_ours() -> None:
        load_project, load_options = _loader()
        load_project(load_options(files=[path], env=env))

    def ours() -> Metrics:
        load_project, load_options = _loader()
        opts = load_options(files=[path], env=env)
        load_project(opts)  # warm-up (schema compile, caches)

        def work() -> None:
            for _ in range(loops):
                load_project(opts)

        return {"t": timed(work) / loops}

    def yaml_only() -> Metrics:
        yaml = YAML(typ="safe", pure=True)
        yaml.load(io.StringIO(text))

        def work() -> None:
            for _ in range(loops):
                yaml.load(io.StringIO(text))

        return {"t": timed(work) / loops}

    def cli() -> Metrics:
        require_cli("config")
        return {"t": timed(lambda: oc("config", "-f", str(path), env=ctx.oc_env(
            ctx.workdir / "s5-home"), cwd=path.parent))}

    del load_ours
    size_kb = path.stat().st_size / 1024
    rel = path.relative_to(shared_dir()) if path.is_relative_to(shared_dir()) else path
    label = f"load_project {rel.name} ({size_kb:.1f} KB)"
    rows = [
        RowSpec(SCENARIO, label, ("ours", "t"), ("yaml", "t"), "ruamel.yaml safe load only"),
        RowSpec(SCENARIO, "opencontainer config -f (command)", ("cli", "t"), None),
    ]
    sides = [Side("ours", ours), Side("yaml", yaml_only), Side("cli", cli)]
    return Plan(sides, rows, [f"5: corpus file {rel}; in-process times are per call"])
