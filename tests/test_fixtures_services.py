"""The Debian service images (postgres, redis, node, python stand-ins)."""

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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.layout import extract_filter
from tests.fixtures.procs import free_port
from tests.fixtures.publish import ImageInfo, ImageSet
from tests.fixtures.push import RegistryClient
from tests.fixtures.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAMES = {"postgres": "library/postgres:15", "redis": "library/redis:7",
         "node": "library/node:18-alpine", "python": "library/python:3.11-slim"}


def test_service_images_pushed(registry: Registry, service_images: dict[str, ImageInfo]) -> None:
    client = RegistryClient(registry.url)
    layer_sets = set()
    for name, ref in NAMES.items():
        info = service_images[name]
        assert f"{info.repository}:{info.tag}" == ref
        assert info.docker_reference == f"docker.io/{ref}"
        resp = client.get_manifest(info.repository, info.tag)
        assert resp.headers["docker-content-digest"] == info.digest
        assert len(info.layers) == (5 if name == "postgres" else 4)
        for desc in info.layers:
            assert client.blob_exists(info.repository, desc["digest"])
        layer_sets.add(tuple(d["digest"] for d in info.layers[:4]))
    assert len(layer_sets) == 1  # one rootfs, four configs (+ the postgres entry point)
    pg = service_images["postgres"].config
    assert pg["Entrypoint"] == ["docker-entrypoint.sh"] and pg["Cmd"] == ["postgres"]
    assert "5432/tcp" in pg["ExposedPorts"] and "/var/lib/postgresql/data" in pg["Volumes"]
    redis = service_images["redis"].config
    assert redis["Cmd"] == ["redis-server", "--protected-mode", "no"]
    assert redis["WorkingDir"] == "/data"


def test_test_images_exposes_service_images_lazily(test_images: ImageSet) -> None:
    assert {"postgres", "redis", "node", "python"} <= set(test_images)
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


@pytest.mark.parametrize("argv", [
    ("python3", "-c", "import redis, psycopg2; print('ok')"),
    ("python", "-c", "print('ok')"),
    ("node", "-e", "require('pg'); console.log('ok')"),
    ("sh", "-c", "redis-server --version >/dev/null && postgres --version >/dev/null "
                 "&& ps --version >/dev/null && echo ok"),
])
def test_service_rootfs_software_runs(
    proot_54: Path, service_rootfs: Path, argv: tuple[str, ...]
) -> None:
    res = subprocess.run(_proot(proot_54, service_rootfs, *argv), env=BASE_ENV, capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


@pytest.mark.parametrize("fake_root", [False, True], ids=["as-user", "proot-0"])
def test_postgres_entrypoint_initializes_and_serves(
    proot_54: Path, service_rootfs: Path, fake_root: bool
) -> None:
    """initdb + serve; with ``proot -0`` the entry point drops to ``postgres`` first."""
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
