"""The CLI shell: version, help, dispatch, and one-sentence errors."""

from __future__ import annotations

import io
import re
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


def test_top_level_help_is_dockers_layout() -> None:
    code, out, _ = run("--help")
    assert code == 0
    lines = out.splitlines()
    assert "Usage:  opencontainer [OPTIONS] COMMAND" in lines
    heads = [ln for ln in lines if ln and not ln.startswith(" ") and ln.endswith(":")]
    assert heads == ["Common Commands:", "Management Commands:", "Commands:", "Global Options:"]

    def section(title: str) -> list[str]:
        i = lines.index(title) + 1
        block = lines[i:lines.index("", i)]
        return [ln.split()[0] for ln in block]

    assert section("Common Commands:")[:3] == ["run", "exec", "ps"]
    assert section("Management Commands:") == ["builder", "compose", "container", "image",
                                               "network", "system", "volume"]
    rest = section("Commands:")
    assert rest == sorted(rest) and {"attach", "commit", "up", "down", "wait"} <= set(rest)
    assert "supervise" not in rest and "run" not in rest
    # docker's columns: names padded to 12, options as pflag prints them
    assert "  run         Create and run a new container from an image" in lines
    assert "      --version             Print version information and quit" in lines
    assert [ln for ln in lines if ln][-1] == ("Run 'opencontainer COMMAND --help' for more "
                                              "information on a command.")


def test_command_help_is_dockers_layout() -> None:
    code, out, _ = run("run", "--help")
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "Usage:  opencontainer run [OPTIONS] IMAGE [COMMAND] [ARG...]"
    assert lines[3] == "Create and run a new container from an image"
    assert "  opencontainer container run, opencontainer run" in lines
    opts = lines[lines.index("Options:") + 1:]
    opts = opts[:opts.index("")] if "" in opts else opts
    detach = next(ln for ln in opts if "--detach" in ln)
    name = next(ln for ln in opts if "--name" in ln)
    env = next(ln for ln in opts if "--env " in ln)
    assert detach.startswith("  -d, --detach ") and name.startswith("      --name string ")
    assert env.startswith("  -e, --env list ")
    column = {re.search(r"\S {3,}(\S)", ln).start(1) for ln in (detach, name, env)}  # type: ignore[union-attr]
    assert len(column) == 1  # descriptions aligned
    longs = [ln[6:].split()[0].lstrip("-") for ln in opts]
    assert longs == sorted(longs)  # pflag's order
    assert "--help" not in out


@pytest.mark.parametrize(("argv", "usage"), [
    (["pause"], "Usage:  opencontainer pause CONTAINER [CONTAINER...]"),
    (["compose", "stats"], "Usage:  opencontainer compose stats [OPTIONS] [SERVICE...]"),
    (["compose", "attach"], "Usage:  opencontainer compose attach [OPTIONS] SERVICE"),
    (["volume"], "Usage:  opencontainer volume COMMAND"),
])
def test_help_usage_lines(argv: list[str], usage: str) -> None:
    code, out, _ = run(*argv, "--help")
    assert code == 0
    assert out.splitlines()[1] == usage


def test_compose_help_lists_parity_commands() -> None:
    _, out, _ = run("compose", "--help")
    names = [ln.split()[0] for ln in out.splitlines()[out.splitlines().index("Commands:") + 1:]
             if ln.startswith("  ")]
    assert names == sorted(names)
    assert {"pause", "unpause", "attach", "stats", "push"} <= set(names)
