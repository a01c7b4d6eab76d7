"""``version``, ``info``, ``completion`` and the command-line conventions: a usage error is
exit status 125 for every command, compose's too."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from opencontainer._version import __version__
from opencontainer.cli import main as cli_main
from opencontainer.cli.main import CliContext, main


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), ctx=CliContext(stdout=out, stderr=err, env=env or {}))
    return code, out.getvalue(), err.getvalue()


def test_version_sections(oc: Any) -> None:
    r = oc("version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Client: OpenContainer"
    assert f" Version:           {__version__}" in lines
    assert any(ln.startswith("Server: OpenContainer Engine") for ln in lines)
    assert " Engine:" in lines and " proot:" in lines
    assert any(ln.startswith(" OS/Arch:           linux/") for ln in lines)


def test_version_format(oc: Any) -> None:
    r = oc("version", "--format", "{{.Server.Version}} {{.Client.Version}}")
    assert (r.returncode, r.stdout) == (0, f"{__version__} {__version__}\n")
    data = json.loads(oc("version", "-f", "json").stdout)
    assert data["Client"]["Version"] == __version__
    assert [c["Name"] for c in data["Server"]["Components"]] == ["Engine", "proot"]
    r = oc("version", "-f", "{{range .Server.Components}}{{.Name}}={{.Version}} {{end}}")
    assert r.stdout.startswith(f"Engine={__version__} proot=")


def test_version_format_unknown_field_is_docker_s_error(oc: Any) -> None:
    r = oc("version", "--format", "{{.Server.Nope}}")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.strip() == (
        'Error: template parsing error: template: :1:2: executing "" at <.Server.Nope>: '
        "can't evaluate field Nope in type struct")


def test_info_counts_and_format(oc: Any, oc_env: dict[str, str]) -> None:
    r = oc("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in (" Containers: 0", "  Running: 0", "  Paused: 0", "  Stopped: 0", " Images: 0",
                 f" Server Version: {__version__}", " Default Runtime: proot",
                 f" Docker Root Dir: {Path(oc_env['OPENCONTAINER_HOME']) / 'data'}"):
        assert line in out.splitlines(), out
    driver = next(ln for ln in out.splitlines() if ln.startswith(" Storage Driver: "))
    assert driver.split(": ")[1] in ("overlay", "copy")
    assert any(ln.startswith(" CPUs: ") for ln in out.splitlines())
    assert any(ln.startswith(" Total Memory: ") and ln.endswith("iB")
               for ln in out.splitlines())
    r = oc("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.Images}} "
                               "{{.ServerVersion}} {{.OSType}}")
    assert r.stdout == f"0 0 0 {__version__} linux\n"
    data = json.loads(oc("info", "-f", "{{json .}}").stdout)
    assert data["Driver"] in ("overlay", "copy") and data["NCPU"] >= 1
    assert data["MemTotal"] > 0 and data["DefaultRuntime"] == "proot"


def test_info_without_proot_still_answers(oc: Any) -> None:
    r = oc("info", "-f", "{{.ProotVersion}}", env={"OPENCONTAINER_PROOT": "/nonexistent"})
    assert (r.returncode, r.stdout) == (0, "unknown\n")


def test_version_does_not_import_the_engine_runtime_or_aiohttp(oc: Any,
                                                               oc_env: dict[str, str]) -> None:
    import sys

    assert oc("version").returncode == 0  # the first one probes proot (and caches it)
    code = (
        "import sys, io; from opencontainer.cli.main import main, CliContext;"
        "[main([c, '-f', '{{json .}}'], ctx=CliContext(stdout=io.StringIO())) for c in"
        " ('version',)];"
        "bad = [m for m in sys.modules if m.startswith(('aiohttp', 'opencontainer.engine',"
        " 'opencontainer.image', 'opencontainer.runtime', 'ruamel', 'structlog'))];"
        " print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=oc_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- usage errors ---------------------------------------------------------------------------
ALL = [(n, False) for n in {**cli_main.CONTAINER_COMMANDS, **cli_main.IMAGE_COMMANDS,
                            **cli_main.OTHER_COMMANDS}] + \
      [(n, True) for n in cli_main.COMPOSE_COMMANDS]


@pytest.mark.parametrize(("name", "compose"), ALL, ids=[
    ("compose " if c else "") + n for n, c in ALL])
def test_an_unknown_option_is_exit_125(name: str, compose: bool,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = (["compose"] if compose else []) + [name, "--no-such-option"]
    code, _, err = run(*argv)
    assert code == 125, err
    assert "error:" in capsys.readouterr().err  # argparse's usage message


@pytest.mark.parametrize("argv", [
    ["--no-such-option", "ps"], ["compose", "--no-such-option", "ps"], ["compose", "-f"],
    ["completion", "tcsh"], ["info", "extra"], ["ps", "-n", "many"],
])
def test_other_usage_errors_are_exit_125(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 125, (out, err)
    assert "Traceback" not in err


# -- completion -----------------------------------------------------------------------------
def _complete(script: Path, *words: str) -> list[str]:
    test = (f"source {script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
            "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_opencontainer\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    proc = subprocess.run(["bash", "-c", test], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_bash_completion(oc: Any, tmp_path: Path) -> None:
    r = oc("completion", "bash")
    assert r.returncode == 0, r.stderr
    script = tmp_path / "oc.bash"
    script.write_text(r.stdout)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert set(_complete(script, "opencontainer", "")) >= {"run", "ps", "compose", "version",
                                                          "info", "completion", "images"}
    assert _complete(script, "opencontainer", "ver") == ["version"]
    assert "--format" in _complete(script, "opencontainer", "ps", "--f")
    assert sorted(_complete(script, "opencontainer", "compose", "-f", "x.yml", "u")) == [
        "unpause", "up"]
    assert "--no-deps" in _complete(script, "opencontainer", "compose", "up", "--no-")
    assert _complete(script, "opencontainer", "completion", "") == ["bash", "zsh", "fish"]


def test_zsh_and_fish_completion(oc: Any) -> None:
    zsh = oc("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef opencontainer")
    assert "bashcompinit" in zsh.stdout and "complete -F _opencontainer" in zsh.stdout
    fish = oc("completion", "fish").stdout
    assert "-a version -d 'Show the version of the client and the engine'" in fish
    assert "__fish_seen_subcommand_from compose; and __fish_seen_subcommand_from up" in fish
    if shutil.which("fish"):
        assert subprocess.run(["fish", "--no-execute", "-c", fish]).returncode == 0
