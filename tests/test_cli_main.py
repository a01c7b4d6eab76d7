"""The CLI shell: version, help, dispatch, and one-sentence errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from opencontainer.cli.main import CliContext, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), ctx=CliContext(stdout=out, stderr=err, env={}))
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert out.startswith("opencontainer version ")


def test_help_lists_groups() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for word in ("compose", "up", "down", "run", "pull", "images", "ps", "doctor"):
        assert f"  {word} " in out


def test_compose_help() -> None:
    code, out, _ = run("compose", "--help")
    assert code == 0
    assert "-f, --file" in out and "  logs " in out


def test_unknown_command_is_one_sentence() -> None:
    code, _, err = run("frobnicate")
    assert code == 1  # docker's status for a command it does not have
    assert err.strip().count("\n") == 0
    assert "unknown command" in err


def test_version_does_not_import_engine_or_aiohttp() -> None:
    code = (
        "import sys; from opencontainer.cli.main import main; main(['--version']);"
        "bad = [m for m in sys.modules if m.startswith(('aiohttp', 'opencontainer.engine',"
        " 'opencontainer.image', 'ruamel', 'structlog'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_dash_m_entrypoint() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "opencontainer", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "opencontainer version" in proc.stdout


@pytest.mark.parametrize("argv", [["compose"], []])
def test_no_command_prints_usage(argv: list[str]) -> None:
    code, out, _ = run(*argv)
    assert code == 0
    assert "Usage:" in out


def test_logging_configured_when_structlog_is_imported_late(tmp_path: Path) -> None:
    """structlog is configured lazily; warnings still reach stderr, not stdout."""
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: busybox:${NOPE}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "opencontainer", "config", "--services"],
        cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "a"
    assert "NOPE" in proc.stderr and "not set" in proc.stderr
