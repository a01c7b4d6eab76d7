"""The benchmark harness' measuring core: interleaving, medians, rows and the table."""

from __future__ import annotations

import pytest

from benchmarks.core import (
    NotAvailable,
    RowSpec,
    Side,
    SideFailed,
    SideResult,
    format_table,
    interleave,
    make_rows,
    one_line,
)
from benchmarks.scenarios import SCENARIOS, select
from benchmarks.scenarios.proot_overhead import parse_times, script


def test_interleave_runs_sides_in_turn_and_keeps_samples() -> None:
    calls: list[str] = []

    def side(name: str, value: float) -> Side:
        def measure() -> dict[str, float]:
            calls.append(name)
            return {"t": value + len(calls)}

        return Side(name, measure, prepare=lambda: calls.append(f"prep-{name}"),
                    cleanup=lambda: calls.append(f"clean-{name}"))

    results = interleave([side("ours", 0), side("peer", 100)], repeat=3)
    assert [c for c in calls if not c.startswith(("prep", "clean"))] == [
        "ours", "peer", "ours", "peer", "ours", "peer"]
    assert calls[:3] == ["prep-ours", "ours", "clean-ours"]
    assert results["ours"].status == "ok"
    assert len(results["ours"].samples["t"]) == 3
    assert len(results["peer"].samples["t"]) == 3


def test_not_available_and_failures_stop_a_side_but_not_the_others() -> None:
    seen: list[str] = []

    def missing() -> dict[str, float]:
        seen.append("missing")
        raise NotAvailable("not implemented")

    def broken() -> dict[str, float]:
        seen.append("broken")
        raise SideFailed("tool exit 1: boom")

    def fine() -> dict[str, float]:
        seen.append("fine")
        return {"t": 1.0}

    results = interleave([Side("a", missing), Side("b", broken), Side("c", fine)], repeat=4)
    assert results["a"].status == "n/a (not implemented)"
    assert results["b"].status == "failed: tool exit 1: boom"
    assert results["c"].samples["t"] == (1.0, 1.0, 1.0, 1.0)
    assert seen.count("missing") == 1 and seen.count("broken") == 1


def test_cleanup_errors_do_not_hide_the_measurement() -> None:
    def bad_cleanup() -> None:
        raise RuntimeError("cannot clean")

    results = interleave([Side("x", lambda: {"t": 2.0}, cleanup=bad_cleanup)], repeat=2)
    assert results["x"].samples["t"] == (2.0, 2.0)


def test_median_ratio_and_rows() -> None:
    results = {
        "ours": SideResult("ours", {"t": (3.0, 1.0, 2.0, 9.0, 2.5)}),
        "peer": SideResult("peer", {"t": (4.0, 5.0, 6.0)}),
        "gone": SideResult("gone", {}, "n/a (not implemented)"),
    }
    rows = make_rows([
        RowSpec("1", "pull", ("ours", "t"), ("peer", "t"), "skopeo"),
        RowSpec("1", "pull", ("ours", "t"), ("gone", "t"), "udocker"),
        RowSpec("4", "rss", ("ours", "t"), None, unit="MB"),
        RowSpec("9", "nothing", ("absent", "t"), None),
    ], results)
    assert rows[0].ours == 2.5 and rows[0].peer == 5.0 and rows[0].ratio == pytest.approx(0.5)
    assert rows[1].peer is None and rows[1].ratio is None
    assert rows[1].peer_status == "n/a (not implemented)"
    assert rows[2].peer_status == "-"
    assert rows[3].ours_status == "n/a (not run)"
    doc = rows[0].to_json()
    assert doc["ours_samples"] == [3.0, 1.0, 2.0, 9.0, 2.5] and doc["ratio"] == pytest.approx(0.5)


def test_table_has_one_line_per_row_and_aligned_columns() -> None:
    results = {
        "ours": SideResult("ours", {"t": (0.5,), "rss": (42.25,)}),
        "peer": SideResult("peer", {"t": (2.0,)}),
        "gone": SideResult("gone", {}, "n/a (not implemented)"),
    }
    rows = make_rows([
        RowSpec("3", "run --rm busybox true", ("ours", "t"), ("peer", "t"), "udocker run"),
        RowSpec("3", "run --rm busybox true", ("gone", "t"), ("peer", "t"), "udocker run"),
        RowSpec("4", "supervisor RSS", ("ours", "rss"), None, unit="MB"),
    ], results)
    table = format_table(rows).splitlines()
    assert len(table) == 2 + 3
    assert table[0].startswith("| scenario")
    assert len({len(line) for line in table}) == 1  # aligned
    assert "0.500 s" in table[2] and "2.000 s" in table[2] and "0.25" in table[2]
    assert "n/a (not implemented)" in table[3] and table[3].rstrip("| ").endswith("-")
    assert "42.2 MB" in table[4] or "42.3 MB" in table[4]


def test_one_line_takes_the_last_line_and_shortens() -> None:
    assert one_line("a\n\nError: it broke\n") == "Error: it broke"
    assert one_line("") == "no output"
    assert len(one_line("x" * 500, 50)) == 50


def test_scenario_selection_by_key_or_number() -> None:
    assert select(None) == list(SCENARIOS)
    assert select("compose") == ["compose"]
    assert select("6,1") == ["pull", "proot"]  # table order, not argument order
    with pytest.raises(ValueError, match="unknown scenario"):
        select("nope")


def test_proot_loop_script_and_its_timing_lines() -> None:
    text = script(10, 2, "/bin/busybox", "/bin")
    assert "-lt 10" in text and "-lt 2" in text and "/bin/busybox ls -la /bin" in text
    out = "BENCH fork 100.50 102.75\nnoise\nBENCH stat 102.75 103.00\n"
    assert parse_times(out) == {"fork": pytest.approx(2.25), "stat": pytest.approx(0.25)}
    assert parse_times("BENCH fork  \n") == {}  # no /proc/uptime: the harness uses wall time
