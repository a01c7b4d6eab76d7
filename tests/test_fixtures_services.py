"""The Debian service images (postgres, redis, nginx, node, python stand-ins): their configs and
entry points (unit level), the images in the registry, the unpacked rootfs under raw proot, and
the official start-up dance (root -> chown -> gosu) through ``opencontainer run``."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.layout import extract_filter
from tests.fixtures.procs import free_port
from tests.fixtures.publish import ImageInfo, ImageSet
from tests.fixtures.push import RegistryClient
from tests.fixtures.registry import Registry
from tests.fixtures.services import HERE, SERVICE_IMAGES, image_layer_entries

integration = [pytest.mark.integration, pytest.mark.slow]

NAMES = {"postgres": "library/postgres:15", "redis": "library/redis:7",
         "nginx": "library/nginx:1.25", "node": "library/node:18-alpine",
         "python": "library/python:3.11-slim", "ryuk": "testcontainers/ryuk:0.8.1"}
OWN_LAYER = {"postgres", "redis", "nginx", "ryuk"}


# --- unit level: configs and entry point scripts ------------------------------------------------


def test_service_configs_start_as_root_like_the_official_images() -> None:
    assert {name: f"{repo}:{tag}" for name, (repo, tag, _) in SERVICE_IMAGES.items()} == NAMES
    for _, _, config in SERVICE_IMAGES.values():
        assert "User" not in config
    pg = SERVICE_IMAGES["postgres"][2]
    assert pg["Entrypoint"] == ["docker-entrypoint.sh"] and pg["Cmd"] == ["postgres"]
    assert pg["StopSignal"] == "SIGINT" and "/var/lib/postgresql/data" in pg["Volumes"]
    assert "PGDATA=/var/lib/postgresql/data" in pg["Env"]
    redis = SERVICE_IMAGES["redis"][2]
    assert redis["Entrypoint"] == ["docker-entrypoint.sh"] and redis["Cmd"] == ["redis-server"]
    assert redis["WorkingDir"] == "/data" and "/data" in redis["Volumes"]
    nginx = SERVICE_IMAGES["nginx"][2]
    assert nginx["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert nginx["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert nginx["StopSignal"] == "SIGQUIT" and nginx["ExposedPorts"] == {"80/tcp": {}}


def _layer_files(name: str) -> dict[str, Any]:
    return {e.path: e for e in image_layer_entries(name)}


def test_image_layers_hold_the_entry_points_and_nginx_config() -> None:
    pg = _layer_files("postgres")
    assert pg["usr/local/bin/docker-entrypoint.sh"].mode == 0o755
    assert pg["docker-entrypoint.sh"].target == "usr/local/bin/docker-entrypoint.sh"
    assert _layer_files("redis")["usr/local/bin/docker-entrypoint.sh"].mode == 0o755
    ng = _layer_files("nginx")
    assert ng["docker-entrypoint.sh"].mode == 0o755 and ng["docker-entrypoint.d"].kind == "dir"
    assert ng["var/log/nginx/access.log"].target == "/dev/stdout"
    assert ng["var/log/nginx/error.log"].target == "/dev/stderr"
    assert b"Welcome to nginx!" in ng["usr/share/nginx/html/index.html"].content
    conf = ng["etc/nginx/nginx.conf"].content.decode()
    assert "user www-data;" in conf and "include /etc/nginx/conf.d/*.conf;" in conf
    assert "listen 80;" in ng["etc/nginx/conf.d/default.conf"].content.decode()
    assert image_layer_entries("node") == [] and image_layer_entries("python") == []


def _code_lines(script: str) -> list[str]:
    return [line.strip() for line in (HERE / script).read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_entry_points_chown_and_gosu_without_fallbacks() -> None:
    pg = _code_lines("postgres-entrypoint.sh")
    assert """find "$PGDATA" \\! -user postgres -exec chown postgres '{}' +""" in pg
    assert """find /var/run/postgresql \\! -user postgres -exec chown postgres '{}' +""" in pg
    assert 'exec gosu postgres "$BASH_SOURCE" "$@"' in pg
    redis = _code_lines("redis-entrypoint.sh")
    assert """find . \\! -user redis -exec chown redis '{}' +""" in redis
    assert 'exec gosu redis "$0" "$@"' in redis
    for line in pg + redis:
        assert "setpriv" not in line and "perl" not in line and "su-exec" not in line
        if "chown" in line or "gosu" in line:
            assert "||" not in line and "2>/dev/null" not in line, line
    assert not any("/etc/passwd" in line for line in pg)  # nss_wrapper, not a passwd edit


def _stub_bin(tmp_path: Path, uid: int, fail: str = "") -> dict[str, str]:
    """A PATH with stand-ins for ``id``, ``find``, ``gosu`` and ``redis-server``/``postgres``
    that log their arguments (``fail`` names one that exits 1 instead)."""
    bindir = tmp_path / "stub-bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    for name in ("find", "gosu", "redis-server", "postgres"):
        code = "exit 1" if name == fail else "exit 0"
        (bindir / name).write_text(f'#!/bin/sh\necho "{name} $*" >>"{log}"\n'
                                   f'[ {name} = redis-server ] && echo "umask $(umask)" >>"{log}"\n'
                                   f"{code}\n")
    (bindir / "id").write_text(f"#!/bin/sh\n[ \"$1\" = -u ] && echo {uid} || echo {uid}\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    return {"PATH": f"{bindir}:/usr/bin:/bin", "LOG": str(log)}


def _run_entry(script: str, env: dict[str, str], *args: str,
               cwd: Path | None = None) -> tuple[int, list[str]]:
    res = subprocess.run(["sh" if script.startswith(("redis", "nginx")) else "bash",
                          str(HERE / script), *args], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=30, check=False)
    log = Path(env["LOG"])
    return res.returncode, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(("args", "expected"), [
    ((), ["redis-server --protected-mode no", "umask 0077"]),
    (("--port", "7000"), ["redis-server --protected-mode no --port 7000", "umask 0077"]),
    (("redis-server", "--protected-mode", "yes"),
     ["redis-server --protected-mode no --protected-mode yes", "umask 0077"]),
])
def test_redis_entry_point_arguments(
    tmp_path: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    env = _stub_bin(tmp_path, uid=1000)
    rc, calls = _run_entry("redis-entrypoint.sh", env, *(args or ("redis-server",)))
    assert rc == 0 and calls == expected


def test_redis_entry_point_keeps_a_config_files_protected_mode(tmp_path: Path) -> None:
    env = _stub_bin(tmp_path, uid=1000)
    conf = tmp_path / "redis.conf"
    conf.write_text("protected-mode yes\n")
    assert _run_entry("redis-entrypoint.sh", env, str(conf))[1][0] == f"redis-server {conf}"
    conf.write_text("port 7000\n")
    assert _run_entry("redis-entrypoint.sh", env, str(conf))[1][-2] == \
        f"redis-server {conf} --protected-mode no"


@pytest.mark.parametrize("fail", ["", "find", "gosu"])
def test_redis_entry_point_as_root_chowns_then_gosu(tmp_path: Path, fail: str) -> None:
    env = _stub_bin(tmp_path, uid=0, fail=fail)
    rc, calls = _run_entry("redis-entrypoint.sh", env, "redis-server", cwd=tmp_path)
    script = str(HERE / "redis-entrypoint.sh")
    full = ["find . ! -user redis -exec chown redis {} +", f"gosu redis {script} redis-server"]
    if fail == "find":  # no fallback: a failed chown stops the container before gosu
        assert rc != 0 and calls == full[:1]
    else:
        assert (rc != 0) == (fail == "gosu") and calls == full


@pytest.mark.parametrize("fail", ["", "find", "gosu"])
def test_postgres_entry_point_as_root_chowns_then_gosu(tmp_path: Path, fail: str) -> None:
    env = _stub_bin(tmp_path, uid=0, fail=fail)
    pgdata = tmp_path / "pgdata"
    env["PGDATA"] = str(pgdata)
    rc, calls = _run_entry("postgres-entrypoint.sh", env, "postgres")
    script = str(HERE / "postgres-entrypoint.sh")
    full = [f"find {pgdata} ! -user postgres -exec chown postgres {{}} +",
            "find /var/run/postgresql ! -user postgres -exec chown postgres {} +",
            f"gosu postgres {script} postgres"]
    assert pgdata.is_dir() and oct(pgdata.stat().st_mode & 0o777) == "0o700"
    if fail == "find":
        assert rc != 0 and calls == full[:1]
    else:
        assert (rc != 0) == (fail == "gosu") and calls == full


def test_postgres_entry_point_refuses_to_init_without_password(tmp_path: Path) -> None:
    env = _stub_bin(tmp_path, uid=1000)
    env["PGDATA"] = str(tmp_path / "pgdata")
    res = subprocess.run(["bash", str(HERE / "postgres-entrypoint.sh"), "postgres"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 1
    assert "superuser password is not specified" in res.stderr
    assert not Path(env["LOG"]).exists()  # neither initdb nor postgres ran


# --- the images in the registry and the unpacked rootfs ---------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_service_images_pushed(registry: Registry, service_images: dict[str, ImageInfo]) -> None:
    client = RegistryClient(registry.url)
    layer_sets = set()
    for name, ref in NAMES.items():
        info = service_images[name]
        assert f"{info.repository}:{info.tag}" == ref
        assert info.docker_reference == f"docker.io/{ref}"
        resp = client.get_manifest(info.repository, info.tag)
        assert resp.headers["docker-content-digest"] == info.digest
        assert len(info.layers) == (5 if name in OWN_LAYER else 4)
        for desc in info.layers:
            assert client.blob_exists(info.repository, desc["digest"])
        layer_sets.add(tuple(d["digest"] for d in info.layers[:4]))
        assert info.config == SERVICE_IMAGES[name][2]
    assert len(layer_sets) == 1  # one rootfs, five configs (+ an own top layer for three)


@pytest.mark.integration
@pytest.mark.slow
def test_test_images_exposes_service_images_lazily(test_images: ImageSet) -> None:
    assert {"postgres", "redis", "nginx", "node", "python"} <= set(test_images)
    assert test_images["redis"].repository == "library/redis"


@pytest.fixture(scope="module")
def service_rootfs(registry: Registry, service_images: dict[str, ImageInfo]) -> Iterator[Path]:
    """The service image unpacked (naively, with tarfile) into a short temp path."""
    info = service_images["postgres"]
    client = RegistryClient(registry.url)
    root = Path(tempfile.mkdtemp(prefix="ocsvc-", dir="/tmp"))
    root.chmod(0o755)  # as real root the entrypoint drops to uid 101, which must get in
    rootfs = root / "r"
    rootfs.mkdir()
    for desc in info.layers:
        blob = root / "layer.tar.gz"
        blob.write_bytes(client.get_blob(info.repository, desc["digest"]))
        with gzip.open(blob) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                if os.geteuid() != 0:
                    member.mode |= 0o200 if not member.isdir() else 0o700
                tar.extract(member, rootfs, **extract_filter("fully_trusted"))
        blob.unlink()
    yield rootfs
    subprocess.run(["chmod", "-R", "u+rwX", str(root)], check=False)
    shutil.rmtree(root, ignore_errors=True)


def _proot(binary: Path, rootfs: Path, *argv: str) -> list[str]:
    # proot 5.4.0: Debian's 5.1.0 lacks statx, which breaks node's module resolution
    return [str(binary), "-r", str(rootfs), "-b", "/proc", "-b", "/dev", "-b", "/sys",
            "-w", "/", *argv]


BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/lib/postgresql/15/bin:/usr/sbin:"
                    "/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
            "NODE_PATH": "/usr/share/nodejs"}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ("python3", "-c", "import redis, psycopg2; print('ok')"),
    ("python", "-c", "print('ok')"),
    ("node", "-e", "require('pg'); console.log('ok')"),
    ("sh", "-c", "redis-server --version >/dev/null && postgres --version >/dev/null "
                 "&& ps --version >/dev/null && gosu --version >/dev/null "
                 "&& nginx -v 2>/dev/null && echo ok"),
])
def test_service_rootfs_software_runs(
    proot_54: Path, service_rootfs: Path, argv: tuple[str, ...]
) -> None:
    res = subprocess.run(_proot(proot_54, service_rootfs, *argv), env=BASE_ENV, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("fake_root", [False, True], ids=["as-user", "proot-0"])
def test_postgres_entrypoint_initializes_and_serves(
    proot_54: Path, service_rootfs: Path, fake_root: bool
) -> None:
    """initdb + serve; as the plain user through nss_wrapper, with ``proot -0`` after chowning
    PGDATA and ``gosu postgres``."""
    if shutil.which("psql") is None:
        pytest.skip("host psql (postgresql-client) not installed")
    port = free_port()
    pgdata = f"/var/lib/postgresql/data/{'fake-root' if fake_root else 'user'}"
    env = {**BASE_ENV, "POSTGRES_PASSWORD": "pw-test", "POSTGRES_USER": "appuser",
           "POSTGRES_DB": "appdb", "PGDATA": pgdata, "PGPORT": str(port)}
    log = (service_rootfs.parent / "pg.log").open("wb")
    argv = _proot(proot_54, service_rootfs, "docker-entrypoint.sh", "postgres")
    if fake_root:
        argv.insert(1, "-0")
    proc = subprocess.Popen(argv,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 90
        ok = False
        while time.monotonic() < deadline and proc.poll() is None:
            res = subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "appuser", "-d", "appdb",
                 "-tAc", "select current_database()"],
                env={**os.environ, "PGPASSWORD": "pw-test", "PGCONNECT_TIMEOUT": "2"},
                capture_output=True, text=True, timeout=30, check=False)
            if res.returncode == 0 and res.stdout.strip() == "appdb":
                ok = True
                break
            time.sleep(0.5)
        if not ok:
            _stop_postgres(service_rootfs / pgdata.lstrip("/"), proc)
            out = (service_rootfs.parent / "pg.log").read_text(errors="replace")
            pytest.fail(f"postgres never served appdb (rc {proc.returncode}); output:\n"
                        f"{out[-3000:]}")
    finally:
        _stop_postgres(service_rootfs / pgdata.lstrip("/"), proc)


def _stop_postgres(datadir: Path, proc: subprocess.Popen[bytes]) -> None:
    """SIGINT the postmaster (its pid is in postmaster.pid; proot waits for it), then the
    proot process group; SIGKILL whatever is left."""
    pidfile = datadir / "postmaster.pid"
    pid = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().split()[0])
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


# --- the official start-up dance through `opencontainer run` (copy root, proot 5.4.0) ---------


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One image store for the tests below: the big shared layers are pulled once."""
    return tmp_path_factory.mktemp("svc-oc-home")


@pytest.fixture
def svc(oc: Any, oc_env: dict[str, str], proot_54: Path, shared_home: Path) -> Iterator[Any]:
    """``oc`` on proot 5.4.0 with a copied container root (``OPENCONTAINER_ROOTFS=copy``) and
    the shared image store; every container a test leaves behind is removed afterwards."""
    oc_env.update(OPENCONTAINER_PROOT=str(proot_54), OPENCONTAINER_ROOTFS="copy",
                  OPENCONTAINER_HOME=str(shared_home))
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left, timeout=120)


def _poll(check: Any, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def _owner(svc: Any, name: str, path: str) -> str:
    res = svc("exec", name, "stat", "-c", "%U", path)
    assert res.returncode == 0, res.stderr
    return str(res.stdout.strip())


def _xfail_unless_owner(owner: str, name: str, path: str, user: str) -> None:
    """``stat -c %U path`` in the container must say ``user``, as under Docker. The runtime's
    fake root (``proot -0``) does not remember chown yet: a file the user's uid really owns looks
    owned by whoever looks (root for ``exec``), so until it does this is an expected failure."""
    if owner != user:
        pytest.xfail(f"runtime: `oc exec {name} stat -c %U {path}` says {owner!r}, not "
                     f"{user!r}: the fake root does not remember the entry point's chown")


def _logs(svc: Any, name: str) -> str:
    res = svc("logs", name)
    return f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}"


@pytest.mark.integration
@pytest.mark.slow
def test_postgres_starts_as_root_and_drops_to_postgres(svc: Any, test_images: ImageSet) -> None:
    test_images["postgres"]
    if shutil.which("psql") is None:
        pytest.skip("host psql (postgresql-client) not installed")
    port = free_port()
    try:
        res = svc("run", "-d", "--name", "pg", "-e", "POSTGRES_PASSWORD=pw-test",
                  "-p", f"{port}:5432", "postgres:15", timeout=600)
        assert res.returncode == 0, res.stderr

        env = {**os.environ, "PGPASSWORD": "pw-test", "PGCONNECT_TIMEOUT": "2"}

        def answers() -> bool:
            r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "-tAc", "SELECT 1"], env=env, capture_output=True, text=True,
                               timeout=30, check=False)
            return r.returncode == 0 and r.stdout.strip() == "1"

        assert _poll(answers), _logs(svc, "pg")
        assert "PostgreSQL init process complete; ready for start up." in svc("logs", "pg").stdout
        # the server runs as postgres (gosu), so do the programs it starts
        res = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-v",
             "ON_ERROR_STOP=1", "-tAc", "CREATE TEMP TABLE who (name text); "
             "COPY who FROM PROGRAM 'id -un'; SELECT name FROM who"],
            env=env, capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == 0 and res.stdout.split()[-1] == "postgres", res.stderr
        res = svc("exec", "pg", "stat", "-c", "%a", "/var/lib/postgresql/data")
        assert res.returncode == 0 and res.stdout.strip() == "700", res.stderr
        owner = _owner(svc, "pg", "/var/lib/postgresql/data")
        assert svc("stop", "pg", timeout=120).returncode == 0
        assert "Exited (0)" in svc("ps", "-a", "--filter", "name=pg").stdout
        _xfail_unless_owner(owner, "pg", "/var/lib/postgresql/data", "postgres")
    finally:
        svc("rm", "-f", "pg", timeout=120)


@pytest.mark.integration
@pytest.mark.slow
def test_redis_starts_as_root_and_drops_to_redis(svc: Any, test_images: ImageSet) -> None:
    test_images["redis"]
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed")
    port = free_port()

    def cli(*args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()

    try:
        res = svc("run", "-d", "--name", "rd", "-p", f"{port}:6379", "redis:7", timeout=600)
        assert res.returncode == 0, res.stderr
        assert _poll(lambda: cli("ping") == "PONG"), _logs(svc, "rd")
        # the entry point's doing: --protected-mode no, umask 0077, the data dir is redis's
        assert cli("config", "get", "protected-mode").split() == ["protected-mode", "no"]
        assert cli("save") == "OK"
        res = svc("exec", "rd", "stat", "-c", "%a", "/data/dump.rdb")
        assert res.returncode == 0 and res.stdout.strip() == "600", res.stderr
        _xfail_unless_owner(_owner(svc, "rd", "/data"), "rd", "/data", "redis")
    finally:
        svc("rm", "-f", "rd", timeout=120)


@pytest.mark.integration
@pytest.mark.slow
def test_nginx_master_binds_port_80(svc: Any, test_images: ImageSet, tmp_path: Path) -> None:
    test_images["nginx"]
    port = free_port()
    hooks = tmp_path / "entrypoint.d"
    hooks.mkdir()
    hook = hooks / "50-hello.sh"
    hook.write_text("#!/bin/sh\necho hello-from-hook > /usr/share/nginx/html/hook.txt\n")
    hook.chmod(0o755)
    (hooks / "60-ignored.txt").write_text("not a script\n")

    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return str(resp.read().decode())

    def serves() -> bool:
        try:
            return "Welcome to nginx!" in get("/")
        except OSError:
            return False

    try:
        res = svc("run", "-d", "--name", "web", "-p", f"{port}:80",
                  "-v", f"{hooks}:/docker-entrypoint.d", "nginx:1.25", timeout=600)
        assert res.returncode == 0, res.stderr
        assert _poll(serves), _logs(svc, "web")
        assert get("/hook.txt") == "hello-from-hook\n"
        out = svc("logs", "web").stdout
        assert "Launching /docker-entrypoint.d/50-hello.sh" in out
        assert "Ignoring /docker-entrypoint.d/60-ignored.txt" in out
        # the access log is the container's stdout
        assert _poll(lambda: '"GET / HTTP/1.1" 200' in svc("logs", "web").stdout, 20), \
            _logs(svc, "web")
        assert svc("stop", "web", timeout=120).returncode == 0
    finally:
        svc("rm", "-f", "web", timeout=120)
