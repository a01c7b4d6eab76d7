"""The benchmark harness' measuring core: interleaving, medians, rows, the table, the trash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks.context import BenchContext, bench_context
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
from benchmarks.ours import container_dir
from benchmarks.scenarios import SCENARIOS, select
from benchmarks.scenarios.proot_overhead import parse_times, script
from benchmarks.trash import Trash
from benchmarks.udocker import discard_container


def test_interleave_runs_sides_in_turn_and_keeps_samples() -> None:
    calls: list[str] = []

    def side(name: str, value: float) -> Side:
        def measure() -> dict[str, float]:
            calls.append(name)
            return {"t": value + len(calls)}

        return Side(name, measure, prepare=lambda: calls.append(f"prep-{name}"),
                    cleanup=lambda: calls.append(f"clean-{name}"))

    results = interleave([side("ours", 0), side("peer", 100)], repeat=3)
    # the order rotates every round, so no side always follows the same one
    assert [c for c in calls if not c.startswith(("prep", "clean"))] == [
        "ours", "peer", "peer", "ours", "ours", "peer"]
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


def test_settle_runs_after_every_cleanup() -> None:
    calls: list[str] = []

    def side(name: str) -> Side:
        def measure() -> dict[str, float]:
            calls.append(name)
            return {"t": 1.0}

        return Side(name, measure, cleanup=lambda: calls.append(f"clean-{name}"))

    interleave([side("a"), side("b")], repeat=2, settle=lambda: calls.append("settle"))
    assert calls == ["a", "clean-a", "settle", "b", "clean-b", "settle",
                     "b", "clean-b", "settle", "a", "clean-a", "settle"]


def _tree(path: Path, files: int = 3) -> Path:
    (path / "ro").mkdir(parents=True)
    for i in range(files):
        (path / "ro" / f"f{i}").write_text(str(i))
    (path / "ro").chmod(0o555)  # unpacked images have read-only dirs
    return path


def test_trash_renames_trees_and_deletes_them_only_at_the_end(tmp_path: Path) -> None:
    trash = Trash(tmp_path / ".trash", min_free=0)
    first = _tree(tmp_path / "out")
    inode = first.stat().st_ino
    trash.discard(first)
    assert not first.exists()
    _tree(first)  # the next round makes the same path again
    trash.discard(first)
    trash.discard(tmp_path / "missing")  # nothing there: nothing to do
    kept = sorted((tmp_path / ".trash").iterdir())
    assert [p.name for p in kept] == ["0001-out", "0002-out"]
    assert kept[0].stat().st_ino == inode  # renamed, not copied
    assert (kept[1] / "ro" / "f2").read_text() == "2"
    assert trash.moved == 2 and trash.notes() == []
    trash.empty()
    assert not (tmp_path / ".trash").exists()
    trash.empty()  # twice is fine


def test_trash_deletes_at_once_when_free_space_is_short(tmp_path: Path) -> None:
    trash = Trash(tmp_path / ".trash", min_free=10**30)
    trash.discard(_tree(tmp_path / "s1-ours"))
    trash.discard(_tree(tmp_path / "s1-udocker"))
    assert not (tmp_path / "s1-ours").exists() and not (tmp_path / "s1-udocker").exists()
    assert not (tmp_path / ".trash").exists() and trash.moved == 0
    (note,) = trash.notes()
    assert "not deferred for 2 tree(s) (s1-ours, s1-udocker)" in note and "free space" in note


def test_trash_deletes_at_once_when_the_rename_fails(tmp_path: Path) -> None:
    (tmp_path / ".trash").write_text("not a directory")
    trash = Trash(tmp_path / ".trash", min_free=0)
    trash.discard(_tree(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    (note,) = trash.notes()
    assert "not deferred" in note and "rename failed" in note


def test_context_fresh_dir_and_discard_go_through_the_trash(tmp_path: Path) -> None:
    ctx = BenchContext(workdir=tmp_path, quick=True, repeat=1, cache=tmp_path / "cache")
    d = ctx.fresh_dir("s1-ours")
    (d / "blob").write_text("x")
    assert not any(ctx.fresh_dir("s1-ours").iterdir())
    other = _tree(tmp_path / "s2-cp")
    ctx.discard(other, tmp_path / "missing")
    assert not other.exists()
    assert sorted(p.name for p in ctx.trash.root.iterdir()) == ["0001-s1-ours", "0002-s2-cp"]


@pytest.mark.parametrize("keep", [False, True])
def test_bench_context_empties_the_trash_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    monkeypatch.setenv("OPENCONTAINER_BENCH_WORKDIR", str(tmp_path))
    with bench_context(repeat=1, quick=True, keep=keep) as ctx:
        ctx.discard(_tree(ctx.workdir / "s1-ours"))
        assert (ctx.trash.root / "0001-s1-ours").is_dir()
        workdir = ctx.workdir
    assert not ctx.trash.root.exists()
    assert workdir.exists() == keep


def test_udocker_container_goes_to_the_trash_as_udocker_rm_would(tmp_path: Path) -> None:
    containers = tmp_path / "udocker" / "containers"
    for uuid in ("aaaa-1111", "bbbb-2222"):
        (containers / uuid / "ROOT").mkdir(parents=True)
    os.symlink("aaaa-1111", containers / "s2c1")  # udocker's name links are relative
    os.symlink("bbbb-2222", containers / "s2c2")
    gone: list[Path] = []
    discard_container(tmp_path / "udocker", "s2c1", gone.append)
    assert gone == [containers / "aaaa-1111"]
    assert sorted(p.name for p in containers.iterdir()) == ["aaaa-1111", "bbbb-2222", "s2c2"]
    discard_container(tmp_path / "udocker", "nope", gone.append)  # no such container
    assert len(gone) == 1


def test_our_container_dir_is_under_the_homes_data_dir(tmp_path: Path) -> None:
    assert container_dir(tmp_path, "bench-c1") == tmp_path / "data" / "containers" / "bench-c1"


class _StubImage:
    size = 122_000_000
    layers = ("l1", "l2", "l3", "l4", "l5")


class _StubContext(BenchContext):
    """Scenario 1's plan needs only the image's reference, size and layers."""

    def ref(self, name: str) -> str:
        return f"127.0.0.1:5000/library/{name}:1"

    def image(self, name: str) -> Any:
        return _StubImage()


def test_scenario_1_declares_ours_pull_create_against_udocker(tmp_path: Path) -> None:
    from benchmarks.scenarios import pull

    ctx = _StubContext(workdir=tmp_path, quick=True, repeat=1, cache=tmp_path / "cache")
    plan = pull.plan(ctx)
    names = {s.name for s in plan.sides}
    assert names == {"ours", "skopeo+umoci", "udocker", "ours pull+create", "proot-distro"}
    for row in plan.rows:
        assert row.ours[0] in names and (row.peer is None or row.peer[0] in names)
    new = plan.rows[-2]
    assert new.ours == ("ours pull+create", "t") and new.peer == ("udocker", "t")
    assert new.label.startswith("pull+create 122 MB 5-layer image (cold)")
    assert "ours vs udocker pull+create" in new.label
    side = next(s for s in plan.sides if s.name == "ours pull+create")
    side.prepare()
    (tmp_path / "s1-ours-create" / "home").mkdir()
    side.cleanup()  # the round's tree goes to the trash, not away
    assert not (tmp_path / "s1-ours-create").exists()
    assert (ctx.trash.root / "0001-s1-ours-create" / "home").is_dir()


def test_file_creation_probe_goes_to_the_trash(tmp_path: Path) -> None:
    from benchmarks.trash import Trash, file_creation_time

    trash = Trash(tmp_path / ".trash")
    took = file_creation_time(tmp_path, trash, files=50)
    assert took >= 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fs-probe")]
    assert trash.moved == 1


def test_wait_for_quiet_filesystem_waits_until_fast(tmp_path: Path) -> None:
    from benchmarks.trash import Trash, wait_for_quiet_filesystem

    times = iter([1.0, 0.5, 0.01])
    slept: list[float] = []
    waited, took = wait_for_quiet_filesystem(
        tmp_path, Trash(tmp_path / ".trash"), limit=0.1, interval=5,
        probe=lambda _w, _t: next(times), sleep=slept.append)
    assert (waited, took) == (10, 0.01) and slept == [5, 5]
    waited, took = wait_for_quiet_filesystem(
        tmp_path, Trash(tmp_path / ".trash"), limit=0.1, interval=5, max_wait=5,
        probe=lambda _w, _t: 2.0, sleep=slept.append)
    assert (waited, took) == (5, 2.0)


def test_proot_distro_version_comes_from_the_help_footer() -> None:
    from benchmarks.proot_distro import parse_version

    footer = "─" * 20 + "\nPRoot-Distro version '5.10.3' by Termux (@sylirre).\n"
    assert parse_version("USAGE\n  proot-distro [COMMAND]\n" + footer) == "5.10.3"
    assert parse_version("Error: unknown command '--version'.") is None


def test_proot_distro_keeps_everything_of_a_side_in_its_directory(tmp_path: Path) -> None:
    from benchmarks.proot_distro import ProotDistro, container_dir

    pd = ProotDistro(tmp_path / "venv" / "bin" / "proot-distro")
    env = pd.env(tmp_path / "s1", Path("/usr/bin/proot"), {"PATH": "/usr/bin", "HOME": "/root"})
    assert env["XDG_DATA_HOME"] == str(tmp_path / "s1" / "data")
    assert env["XDG_CACHE_HOME"] == str(tmp_path / "s1" / "cache")  # layer cache: cold too
    assert env["PD_PROOT_BIN"] == "/usr/bin/proot" and env["PATH"] == "/usr/bin"
    assert container_dir(tmp_path / "s1", "postgres") == (
        tmp_path / "s1" / "data" / "proot-distro" / "containers" / "postgres")
    assert pd.argv("login", "busybox", "--", "/bin/true")[1:] == [
        "login", "busybox", "--", "/bin/true"]


def test_a_peer_already_in_its_venv_is_not_installed_again(tmp_path: Path) -> None:
    from benchmarks.venvs import pip_tool

    exe = tmp_path / "proot-distro-venv" / "bin" / "proot-distro"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    assert pip_tool(tmp_path, "proot-distro-venv", "proot-distro==5.10.3",
                    "proot-distro") == exe


class _NoProotDistro(_StubContext):
    def proot_distro(self) -> Any:
        raise NotAvailable("pip install proot-distro==5.10.3 failed")


def test_a_missing_proot_distro_is_reported_not_fatal(tmp_path: Path) -> None:
    from benchmarks.scenarios import pull

    ctx = _NoProotDistro(workdir=tmp_path, quick=True, repeat=1, cache=tmp_path / "cache")
    plan = pull.plan(ctx)
    pd_row = plan.rows[-1]
    assert pd_row.peer == ("proot-distro", "t") and pd_row.peer_label == "proot-distro install"
    assert "ours vs proot-distro install" in pd_row.label
    side = next(s for s in plan.sides if s.name == "proot-distro")
    results = interleave([side], repeat=2)
    assert results["proot-distro"].status == "n/a (pip install proot-distro==5.10.3 failed)"
    row = make_rows([pd_row], results)[0]
    assert "n/a (pip install proot-distro" in format_table([row])


def test_version_line_skips_udockers_info_line() -> None:
    from benchmarks.context import version_line

    text = "Info: creating repo: /tmp/u\nversion: 1.3.17\ntarball: \n"
    assert version_line(text) == "version: 1.3.17"
    assert version_line("skopeo version 1.9.3\n") == "skopeo version 1.9.3"
    assert version_line("umoci 0.4.7\n") == "umoci 0.4.7" and version_line("") == "unknown"
    assert version_line("Info: creating repo: /tmp/u\nudocker 1.3.17\n") == "udocker 1.3.17"


def test_only_the_peers_a_run_asked_for_are_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENCONTAINER_BENCH_PROOT_DISTRO", str(tmp_path / "bin" / "pd"))
    ctx = BenchContext(workdir=tmp_path, quick=True, repeat=1, cache=tmp_path / "cache")
    assert ctx.peers_tried() == set()  # e.g. --only compose: no peer is installed for versions
    assert ctx.proot_distro().executable == tmp_path / "bin" / "pd"
    assert ctx.peers_tried() == {"proot-distro"}
    assert not (tmp_path / "cache").exists()  # the named executable is used, nothing installed


def test_targets_are_printed_beside_the_figures_they_apply_to() -> None:
    results = {
        "ours": SideResult("ours", {"ps": (0.12,), "rss": (71.0,), "t": (0.3,)}),
        "peer": SideResult("peer", {"t": (0.2,)}),
    }
    rows = make_rows([
        RowSpec("4", "ps", ("ours", "ps"), None, target_max=0.150),
        RowSpec("4", "supervisor RSS", ("ours", "rss"), None, unit="MB", target_max=60.0),
        RowSpec("3", "run", ("ours", "t"), ("peer", "t"), "peer", target_max=1.0,
                target_ratio=True),
        RowSpec("3", "run", ("ours", "t"), ("peer", "t"), "peer"),
    ], results)
    assert [r.target for r in rows] == ["≤150 ms", "≤60 MB", "≤1.0x", ""]
    assert [r.met for r in rows] == [True, False, False, None]
    table = format_table(rows).splitlines()
    assert table[0].rstrip("| ").endswith("target")
    assert "≤150 ms: met" in table[2] and "≤60 MB: MISSED" in table[3]
    assert "≤1.0x: MISSED" in table[4]
    assert rows[1].to_json()["target"] == "≤60 MB" and rows[1].to_json()["target_met"] is False
