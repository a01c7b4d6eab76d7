"""Real-world CI shell snippets, end to end: bash runs them with ``docker`` on PATH being
``opencontainer`` (a two-line shim), so each snippet is literally what a CI script types.

One module-wide home (one image store, the redis stand-in pulled once) and proot 5.4.0 (its
port map lets the container listen on 6379 whatever the host port is). The snippets run in
file order: the db started by the first is used by the next ones and removed by the cleanup.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencontainer.runtime.testing import free_port

pytestmark = pytest.mark.integration


@attrs.frozen
class Ci:
    env: dict[str, str]
    cwd: Path
    registry: str
    db_port: int

    def sh(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``bash -c script`` (no ``-e`` unless the script says so), as a CI job would."""
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=self.env, cwd=self.cwd, timeout=timeout, check=False)

    def ok(self, script: str, timeout: float = 300) -> str:
        r = self.sh(script, timeout)
        assert r.returncode == 0, (script, r.stdout, r.stderr)
        return r.stdout


def docker_env(root: Path, registries_conf: Path, proot: Path) -> dict[str, str]:
    """The environment of a CI job whose ``docker`` is ``opencontainer``: a fresh home under
    ``root``, the test registries, ``proot``, and a ``docker`` shim first on PATH."""
    bindir = root / "bin"
    bindir.mkdir()
    shim = bindir / "docker"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m opencontainer "$@"\n')
    shim.chmod(0o755)
    (root / "home").mkdir()
    (root / "oc-home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "OPENCONTAINER_"))}
    env.update(
        PATH=f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(root / "home"),
        OPENCONTAINER_HOME=str(root / "oc-home"),
        OPENCONTAINER_REGISTRIES_CONF=str(registries_conf),
        OPENCONTAINER_PROOT=str(proot),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


@pytest.fixture(scope="module")
def ci(tmp_path_factory: pytest.TempPathFactory, registries_conf: Path, proot_54: Path,
       test_images: Any, registry: Any) -> Iterator[Ci]:
    test_images["redis"]  # skips (fails in CI) when the Debian service image is unavailable
    root = tmp_path_factory.mktemp("ci-scripts")
    env = docker_env(root, registries_conf, proot_54)
    ci = Ci(env, root, registry.host, free_port())
    try:
        yield ci
    finally:
        ci.sh("docker rm -f $(docker ps -aq) >/dev/null 2>&1")


REDIS = "redis-server --save '' --appendonly no"


def test_start_a_db_and_wait_for_health(ci: Ci) -> None:
    out = ci.ok(f"""
        set -e
        docker run -d --name db --label ci=true -p {ci.db_port}:6379 \\
            --health-cmd 'redis-cli ping' --health-interval 1s --health-retries 60 \\
            redis:7 {REDIS}
        until [ "$(docker inspect -f '{{{{.State.Health.Status}}}}' db)" = healthy ]; do
            sleep 1
        done
        echo ready
    """, timeout=240)
    cid, ready = out.split()
    assert re.fullmatch(r"[0-9a-f]{64}", cid) and ready == "ready"
    assert ci.ok("docker inspect -f '{{.State.Status}} {{.Id}}' db").split() == ["running", cid]


def test_migrations_with_run_rm_then_exec(ci: Ci) -> None:
    out = ci.ok(f"""
        set -e
        docker run --rm --network host redis:7 redis-cli -h 127.0.0.1 -p {ci.db_port} \
            set schema_version 42
        docker exec db redis-cli get schema_version
    """)
    assert out == "OK\n42\n"
    assert ci.ok("docker ps -a --format '{{.Image}}'") == "redis:7\n"  # --rm left nothing


def test_read_the_published_port(ci: Ci) -> None:
    out = ci.ok("docker port db 6379/tcp")
    assert out.splitlines()[0] == f"0.0.0.0:{ci.db_port}"
    assert ci.ok("""docker inspect -f \
        '{{(index (index .NetworkSettings.Ports "6379/tcp") 0).HostPort}}' db""") == \
        f"{ci.db_port}\n"
    port = ci.ok("PORT=$(docker port db 6379 | head -1 | cut -d: -f2); "
                 "redis-cli -p $PORT ping 2>/dev/null || echo no-redis-cli")
    assert port.strip() in ("PONG", "no-redis-cli")


def test_logs_tail_and_ps_filters(ci: Ci) -> None:
    whole = ci.ok("docker logs db 2>&1").splitlines()
    tail = ci.ok("docker logs --tail 5 db 2>&1").splitlines()
    assert len(whole) > 5 and tail == whole[-5:]
    assert "Ready to accept connections" in "\n".join(whole)
    ids = ci.ok("docker ps --filter label=ci -q").split()
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{12}", ids[0])
    assert ci.ok("docker inspect -f '{{.Id}}' db").startswith(ids[0])
    assert ci.ok("docker ps --filter label=ci=true --format '{{.Names}} {{.State}}'") == \
        "db running\n"
    assert ci.ok("docker ps --filter label=nope -q") == ""


def test_docker_is_there(ci: Ci) -> None:
    version = ci.ok("docker version --format '{{.Server.Version}}'").strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    assert ci.ok("docker version --format '{{json .Client}}' | head -c1") == "{"
    info = ci.ok("docker info")
    assert re.search(r"^ Containers: 1$", info, re.M), info
    assert re.search(r"^  Running: 1$", info, re.M), info
    assert ci.ok("docker info --format '{{.ContainersRunning}}'") == "1\n"
    # the usual "is docker up" guard
    assert ci.ok("if ! docker info >/dev/null 2>&1; then echo down; else echo up; fi") == "up\n"


def test_images_format(ci: Ci) -> None:
    ci.ok("docker pull -q busybox")
    listed = ci.ok("docker images --format '{{.Repository}}:{{.Tag}}'").split()
    assert "redis:7" in listed and "busybox:latest" in listed
    assert ci.ok("docker images -q busybox | wc -l").strip() == "1"
    assert ci.ok("docker image inspect -f '{{.Os}}' busybox") == "linux\n"


def test_tag_and_push_to_the_registry(ci: Ci) -> None:
    ref = f"{ci.registry}/ci/busybox:build-1"
    ci.ok(f"set -e; docker tag busybox {ref}; docker push {ref} >/dev/null")
    assert ref.split("/", 1)[1] in ci.ok("docker images --format '{{.Repository}}:{{.Tag}}'")
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    digest = json.loads(out)["Digest"]
    assert ci.ok(f"docker image inspect -f '{{{{index .RepoDigests 0}}}}' {ref}").strip() \
        .endswith(digest)


def test_commit_then_run(ci: Ci) -> None:
    out = ci.ok("""
        set -e
        docker run --name builder busybox sh -c 'echo built > /artifact.txt'
        docker commit -c 'CMD ["cat", "/artifact.txt"]' builder ci/built:1 >/dev/null
        docker rm builder >/dev/null
        docker run --rm ci/built:1
        docker run --rm ci/built:1 ls /artifact.txt
    """)
    assert out == "built\n/artifact.txt\n"


def test_volume_create_ls_rm(ci: Ci) -> None:
    out = ci.ok("""
        set -e
        docker volume create cache
        docker run --rm -v cache:/cache busybox sh -c 'echo kept > /cache/f'
        docker run --rm -v cache:/cache busybox cat /cache/f
        docker volume ls -q | grep -x cache
        docker volume ls --format '{{.Driver}} {{.Name}}' | grep cache
        docker volume rm cache
        docker volume ls -q | grep -cx cache || true
    """)
    assert out == "cache\nkept\ncache\nlocal cache\ncache\n0\n"


def test_exit_codes(ci: Ci) -> None:
    assert ci.ok("docker run --rm busybox sh -c 'exit 3'; echo $?") == "3\n"
    r = ci.sh("docker run --rm busybox nosuchcmd; echo $?")
    assert r.stdout == "127\n" and "nosuchcmd" in r.stderr
    r = ci.sh("docker run --rm busybox /etc/passwd; echo $?")
    assert r.stdout == "126\n", r.stderr
    r = ci.sh("set -e\ndocker run --rm busybox sh -c 'echo step1; exit 4'\necho not-reached\n")
    assert r.returncode == 4 and r.stdout == "step1\n"
    r = ci.sh("docker exec db sh -c 'exit 5'; echo $?")
    assert r.stdout == "5\n"
    r = ci.sh("docker run --rm --no-such-flag busybox true; echo $?")
    assert r.stdout == "125\n" and "--no-such-flag" in r.stderr
    r = ci.sh("docker run -d --name db busybox true; echo $?")  # the name is taken
    assert r.stdout == "125\n" and "already in use" in r.stderr
    r = ci.sh("docker inspect nosuch >/dev/null; echo $?")
    assert r.stdout == "1\n"
    assert ci.ok("docker run --rm busybox true && echo chained") == "chained\n"


def test_wait_for_a_job_and_read_its_logs(ci: Ci) -> None:
    out = ci.ok("""
        set -e
        docker run -d --name job --label ci=true busybox sh -c 'echo working; exit 7' >/dev/null
        code=$(docker wait job)
        echo "code=$code"
        docker logs job
        docker inspect -f '{{.State.ExitCode}}' job
    """)
    assert out == "code=7\nworking\n7\n"


def test_cleanup(ci: Ci) -> None:
    ids = ci.ok("docker ps -aq -f label=ci").split()
    assert len(ids) == 2  # db and job
    removed = ci.ok("docker rm -f $(docker ps -aq -f label=ci)").split()
    assert removed == ids
    assert ci.ok("docker ps -aq -f label=ci") == ""
    ci.ok("docker run --name leftover busybox true")
    out = ci.ok("docker system prune -f")
    assert out.rstrip().splitlines()[-1].startswith("Total reclaimed space:")
    assert ci.ok("docker ps -aq") == ""
