"""The compose samples (compose-samples/*) really work: ``up --wait``, a request through the
published port returns data from the database, ``down`` leaves no process behind.

They run against the test registry: the samples name Docker Hub images (``postgres:15``,
``redis:7``, ``node:18-alpine``, ``python:3.11-slim``) and the ``registries_conf`` fixture
mirrors docker.io to the registry where ``service_images`` pushed the Debian-based stand-ins
(see tests/fixtures/services.py: Debian's PostgreSQL 15, Redis 7.0, Node 18 — glibc, not Alpine —
with node-pg in /usr/share/nodejs, Python 3.11 with python3-redis/python3-psycopg2; so the
samples' "npm/pip install when the module is missing" branch is not taken here).

Each sample is copied to a temp dir first (its ``.containers/`` state stays out of the repo)
and published on a free port (the samples read ``API_PORT`` & co.), so the host port differs
from the container port: proot 5.4.0 maps it with ``-p``, with 5.1.0 the engine must relay it.
``node-postgres`` (the README's quick start) runs in every platform profile (overlay and copied
roots, Android with Termux's proot) and once through the README's own install-and-run line; the
others run with the defaults on proot 5.4.0 only, to keep this file's run time reasonable.

Services share the host's loopback and, without proot 5.4's port map, really listen on their
container ports (3000, 5432, 6379, ...): do not run this file twice at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.procs import free_port

SAMPLES = Path(__file__).resolve().parent.parent / "compose-samples"
UP_TIMEOUT = 600.0


def _engine_or_skip() -> None:
    pytest.importorskip("opencontainer.engine.engine",
                        reason="the engine (opencontainer.engine.engine) is not written yet")


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = int(resp.status)
            ctype = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raw, status, ctype = exc.read(), int(exc.code), exc.headers.get("Content-Type", "")
    return status, (json.loads(raw) if "json" in ctype else raw.decode("utf-8", "replace"))


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Call ``check`` until it returns a truthy value (exceptions count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what or 'condition'} not met within {timeout:.0f} s; last: {last!r}")


def processes_under(path: Path) -> list[int]:
    """Pids whose command line, cwd or root mentions ``path`` (the copied sample's tree)."""
    needle = str(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle in cmdline or cwd == needle or cwd.startswith(needle + "/"):
            found.append(int(entry.name))
    return found


def kill_leftovers(pids: list[int]) -> None:
    for pid in pids:  # only processes of this test's own project tree
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# -- what each sample must serve --------------------------------------------------------------
def check_node_postgres(base: str) -> None:
    _, first = eventually(lambda: (r := http("GET", base + "/")) and r[0] == 200 and r,
                               what="GET / of the node API")
    assert "PostgreSQL" in first["server"] and first["database"] == "app"
    _, second = http("GET", base + "/")
    assert second["visits"] == first["visits"] + 1  # the row really went into postgres


def check_redis_worker(base: str) -> None:
    status, job = http("POST", base + "/jobs", b"hello rootless world")
    assert status == 202, job
    result = eventually(
        lambda: (r := http("GET", base + f"/jobs/{job['id']}")) and r[0] == 200 and r[1],
        what="the worker's result")
    assert result["upper"] == "HELLO ROOTLESS WORLD" and result["words"] == 3
    _, stats = http("GET", base + "/status")
    assert stats["processed"] >= 1 and stats["redis_version"].startswith("7")


def check_web_app_db(base: str) -> None:
    status, notes = eventually(
        lambda: (r := http("GET", base + "/api/notes")) and r[0] == 200 and r,
        what="GET /api/notes through the web front")
    assert [n["title"] for n in notes[:2]] == ["Welcome", "Rootless"]  # seeded by initdb.d
    status, new = http("POST", base + "/api/notes", json.dumps({"title": "from the test"}).encode(),
                       {"Content-Type": "application/json"})
    assert status == 201, new
    _, notes = http("GET", base + "/api/notes")
    assert notes[-1]["title"] == "from the test"
    status, page = http("GET", base + "/")
    assert status == 200 and "<h1>Notes</h1>" in page


def check_migration_job(base: str) -> None:
    _, items = eventually(lambda: (r := http("GET", base + "/items")) and r[0] == 200 and r,
                               what="GET /items")
    assert [(i["name"], i["stock"]) for i in items] == [("tea", 10), ("coffee", 10), ("cake", 0)]
    _, versions = http("GET", base + "/migrations")
    assert versions == ["001_create_items", "002_seed_items", "003_add_stock"]


CASES = [
    pytest.param("redis-python-worker", "STATUS_PORT", check_redis_worker, "5.4.0",
                 id="redis-python-worker"),
    pytest.param("web-app-db", "WEB_PORT", check_web_app_db, "5.4.0", id="web-app-db"),
    pytest.param("migration-job", "APP_PORT", check_migration_job, "5.4.0", id="migration-job"),
]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("sample", "port_var", "check", "proot_version"), CASES)
def test_sample_up_request_down(
    sample: str,
    port_var: str,
    check: Callable[[str], None],
    proot_version: str,
    oc: Callable[..., Any],
    service_images: dict[str, Any],
    proot_binaries: dict[str, Path],
    tmp_path: Path,
) -> None:
    _engine_or_skip()
    if proot_version not in proot_binaries:
        pytest.skip(f"proot {proot_version} is not available")
    project = tmp_path / sample
    shutil.copytree(SAMPLES / sample, project)
    port = free_port()
    env = {port_var: str(port), "OPENCONTAINER_PROOT": str(proot_binaries[proot_version])}
    try:
        up = oc("up", "-d", "--wait", cwd=project, env=env, timeout=UP_TIMEOUT)
        assert up.returncode == 0, f"up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        check(f"http://127.0.0.1:{port}")
        ps = oc("compose", "ps", cwd=project, env=env)
        assert ps.returncode == 0, ps.stderr
        down = oc("down", cwd=project, env=env, timeout=180)
        assert down.returncode == 0, f"down failed:\n{down.stderr[-3000:]}"
        eventually(lambda: not processes_under(project), timeout=15,
                   what="no process left after down")
    finally:
        if processes_under(project):  # a failed test: clean up what it started
            oc("down", cwd=project, env=env, timeout=180)
            kill_leftovers(processes_under(project))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_start_in_every_profile(poc: Callable[..., Any], profile: Any,
                                      service_images: dict[str, Any], tmp_path: Path) -> None:
    """The README's quick start (postgres, started as root: chown + gosu, like Docker Hub's;
    node querying it by service name) in every platform profile."""
    from tests.test_stack_busybox import root_modes

    project = tmp_path / "node-postgres"
    shutil.copytree(SAMPLES / "node-postgres", project)
    port = free_port()
    env = {"API_PORT": str(port)}
    try:
        up = poc("up", "-d", "--wait", cwd=project, env=env, timeout=UP_TIMEOUT)
        assert up.returncode == 0, f"up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        check_node_postgres(f"http://127.0.0.1:{port}")
        assert root_modes(project) == {profile.rootfs}
        down = poc("down", cwd=project, env=env, timeout=180)
        assert down.returncode == 0, f"down failed:\n{down.stderr[-3000:]}"
        eventually(lambda: not processes_under(project), timeout=15,
                   what="no process left after down")
    finally:
        if processes_under(project):
            poc("down", cwd=project, env=env, timeout=180)
            kill_leftovers(processes_under(project))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_first_command(oc_env: dict[str, str], service_images: dict[str, Any],
                              tmp_path: Path) -> None:
    """The README's install-and-run line, as a new user types it (their own HOME, Debian's
    proot on PATH), brings the quick start up; Docker Hub is mirrored to the test registry by
    the registries.conf of ``oc_env``, and API_PORT moves the published port off 3000."""
    repo = tmp_path / "clone"
    shutil.copytree(SAMPLES.parent, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "*.egg-info", "__pycache__", ".containers"))
    home = Path(oc_env["HOME"])
    port = free_port()
    env = {**oc_env, "API_PORT": str(port),
           "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR",
                                           str(Path.home() / ".cache" / "pip"))}
    env.pop("OPENCONTAINER_PROOT", None)
    env.pop("OPENCONTAINER_ROOTFS", None)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    line = ("bash scripts/install.sh && ~/.local/bin/opencontainer up "
            "-f compose-samples/node-postgres/compose.yaml")
    compose = repo / "compose-samples" / "node-postgres" / "compose.yaml"
    try:
        res = subprocess.run(["bash", "-c", line], cwd=repo, env=env, capture_output=True,
                             text=True, timeout=UP_TIMEOUT)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        check_node_postgres(f"http://127.0.0.1:{port}")
    finally:
        subprocess.run([str(home / ".local" / "bin" / "opencontainer"), "down", "-v", "-f",
                        str(compose)], cwd=repo, env=env, capture_output=True, timeout=180)
        kill_leftovers(processes_under(repo))


def test_every_sample_has_a_compose_file_and_readme() -> None:
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir())
    assert {p.name for p in samples} >= {"node-postgres", "redis-python-worker", "web-app-db",
                                         "migration-job"}
    for path in samples:
        assert (path / "compose.yaml").is_file(), path
        assert (path / "README.md").read_text().startswith(f"# {path.name}")


@pytest.mark.parametrize("sample", ["node-postgres", *(c.values[0] for c in CASES)])
def test_sample_loads_with_the_compose_loader(sample: str) -> None:
    loader = pytest.importorskip("opencontainer.compose.loader",
                                 reason="the compose loader is not written yet")
    options = getattr(loader, "LoadOptions", None)
    if options is None:
        options = pytest.importorskip("opencontainer.compose.model").LoadOptions
    env = {"PATH": os.environ.get("PATH", "")}
    project = loader.load_project(options(files=[SAMPLES / sample / "compose.yaml"], env=env))
    assert project.name == sample
    services = dict(project.services)
    assert len(services) >= 2
    for service in services.values():
        assert service.image, service
