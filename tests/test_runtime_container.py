"""Standalone container bookkeeping (no proot needed): store, names, state, parsing helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opencontainer.errors import ConfigError, ContainerError
from opencontainer.humanize import human_duration
from opencontainer.runtime.container import (
    ContainerConfig,
    ContainerState,
    ContainerStore,
    generate_name,
    new_id,
    now_iso,
    status_text,
)
from opencontainer.runtime.create import parse_hosts, parse_volume
from opencontainer.runtime.monitor import LogWriter
from opencontainer.runtime.rootfs import resolve_in_rootfs
from opencontainer.runtime.spec import ContainerSpec


def config(name: str, cid: str | None = None) -> ContainerConfig:
    spec = ContainerSpec(name=name, rootfs="/r", argv=["sh"])
    return ContainerConfig(id=cid or new_id(), name=name, image="busybox", image_id="sha256:x",
                           created=now_iso(), spec=spec, proot="/usr/bin/proot")


def test_store_roundtrip_and_lookup(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    name, d = store.reserve("web")
    c = store.save_config(d, config(name, "ab" * 32))
    assert store.get("web").config == c.config
    assert store.get("abab").id == "ab" * 32  # id prefix
    _, d2 = store.reserve("db")
    store.save_config(d2, config("db", "ac" + "0" * 62))
    with pytest.raises(ContainerError, match="multiple"):
        store.get("a")
    with pytest.raises(ContainerError, match="no such container"):
        store.get("nope")
    with pytest.raises(ContainerError, match="already in use"):
        store.reserve("web")
    with pytest.raises(ConfigError):
        store.reserve("bad name")
    gen, _ = store.reserve(None)
    assert "_" in gen
    assert {x.name for x in store.list()} == {"web", "db"}  # gen has no config yet


def test_state_of_dead_keeper_is_exited(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    name, d = store.reserve("x")
    c = store.save_config(d, config(name))
    assert c.state().status == "created"
    c.update_state(status="running", pid=2**22 + 12345, monitor_pid=2**22 + 12346,
                   started_at=now_iso())
    st = c.state()
    assert st.status == "exited" and st.exit_code == 255 and "died" in st.error
    c.update_state(status="running", monitor_pid=os.getpid(), monitor_start=None)
    assert c.state().status == "running"


def test_status_text() -> None:
    now = 1_000_000.0
    from datetime import UTC, datetime

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    assert status_text(ContainerState(status="running", started_at=iso(now - 3)), now) == \
        "Up 3 seconds"
    assert status_text(ContainerState(status="exited", exit_code=3, finished_at=iso(now - 5)),
                       now) == "Exited (3) 5 seconds ago"
    assert status_text(ContainerState(), now) == "Created"
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(90) == "About a minute"
    assert human_duration(7200) == "2 hours"


def test_generate_name() -> None:
    name = generate_name(set())
    assert name.count("_") == 1 and name.replace("_", "").isalpha()


def test_parse_volume(tmp_path: Path) -> None:
    v = parse_volume("/host/dir:/data:ro")
    assert (v.kind, v.source, v.target, v.read_only) == ("bind", "/host/dir", "/data", True)
    v = parse_volume("./rel:/data", cwd=tmp_path)
    assert v.kind == "bind" and v.source == str(tmp_path / "rel")
    v = parse_volume("named:/data")
    assert (v.kind, v.source) == ("volume", "named")
    v = parse_volume("/anon")
    assert (v.kind, v.source, v.target) == ("volume", "", "/anon")
    with pytest.raises(ConfigError):
        parse_volume("x:relative")
    with pytest.raises(ConfigError):
        parse_volume("a:b:c:d")


def test_parse_hosts() -> None:
    assert parse_hosts(["db:10.0.0.2", "gw:host-gateway", "v6=[::1]"]) == [
        ("10.0.0.2", ("db",)), ("127.0.0.1", ("gw",)), ("::1", ("v6",))]
    with pytest.raises(ConfigError):
        parse_hosts(["nocolon"])


def test_resolve_in_rootfs_never_leaves_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real" / "dir").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/real")  # absolute: relative to the container root
    (root / "up").symlink_to("../../../../..")
    assert resolve_in_rootfs(root, "/var/run/dir") == root / "real" / "dir"
    assert resolve_in_rootfs(root, "/up/etc/passwd") == root / "etc" / "passwd"
    assert resolve_in_rootfs(root, "/../../etc") == root / "etc"
    assert resolve_in_rootfs(root, "/var/run", follow_last=False) == root / "var" / "run"
    (root / "loop").symlink_to("/loop")
    with pytest.raises(ContainerError, match="symbolic links"):
        resolve_in_rootfs(root, "/loop/x")


def test_log_writer(tmp_path: Path) -> None:
    import json

    w = LogWriter(tmp_path / "log.jsonl")
    w.feed("stdout", b"one\ntw")
    w.feed("stderr", b"err\r\n")
    w.feed("stdout", b"o\n\xff\nlast")
    w.close()
    recs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["stream"], r["line"]) for r in recs] == [
        ("stdout", "one"), ("stderr", "err"), ("stdout", "two"), ("stdout", "\ufffd"),
        ("stdout", "last")]
    assert all(r["t"].endswith("Z") for r in recs)


def test_ps_template_and_command_text() -> None:
    from opencontainer.cli.containers import _command_text, _template

    assert _template("{{.Names}}\\t{{.Status}}", {"Names": "a", "Status": "Up"}) == "a\tUp"
    assert _template("{{json .State}}", {"State": {"Pid": 1}}) == '{"Pid": 1}'
    assert _template("{{.State.Pid}}", {"State": {"Pid": 1}}) == "1"
    assert _command_text(["sh", "-c", "exit 3"], True) == "\"sh -c 'exit 3'\""
    assert _command_text(["a" * 30], True) == '"' + "a" * 19 + '…"'


def test_check_command(tmp_path: Path) -> None:
    from opencontainer.runtime.create import check_command
    from opencontainer.runtime.testing import make_busybox_rootfs

    root = make_busybox_rootfs(tmp_path / "rootfs")
    env = {"PATH": "/usr/bin:/bin"}
    check_command(ContainerSpec(name="a", rootfs=root, argv=["echo"], env=env))
    check_command(ContainerSpec(name="a", rootfs=root, argv=["./echo"], env=env, cwd="/bin"))
    with pytest.raises(ContainerError, match="not found in") as exc:
        check_command(ContainerSpec(name="a", rootfs=root, argv=["nosuch"], env=env))
    assert exc.value.exit_code == 127
    with pytest.raises(ContainerError, match="permission denied") as exc:
        check_command(ContainerSpec(name="a", rootfs=root, argv=["/etc/passwd"], env=env))
    assert exc.value.exit_code == 126


def test_human_duration_words_like_docker() -> None:
    assert human_duration(1) == "1 second"
    assert human_duration(59) == "59 seconds"
    assert human_duration(5 * 60) == "5 minutes"
    assert human_duration(3600 * 1.4) == "About an hour"
    assert human_duration(3600 * 1.6) == "2 hours"
    assert human_duration(3600 * 24 * 3) == "3 days"
    assert human_duration(3600 * 24 * 21) == "3 weeks"
    assert human_duration(3600 * 24 * 90) == "3 months"
    assert human_duration(3600 * 24 * 365 * 3) == "3 years"
