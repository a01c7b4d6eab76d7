"""runtime/step.py: the runtime steps run from their cached bytecode, answer as before."""

from __future__ import annotations

import subprocess

from opencontainer.runtime.overlay import step_argv


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)


def test_a_step_runs_its_main_with_the_arguments() -> None:
    res = _run(*step_argv("netns"), "--nonsense")
    assert res.returncode == 125
    assert res.stderr == "opencontainer: netns: unknown option '--nonsense'\n"


def test_an_unknown_step_is_refused_in_one_sentence() -> None:
    res = _run(*step_argv("nosuchstep"))
    assert res.returncode == 125 and "unknown step 'nosuchstep'" in res.stderr


def test_steps_start_without_the_public_api() -> None:
    probe = ("import sys; sys.argv[1:] = ['nsexec', '--bogus']; "
             "sys.path.insert(0, {here!r}); import step; code = step.run(); "
             "print(code, sorted(m for m in sys.modules if m.startswith('opencontainer')))")
    here = step_argv("nsexec")[-2].rsplit("/", 1)[0]
    res = _run(step_argv("nsexec")[0], "-S", "-P", "-c", probe.format(here=here))
    code, _, mods = res.stdout.partition(" ")
    assert code == "125", res.stderr
    # bare packages: no opencontainer.engine, errors, typing-heavy __init__
    assert "opencontainer.errors" not in mods and "opencontainer.engine" not in mods
