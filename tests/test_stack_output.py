"""The CLI's log printer, status texts and --since parsing (pure helpers of cli/compose.py)."""

from __future__ import annotations

import io

from opencontainer.cli.compose import LogPrinter, parse_since, ps_json, status_text
from opencontainer.engine.state import ContainerState, effective


def test_printer_pads_to_the_widest_and_colours_only_when_asked() -> None:
    out = io.StringIO()
    p = LogPrinter(out, ["db-1", "web-app-1"], colour=False)
    p.line("db-1", "ready")
    p.line("web-app-1", "up")
    assert out.getvalue().splitlines() == ["db-1       | ready", "web-app-1  | up"]
    out = io.StringIO()
    LogPrinter(out, ["a-1"], colour=True).line("a-1", "x")
    assert out.getvalue().startswith("\x1b[") and out.getvalue().endswith("x\n")
    out = io.StringIO()
    LogPrinter(out, ["a-1"], colour=False, prefix=False).line("a-1", "plain")
    assert out.getvalue() == "plain\n"


def test_status_texts_read_like_docker() -> None:
    now = 1000.0
    up = ContainerState(name="p-a-1", service="a", status="running", started_at=990.0,
                        health="healthy")
    assert status_text(up, now) == "Up 10 seconds (healthy)"
    ex = ContainerState(name="p-a-1", service="a", status="exited", exit_code=3,
                        finished_at=880.0)
    assert status_text(ex, now) == "Exited (3) 2 minutes ago"
    assert status_text(ContainerState(name="x", service="a"), now) == "Created"


def test_ps_json_has_compose_fields_and_dead_supervisor_means_exited() -> None:
    st = ContainerState(name="p-db-1", service="db", project="p", status="running",
                        started_at=1.0, health="healthy", image="redis:7",
                        command=["redis-server"], publishers=[["0.0.0.0", 16379, 6379, "tcp"]])
    row = ps_json(st, "p")
    for key in ("Name", "Service", "Project", "State", "Health", "ExitCode", "Publishers",
                "Command", "Image", "ID", "Status", "CreatedAt", "Ports"):
        assert key in row
    assert row["Publishers"] == [{"URL": "0.0.0.0", "TargetPort": 6379,
                                  "PublishedPort": 16379, "Protocol": "tcp"}]
    assert row["Ports"] == "0.0.0.0:16379->6379/tcp"
    gone = ps_json(effective(st, supervisor_alive=False), "p")
    assert gone["State"] == "exited" and gone["Health"] == ""


def test_parse_since() -> None:
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("1700000000") == 1700000000.0
    assert parse_since("2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_since(None) is None
