"""Stand-ins for the /proc files Android hides, and the resolver configuration on Termux."""

from __future__ import annotations

from pathlib import Path

from opencontainer.runtime import procfake
from opencontainer.runtime.proot import ProotCapabilities, proot_args
from opencontainer.runtime.runscript import resolv_conf_text
from opencontainer.runtime.spec import ContainerSpec


def _spec(tmp_path: Path) -> ContainerSpec:
    return ContainerSpec(name="c", rootfs=str(tmp_path / "rootfs"), argv=("true",))


def test_nothing_generated_where_proc_is_readable(tmp_path: Path) -> None:
    assert procfake.unreadable() == []
    assert procfake.write(tmp_path) == []
    assert procfake.binds(tmp_path) == []


def test_unreadable_files_are_generated_and_bound(tmp_path: Path) -> None:
    fake_proc = tmp_path / "hostproc"
    fake_proc.mkdir()
    (fake_proc / "stat").write_text("cpu 1\n")
    (fake_proc / "loadavg").mkdir()  # a directory cannot be read as a file, like EACCES
    missing = procfake.unreadable(fake_proc)
    assert missing == ["loadavg", "uptime", "version", "vmstat"]
    written = procfake.write(tmp_path, missing)
    assert [p.name for p in written] == missing
    stat_like = procfake.stat_text()
    assert stat_like.startswith("cpu  ") and "btime " in stat_like
    assert len([ln for ln in stat_like.splitlines() if ln.startswith("cpu")]) >= 2
    up, idle = (float(x) for x in (tmp_path / "proc" / "uptime").read_text().split())
    assert up > 0 and idle >= 0
    assert (tmp_path / "proc" / "loadavg").read_text().count(" ") == 4
    args = proot_args(_spec(tmp_path), ProotCapabilities(binary="proot"), "proot", tmp_path)
    flat = [" ".join(a.value) for a in args]
    assert f"-b {tmp_path}/proc/uptime:/proc/uptime" in flat
    assert not any(":/proc/stat" in f for f in flat)
    # a later start on a host where they became readable drops the stand-ins
    assert procfake.write(tmp_path, []) == []
    assert procfake.binds(tmp_path) == []


def test_resolv_conf_falls_back_to_termux_then_public(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    termux = tmp_path / "usr" / "etc" / "resolv.conf"
    termux.parent.mkdir(parents=True)
    termux.write_text("nameserver 9.9.9.9\n")
    none = tmp_path / "missing"
    assert resolv_conf_text(spec, [none, termux]) == "nameserver 9.9.9.9\n"
    assert resolv_conf_text(spec, [none]) == "nameserver 8.8.8.8\nnameserver 1.1.1.1\n"
