"""runtime/zygote.py: a started step carries out the command it is handed as that command
would have run (``env -i``, our own Python steps in-process, anything else exec'd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from opencontainer.runtime import zygote
from opencontainer.runtime.overlay import step_argv


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    req = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)})
    return subprocess.run(step_argv("zygote", isolated=True), input=req, capture_output=True,
                          text=True, timeout=30, check=False)


def test_env_i_gives_exactly_its_environment_and_stdin_is_null(tmp_path: Path) -> None:
    res = _run(["/usr/bin/env", "-i", "A=1", "B=x=y", "/bin/sh", "-c",
                "env | sort; pwd; cat; echo end"], {"PATH": os.environ["PATH"], "C": "no"},
               tmp_path)
    lines = res.stdout.splitlines()
    assert "A=1" in lines and "B=x=y" in lines and not any(x.startswith("C=") for x in lines)
    assert lines[-2:] == [str(tmp_path), "end"], res.stderr


def test_our_seccomp_step_runs_in_process_then_execs(tmp_path: Path) -> None:
    seccomp = str(Path(zygote.__file__).with_name("seccomp.py"))
    res = _run([sys.executable, "-S", "-P", seccomp, "--enosys", "statx", "--",
                "/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"],
               {"PATH": os.environ["PATH"]}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "NoNewPrivs:\t1" in res.stdout and "Seccomp:\t2" in res.stdout


def test_missing_command_is_127_with_a_sentence(tmp_path: Path) -> None:
    res = _run(["/usr/bin/env", "-i", "PATH=/nowhere", "no-such-cmd"], {}, tmp_path)
    assert res.returncode == 127
    assert res.stderr.strip() == "opencontainer: cannot execute no-such-cmd: No such file " \
                                 "or directory"


def test_closed_unused_step_ends_quietly() -> None:
    res = subprocess.run(step_argv("zygote", isolated=True), input="", capture_output=True,
                         text=True, timeout=30, check=False)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_only_this_interpreter_and_copy_run_in_process() -> None:
    ours = str(Path(zygote.__file__).with_name("step.py"))
    assert zygote._our_script([sys.executable, "-I", "-S", ours, "native", "x"]) == \
        ("step", ["native", "x"])
    assert zygote._our_script(["/usr/bin/python3.99", "-S", ours]) is None
    assert zygote._our_script([sys.executable, "-S", "/elsewhere/step.py"]) is None
    assert zygote._env_i(["env", "-i", "A=1", "cmd"]) == ({"A": "1"}, ["cmd"])
    assert zygote._env_i(["env", "-u", "A", "cmd"]) is None
