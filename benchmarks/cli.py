"""The ``python -m benchmarks`` command: run scenarios, print one table, write JSON + PNG."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from . import chart
from .context import (
    PROOT_51,
    BenchContext,
    bench_context,
    compile_bytecode,
    proot_54,
    tool_version,
)
from .core import Metrics, Row, RowSpec, SideResult, format_table, interleave, make_rows, one_line
from .ours import oc_argv
from .proot_distro import parse_version
from .scenarios import SCENARIOS, select
from .trash import settle, wait_for_quiet_filesystem

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--repeat", type=int, default=None,
                   help="interleaved repetitions per side (default 5; 3 with --quick)")
    p.add_argument("--only", default=None,
                   help="scenario(s) to run: " + ", ".join(f"{k} ({v[0]})"
                                                           for k, v in SCENARIOS.items()))
    p.add_argument("--no-settle", action="store_true",
                   help="do not wait for the filesystem to settle first (smoke runs; the "
                        "numbers of file-creating scenarios may then be off)")
    p.add_argument("--quick", action="store_true",
                   help="smaller loops and fewer repetitions (a smoke run, not for the README)")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json",
                   help="where to write the JSON results (the PNG goes beside it)")
    p.add_argument("--no-chart", action="store_true", help="do not render the PNG")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args(argv)


def versions(ctx: BenchContext | None) -> dict[str, str]:
    from opencontainer._version import __version__

    p54 = proot_54()
    out = {
        "python": platform.python_version(),
        "opencontainer": __version__,
        "proot-5.1.0": proot_version(PROOT_51) if PROOT_51.exists() else "missing",
        "proot-5.4.0": proot_version(p54) if p54 else "missing",
        "skopeo": tool_version(["skopeo", "--version"]),
        "umoci": tool_version(["umoci", "--version"]),
        "docker-registry": tool_version(["/usr/bin/docker-registry", "--version"]),
    }
    if ctx is not None:
        out["container-roots"] = container_roots(ctx)
        tried = ctx.peers_tried()  # no peer is installed just to print its version
        out["udocker"] = udocker_version(ctx) if "udocker" in tried else "not used"
        out["proot-distro"] = proot_distro_version(ctx) if "proot-distro" in tried else "not used"
    return out


def container_roots(ctx: BenchContext) -> str:
    """What ``opencontainer create`` gives on this machine: overlay or copy (``doctor``)."""
    home = ctx.workdir / "doctor-home"
    try:
        res = subprocess.run(oc_argv("doctor", "--format", "json"), capture_output=True,
                             text=True, timeout=60, check=False,
                             env=ctx.oc_env(home))
        info = json.loads(res.stdout)["rootfs"]
        return f"{info['mode']} ({info['detail']})"
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
        return f"unknown ({one_line(str(exc), 60)})"
    finally:
        ctx.discard(home)


def udocker_version(ctx: BenchContext) -> str:
    try:
        u = ctx.udocker()
    except Exception as exc:
        return f"n/a ({one_line(str(exc), 60)})"
    return tool_version(u.argv("--version"), dict(
        os.environ, UDOCKER_DIR=str(ctx.workdir / "udocker-version"), UDOCKER_TARBALL=""))


def proot_distro_version(ctx: BenchContext) -> str:
    try:
        pd = ctx.proot_distro()
    except Exception as exc:
        return f"n/a ({one_line(str(exc), 60)})"
    try:
        out = subprocess.run(pd.argv("help"), capture_output=True, text=True, timeout=20,
                             check=False, env=dict(os.environ, PD_FORCE_NO_COLORS="true"))
    except (OSError, subprocess.SubprocessError):
        return f"missing ({pd.executable})"
    found = parse_version(out.stdout + out.stderr)
    return f"proot-distro {found} ({pd.executable})" if found else f"unknown ({pd.executable})"


def proot_version(binary: Path) -> str:
    """``proot 5.1.0`` from ``proot --version`` (which starts with an ASCII-art banner)."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "missing"
    found = re.search(r"\bv?(\d+\.\d+\.\d+)\b", out.stdout + out.stderr)
    return f"proot {found.group(1)} ({binary})" if found else f"unknown ({binary})"


def machine() -> dict[str, Any]:
    return {
        "uname": " ".join(os.uname()),
        "nproc": os.cpu_count(),
        "euid": os.geteuid(),
    }


def _progress(scenario: str) -> Any:
    def report(side: str, rep: int, got: Metrics | str) -> None:
        text = got if isinstance(got, str) else ", ".join(f"{k}={v:.3f}" for k, v in got.items())
        print(f"  [{scenario}] rep {rep + 1} {side}: {text}", file=sys.stderr, flush=True)

    return report


def run_scenario(key: str, ctx: BenchContext) -> tuple[list[Row], list[str], dict[str, Any]]:
    number, title, plan_fn = SCENARIOS[key]
    print(f"scenario {number}: {title}", file=sys.stderr, flush=True)
    try:
        plan = plan_fn(ctx)
    except Exception as exc:
        reason = one_line(str(exc)) or type(exc).__name__
        if os.environ.get("OPENCONTAINER_BENCH_DEBUG"):
            traceback.print_exc()
        status = f"n/a ({exc.reason})" if hasattr(exc, "reason") else f"failed: {reason}"
        rows = make_rows([RowSpec(number, title, ("ours", "t"), None)],
                         {"ours": SideResult("ours", {}, status)})
        return rows, [f"{number}: set-up failed: {reason}"], {}
    try:
        results = interleave(plan.sides, ctx.repeat, _progress(number), settle=settle)
    finally:
        try:
            plan.teardown()
        except Exception as exc:
            print(f"  [{number}] teardown failed: {exc}", file=sys.stderr)
    raw = {name: {"status": r.status, "samples": {k: list(v) for k, v in r.samples.items()}}
           for name, r in results.items()}
    return make_rows(plan.rows, results), list(plan.notes), raw


def write_results(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # the harness is an application: keep the library's info logs out of the table output
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        print("Error: --repeat must be at least 1.", file=sys.stderr)
        return 2
    try:
        keys = select(args.only)
    except ValueError as exc:
        print(f"Error: {exc}.", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    rows: list[Row] = []
    notes: list[str] = []
    raw: dict[str, Any] = {}
    with bench_context(repeat, args.quick, keep=args.keep) as ctx:
        waited, took = wait_for_quiet_filesystem(ctx.workdir, ctx.trash,
                                                 max_wait=0.0 if args.no_settle else 420.0)
        notes.append(compile_bytecode())
        notes.append(f"fs: creating 2000 files took {took * 1000:.0f} ms at the start"
                     + (f" (after waiting {waited:.0f} s for the filesystem to settle)"
                        if waited else ""))
        for key in keys:
            r, n, s = run_scenario(key, ctx)
            rows += r
            notes += n
            raw[SCENARIOS[key][0]] = s
        notes += ctx.trash.notes()
        vers = versions(ctx)
    table = format_table(rows)
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": vers,
        "repeat": repeat,
        "quick": args.quick,
        "scenarios": keys,
        "rows": [row.to_json() for row in rows],
        "notes": notes,
        "sides": raw,
        "table": table,
    }
    write_results(args.output, doc)
    print(f"\n{started:%Y-%m-%d %H:%M} UTC, {doc['machine']['uname']}, "
          f"nproc {doc['machine']['nproc']}, repeat {repeat}{' (quick)' if args.quick else ''}")
    print(table)
    for note in notes:
        print(f"  note {note}")
    print(f"results: {args.output}")
    if not args.no_chart:
        png = args.output.with_suffix(".png")
        made = chart.render(rows, png, title=f"OpenContainer / peer, {started:%Y-%m-%d}")
        print(f"chart: {png}" if made else "chart: skipped (matplotlib not installed)")
    return 0
