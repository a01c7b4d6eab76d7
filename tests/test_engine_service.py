"""The attached ``run`` through the user's engine service (cli/thin.py, cli/engined.py):
what a user sees is what the in-process ``run`` gives (output, exit codes, stdin, signals),
the service starts on first use and ends when idle, and ``ps``/``logs``/``stop`` see the
containers it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opencontainer.cli import thin
from opencontainer.paths import Paths
from opencontainer.runtime import procfs

pytestmark = pytest.mark.integration


@pytest.fixture
def occ(oc: Any, oc_env: dict[str, str], test_images: Any) -> Iterator[Any]:
    oc.env = oc_env
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)
    sock = thin.socket_path(oc_env)
    if sock is not None:  # the service ends within a second of its socket going
        sock.unlink(missing_ok=True)


def service_pid(env: dict[str, str]) -> int | None:
    log = thin.runtime_dir(env) / thin.LOG_NAME
    pids = [int(line.split()[2]) for line in log.read_text().splitlines()
            if line.startswith("engine service ") and "listening" in line] \
        if log.exists() else []
    return pids[-1] if pids else None


def wait_for(what: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def spawn(env: dict[str, str], *args: str, pipes: bool = True) -> subprocess.Popen[str]:
    out = subprocess.PIPE if pipes else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "opencontainer", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True)


def running(oc: Any, name: str) -> bool:
    return name in oc("ps", "--format", "{{.Names}}").stdout.split()


def test_runtime_dir_is_the_paths_one(tmp_path: Path) -> None:
    envs: list[dict[str, str]] = [
        {"OPENCONTAINER_HOME": str(tmp_path / "h")},
        {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)},
        {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "missing")},
        {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")},
        {"HOME": str(tmp_path), "XDG_STATE_HOME": "relative"},
    ]
    for env in envs:
        assert thin.runtime_dir(env) == Paths.from_env(env).runtime, env


def test_run_rm_output_exit_code_and_stdin(occ: Any) -> None:
    res = occ("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (res.returncode, res.stdout) == (3, "out\n"), res.stderr
    assert "err" in res.stderr
    pid = service_pid(occ.env)
    assert pid is not None and procfs.alive(pid), "the first run starts the service"
    assert occ("ps", "-a", "-q").stdout == "", "--rm: nothing left"
    res = occ("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z; exit 5",
              input="piped through\n")
    assert (res.returncode, res.stdout) == (5, "PIPED THROUGH\n"), res.stderr
    assert service_pid(occ.env) == pid, "the second run uses the same service"
    # a usage error and a bad option: one sentence, exit 125, as in-process; the service
    # parses the line (the client does not), and says exactly what the in-process run says
    for bad in (["--rm", "--no-such-flag", "busybox", "true"], ["--rm", "-e"], []):
        res = occ("run", *bad)
        inline = occ("run", *bad, env={"OPENCONTAINER_ENGINE": "inline"})
        assert (res.returncode, res.stdout, res.stderr) == (125, "", inline.stderr), bad
        assert "Usage:" in res.stderr and "error:" in res.stderr
    assert service_pid(occ.env) == pid
    res = occ("run", "--rm", "-v", "/x:/y:bad", "busybox", "true")
    assert res.returncode == 125 and res.stderr.startswith("Error: "), res.stderr
    assert "Traceback" not in res.stderr


def test_detached_and_terminal_runs_are_left_to_the_client(occ: Any) -> None:
    """``-d`` (and ``-t``) are refused by the service unstarted, however the line hides them;
    the client then runs them itself, as before."""
    res = occ("run", "--name", "bg", "-e", "X=1", "--detach", "busybox", "sleep", "30")
    assert res.returncode == 0 and len(res.stdout.strip()) == 64, res.stderr
    assert running(occ, "bg")
    res = occ("run", "--rm", "-e", "X=-d", "busybox", "sh", "-c", "echo $X")
    assert (res.returncode, res.stdout) == (0, "-d\n"), res.stderr
    res = occ("run", "--help")
    assert res.returncode == 0 and res.stdout.startswith("\nUsage:  opencontainer run"), res


def test_the_client_asks_the_service_only_for_attached_runs() -> None:
    ask = thin.worth_asking
    assert ask(["--rm", "busybox", "ls", "-t", "-d"])  # the command's own options
    assert ask(["-i", "--rm", "-e", "A=1", "--name=x", "-v", "/a:/b", "img"])
    assert ask(["--", "img"])
    for line in (["-d", "img"], ["-it", "img"], ["--rm", "-dit", "img"], ["--tty", "img"],
                 ["--detach=true", "img"], ["--help"], ["-e", "A", "-t", "img"], []):
        assert not ask(line), line


def test_build_runs_in_the_service_as_in_process(occ: Any, tmp_path: Path) -> None:
    """``build`` goes to the service too: relative paths are the client's, the progress and
    the image ID reach its streams, errors are the in-process ones, the image runs."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY msg /msg\nRUN echo built >> /msg\n"
                                    "CMD [\"cat\", \"/msg\"]\n")
    (ctx / "msg").write_text("copied\n")
    res = occ("build", "-q", "-t", "svc/app:1", "--iidfile", "id.txt", "ctx", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("sha256:") and (tmp_path / "id.txt").read_text() == \
        res.stdout.strip()
    pid = service_pid(occ.env)
    assert pid is not None, "the build ran in the service"
    # an old proot's ENOSYS filter is not put on the service (no_new_privs: no newuidmap)
    assert "NoNewPrivs:\t0" in Path(f"/proc/{pid}/status").read_text()
    res = occ("build", "-t", "svc/app:1", "ctx", cwd=tmp_path)
    assert res.returncode == 0 and "CACHED" in res.stderr and "naming to" in res.stderr, res
    res = occ("run", "--rm", "svc/app:1")
    assert res.stdout == "copied\nbuilt\n", res
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    res = occ("build", str(ctx))
    inline = occ("build", str(ctx), env={"OPENCONTAINER_ENGINE": "inline"})
    assert res.returncode == inline.returncode != 0
    assert res.stderr.splitlines()[-1] == inline.stderr.splitlines()[-1]
    assert "Dockerfile:2" in res.stderr.splitlines()[-1]
    res = occ("build", "--no-such-flag", str(ctx))
    assert res.returncode == 125 and "unrecognized arguments" in res.stderr
    assert service_pid(occ.env) == pid


def test_ctrl_c_cancels_a_build_in_the_service(occ: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo started; sleep 60\n")
    proc = spawn(occ.env, "build", "--progress", "plain", str(tmp_path))
    try:
        assert proc.stderr is not None
        seen = ""
        while "started" not in seen:
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Interrupted." in err, err
    assert not [p for p in procfs.all_procs() if "sleep 60" in _cmdline(p.pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_inline_runs_without_a_service(occ: Any) -> None:
    res = occ("run", "--rm", "busybox", "echo", "hi", env={"OPENCONTAINER_ENGINE": "inline"})
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    assert service_pid(occ.env) is None
    assert not (thin.runtime_dir(occ.env) / thin.SOCKET_NAME).exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_reach_the_container(occ: Any, sig: int) -> None:
    proc = spawn(occ.env, "run", "--rm", "--name", "sleepy", "busybox", "sh", "-c",
                 "trap 'echo got it; exit 3' TERM INT; echo waiting; sleep 60 & wait")
    try:
        wait_for(lambda: "waiting" in occ("logs", "sleepy").stdout)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out) == (3, "waiting\ngot it\n"), err
    assert occ("ps", "-a", "-q").stdout == "", "--rm: removed after the signal"


def test_ps_logs_stop_see_the_services_container(occ: Any) -> None:
    proc = spawn(occ.env, "run", "--name", "web", "busybox", "sh", "-c",
                 "echo ready; sleep 60")
    try:
        wait_for(lambda: running(occ, "web"))
        wait_for(lambda: "ready" in occ("logs", "web").stdout)
        assert occ("inspect", "-f", "{{.State.Running}}", "web").stdout.strip() == "true"
        res = occ("stop", "-t", "1", "web")
        assert res.returncode == 0, res.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out == "ready\n"
    assert proc.returncode in (137, 143), err
    assert "web" in occ("ps", "-a", "--format", "{{.Names}}").stdout.split(), "kept (no --rm)"


def test_service_ends_when_idle(occ: Any) -> None:
    res = occ("run", "--rm", "busybox", "true", env={"OPENCONTAINER_ENGINE_IDLE": "1"})
    assert res.returncode == 0, res.stderr
    pid = service_pid(occ.env)
    assert pid is not None
    wait_for(lambda: not procfs.alive(pid) or _zombie(pid), timeout=15)
    assert not (thin.runtime_dir(occ.env) / thin.SOCKET_NAME).exists()
    res = occ("run", "--rm", "busybox", "echo", "again")  # a new one starts
    assert (res.returncode, res.stdout) == (0, "again\n"), res.stderr
    assert service_pid(occ.env) not in (None, pid)


def test_service_ends_with_its_home(occ: Any) -> None:
    assert occ("run", "--rm", "busybox", "true").returncode == 0
    pid = service_pid(occ.env)
    assert pid is not None
    (thin.runtime_dir(occ.env) / thin.SOCKET_NAME).unlink()
    wait_for(lambda: not procfs.alive(pid) or _zombie(pid), timeout=10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_client_killed_leaves_the_container_to_the_service(occ: Any) -> None:
    # (its output pipes stay open while the container runs: the service writes to them)
    proc = spawn(occ.env, "run", "--rm", "--name", "orphan", "busybox", "sleep", "60",
                 pipes=False)
    try:
        wait_for(lambda: running(occ, "orphan"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(0.3)
        assert running(occ, "orphan"), "docker run's container outlives its client"
        assert occ("rm", "-f", "orphan").returncode == 0
        wait_for(lambda: occ("ps", "-a", "-q").stdout == "")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_started_step_runs_the_container(occ: Any) -> None:
    """The service keeps a step started (runtime/zygote.py): the next container's process is
    that step (no interpreter start-up), and it runs as it would have."""
    proc = spawn(occ.env, "run", "--rm", "--name", "warm", "busybox", "sh", "-c",
                 "echo $HOME; pwd; sleep 30")
    try:
        wait_for(lambda: "/root" in occ("logs", "warm").stdout)
        assert occ("logs", "warm").stdout == "/root\n/\n"
        steps = {p.pid: p for p in procfs.all_procs() if "step.py zygote" in _cmdline(p.pid)}
        used = [p for p in procfs.all_procs() if p.ppid in steps and "sleep 30" in
                _cmdline(p.pid)]
        # native backend: the step is native.py, whose child is pid 1; proot: proot's tracee
        assert used or any("sleep 30" in _cmdline(c) for s in steps
                           for c in procfs.descendants(s)), "a started step ran it"
        assert occ("stop", "-t", "1", "warm").returncode == 0
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 143 or proc.returncode == 137, (out, err)
    finally:
        proc.kill()


def test_a_service_whose_code_changed_hands_over(occ: Any) -> None:
    """A service notices its files changed in place (an edit, a reinstall over them) and
    ends; the next run starts one with the new code."""
    assert occ("run", "--rm", "busybox", "true").returncode == 0
    first = service_pid(occ.env)
    import opencontainer

    module = Path(opencontainer.__file__).with_name("_version.py")
    st = module.stat()
    try:
        os.utime(module, ns=(st.st_atime_ns, time.time_ns() + 10**10))  # the newest file
        wait_for(lambda: first is not None and not procfs.alive(first))
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    log = (thin.runtime_dir(occ.env) / thin.LOG_NAME).read_text()
    assert "its code changed" in log, (module, log)
    assert occ("run", "--rm", "busybox", "true").returncode == 0
    assert service_pid(occ.env) not in (None, first)


def test_no_signal_is_ignored_in_the_container(occ: Any) -> None:
    """Python ignores SIGPIPE and SIGXFSZ; our steps must not hand that on (Docker's
    containers start with no signal ignored): ``yes | head -1`` ends quietly."""
    for env in ({}, {"OPENCONTAINER_ENGINE": "inline"}, {"OPENCONTAINER_RUNTIME": "proot"}):
        res = occ("run", "--rm", "busybox", "grep", "SigIgn", "/proc/self/status", env=env)
        assert res.stdout.split() == ["SigIgn:", "0000000000000000"], (env, res)
    res = occ("run", "--rm", "busybox", "sh", "-c", "yes | head -1")
    assert (res.returncode, res.stdout, res.stderr) == (0, "y\n", ""), res
