"""``python -m benchmarks`` end to end on the cheap scenario (5, compose load), repeat 1.

No timing assertions: only that the command runs, prints one table and writes the JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.context import shared_dir

ROOT = Path(__file__).resolve().parent.parent


def test_bench_cli_rejects_bad_arguments() -> None:
    for args in (["--only", "nope"], ["--repeat", "0"]):
        proc = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2
        assert proc.stderr.startswith("Error: ")


@pytest.mark.skipif(not (shared_dir() / "compose-corpus").is_dir(),
                    reason="the shared compose corpus is not available")
def test_scenario_5_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    env = dict(os.environ, OPENCONTAINER_BENCH_WORKDIR=str(tmp_path / "work"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "compose", "--repeat", "1", "--no-settle",
         "--output", str(out), "--no-chart"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| scenario" in proc.stdout and "5 load_project" in proc.stdout
    doc = json.loads(out.read_text())
    assert {"date", "machine", "versions", "rows", "table"} <= set(doc)
    assert doc["machine"]["nproc"] >= 1 and doc["repeat"] == 1
    rows = {r["label"]: r for r in doc["rows"]}
    yaml_row = next(r for r in rows.values() if r["peer_label"].startswith("ruamel"))
    assert len(yaml_row["peer_samples"]) == 1  # the baseline side always runs
    assert yaml_row["ours_status"] == "ok" or yaml_row["ours_status"].startswith("n/a")
    # the work dir is cleaned up
    assert not any((tmp_path / "work").iterdir())
