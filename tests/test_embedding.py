"""The embedding API (``from opencontainer import ...``) and docs/embedding.md's examples.

The examples are files under docs/examples/ that the markdown shows verbatim; they are type
checked with ``mypy --strict`` and the embedding example (with the example plugin loaded) runs a
busybox project from the test registry under real proot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import attrs
import pytest

import opencontainer
from opencontainer import (
    ContainerSnapshot,
    DownOptions,
    Engine,
    Exited,
    LogLine,
    Plugin,
    Started,
    StateError,
    UpOptions,
)
from opencontainer.engine import events as ev
from opencontainer.engine.model import ProjectModel, ServiceConfig
from opencontainer.engine.runner import ShellRunner

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "embedding.md"
EXAMPLES = ROOT / "docs" / "examples"
EMBED = EXAMPLES / "embed.py"
PLUGIN_DIR = EXAMPLES / "plugins"


# -- the public names ----------------------------------------------------------------------------
def test_import_opencontainer_loads_no_engine() -> None:
    code = ("import sys, opencontainer\n"
            "heavy = ('opencontainer.engine', 'opencontainer.compose', 'aiohttp', 'anyio')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=ROOT)
    assert r.stdout.strip() == "[]"


def test_every_public_name_resolves_and_is_documented() -> None:
    assert len(set(opencontainer.__all__)) == len(opencontainer.__all__)
    for name in opencontainer.__all__:
        value = getattr(opencontainer, name)
        if name == "__version__":
            continue
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"
    assert set(ev.__all__) <= set(opencontainer.__all__)
    assert opencontainer.events is ev
    for cls in (Engine, ContainerSnapshot):
        for attr, member in vars(cls).items():
            if not attr.startswith("_") and callable(member):
                assert (member.__doc__ or "").strip(), f"{cls.__name__}.{attr} has no docstring"
    with pytest.raises(AttributeError):
        opencontainer.Nope  # type: ignore[attr-defined]  # noqa: B018


# -- the examples: shown verbatim, type checked --------------------------------------------------
def test_the_markdown_shows_the_example_files_verbatim() -> None:
    text = DOC.read_text()
    shown = dict(re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", text, re.S))
    assert set(shown) == {"docs/examples/embed.py", "docs/examples/plugins/exit_report.py"}
    for rel, code in shown.items():
        assert code == (ROOT / rel).read_text(), f"{rel} differs from docs/embedding.md"


def _mypy() -> list[str]:
    beside = Path(sys.executable).with_name("mypy")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mypy")
    if not found:
        pytest.skip("mypy is not installed (it is in the 'test' extra)")
    return [found]


def _run_mypy(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_mypy(), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_the_examples_pass_mypy_strict_and_misuse_is_caught(tmp_path: Path) -> None:
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        "import opencontainer\n"
        "from opencontainer import Engine, Exited, LoadOptions, Plugin, load_project\n\n\n"
        "async def main() -> None:\n"
        "    project = load_project(LoadOptions(files=('compose.yaml',)))\n"
        "    async with Engine() as engine:\n"
        "        await engine.up(project, wait=True)\n"
        "        async with engine.subscribe(Exited) as exits:\n"
        "            async for e in exits:\n"
        "                e.exit_code + 'x'\n\n\n"
        "class NotAPlugin:\n"
        "    subscriptions = (Exited,)\n\n\n"
        "p: Plugin = NotAPlugin()\n"
        "e = opencontainer.Engin\n")
    examples = sorted(EXAMPLES.rglob("*.py"))
    assert EMBED in examples and PLUGIN_DIR / "exit_report.py" in examples
    r = _run_mypy(tmp_path, *examples, misuse)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith(str(misuse)) for line in errors), r.stdout
    # Engine, its events and the Plugin protocol are real types, not Any
    assert 'Unexpected keyword argument "wait" for "up" of "Engine"' in r.stdout
    assert 'Unsupported operand types for + ("int" and "str")' in r.stdout
    assert 'variable has type "Plugin"' in r.stdout
    assert 'Module has no attribute "Engin"' in r.stdout


# -- the engine with a host-shell runner ---------------------------------------------------------
def _project(tmp_path: Path) -> ProjectModel:
    svc = ServiceConfig(name="web", image="sh", shell_script=(
        "echo ready; trap 'exit 0' TERM; while :; do sleep 0.05; done"))
    return ProjectModel(name="emb", working_dir=str(tmp_path), services={"web": svc})


async def test_ps_snapshots_subscribe_and_options(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {"OPENCONTAINER_HOME": str(tmp_path / "home"), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    async with Engine(env=env, runner=ShellRunner()) as engine:
        async with engine.subscribe(LogLine, Started) as stream:
            result = await engine.up(project, UpOptions(wait=True, wait_timeout=10))
            assert result.ok, result.errors
            seen: list[ev.ContainerEvent] = []
            with anyio.fail_after(10):
                async for event in stream:  # typed: the common base of LogLine and Started
                    seen.append(event)
                    if {type(e) for e in seen} == {LogLine, Started}:
                        break
        assert [e.text for e in seen if isinstance(e, LogLine)] == ["ready"]
        assert {e.container for e in seen} == {"emb-web-1"}

        (before,) = engine.ps(project)
        assert (before.name, before.service, before.status) == ("emb-web-1", "web", "running")
        assert before.pid and before.running
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            before.status = "exited"  # type: ignore[misc]
        assert engine.ps("emb") == [before]

        async with engine.subscribe(Exited) as exits:
            removed = await engine.down(project, DownOptions(timeout=5))
            with anyio.fail_after(10):
                exited = await exits.__anext__()
        assert removed == ["emb-web-1"]
        assert exited.container == "emb-web-1" and exited.exit_code == 0
        assert before.status == "running"  # the snapshot did not follow the container
        assert engine.ps(project) == []


async def test_up_from_inside_a_task_group_the_caller_leaves_first(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {"OPENCONTAINER_HOME": str(tmp_path / "home"), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    async with Engine(env=env, runner=ShellRunner()) as engine:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep_forever)
            assert (await engine.up(project)).ok
            tg.cancel_scope.cancel()
        (c,) = engine.ps(project)
        assert c.status == "running"
    # leaving the engine stopped the container
    assert c.pid is not None and _gone(c.pid)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


async def test_a_project_is_supervised_by_one_engine_at_a_time(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {"OPENCONTAINER_HOME": str(tmp_path / "home"), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    async with Engine(env=env, runner=ShellRunner()) as first:
        assert (await first.up(project)).ok
        async with Engine(env=env, runner=ShellRunner()) as second:
            with pytest.raises(StateError, match="locked by another opencontainer process"):
                await second.up(project)
        assert [c.status for c in first.ps(project)] == ["running"]
        await first.down(project)


class _Recorder:
    subscriptions = (Started,)

    def __init__(self) -> None:
        self.seen: list[ev.Event] = []

    async def handle(self, event: ev.Event) -> None:
        self.seen.append(event)


def test_a_plugin_class_is_a_plugin() -> None:
    assert isinstance(_Recorder(), Plugin)
    assert not isinstance(object(), Plugin)


# -- the embedding example, for real ------------------------------------------------------------
COMPOSE = """
services:
  hello:
    image: busybox
    command: ["sh", "-c", "echo hello from busybox; exec sleep 600"]
    stop_grace_period: 1s  # PID 1 sleep ignores SIGTERM (native backend): no 10 s wait
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_embedding_example_runs_busybox_under_proot(  # type: ignore[no-untyped-def]
        test_images, oc_env: dict[str, str], proot_54: Path, tmp_path: Path) -> None:
    test_images["busybox"]  # pushed to the test registry
    proj = tmp_path / "stack"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    report = tmp_path / "exits.txt"
    env = {**oc_env, "OPENCONTAINER_PROOT": str(proot_54),
           "OPENCONTAINER_PLUGIN_DIR": str(PLUGIN_DIR), "EXIT_REPORT": str(report),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), oc_env.get("PYTHONPATH")]))}
    # OPENCONTAINER_HOME and OPENCONTAINER_REGISTRIES_CONF come from oc_env
    assert env["OPENCONTAINER_HOME"] and env["OPENCONTAINER_REGISTRIES_CONF"]
    r = subprocess.run([sys.executable, str(EMBED), "compose.yaml"], cwd=proj, env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for expected in ("hello | hello from busybox", "stack-hello-1 is healthy",
                     "stack-hello-1: running healthy", "removed stack-hello-1"):
        assert expected in lines, r.stdout + r.stderr
    assert any(line.startswith("stack-hello-1 exited with code") for line in lines), r.stdout
    # the example plugin was loaded and wrote the exit
    assert report.read_text().startswith("stack-hello-1 exited with code"), r.stderr
    assert not [d for d in (proj / ".containers").iterdir() if (d / "state.json").exists()]
