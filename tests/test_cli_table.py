"""Issue 14's command lines, one test each: what ``docker <line>`` prints and exits with.

The lines that other tests already cover (test_cli_*.py, test_image_push_commit.py,
test_compose_runflags.py, test_ci_scripts.py) are not repeated here. Each line runs in bash with
``docker`` being ``opencontainer`` (see :func:`tests.test_ci_scripts.docker_env`), against one
module-wide home holding a running container ``web`` (label ci=true, port $HP -> 8080), an exited
one ``done`` (exit 3), a volume ``v1`` and a compose project ``citab`` (service ``app``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencontainer.runtime.testing import free_port
from tests.test_ci_scripts import docker_env

pytestmark = pytest.mark.integration


@attrs.frozen
class Box:
    env: dict[str, str]
    cwd: Path

    def sh(self, line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                              env=self.env, cwd=self.cwd, timeout=240, check=False)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, registries_conf: Path, proot_54: Path,
        test_images: Any) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("cli-table")
    env = docker_env(root, registries_conf, proot_54)
    env["HP"] = str(free_port())
    proj = root / "citab"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    command: sleep 1000\n"
        "    stop_grace_period: 1s\n")  # PID 1 sleep ignores SIGTERM: no 10 s wait
    b = Box(env, root)
    setup = b.sh("""
        set -e
        docker run -d --name web --label ci=true -p $HP:8080 busybox sleep 1000 >/dev/null
        docker run --name done busybox sh -c 'echo one; echo two; exit 3' >/dev/null || true
        docker volume create v1 >/dev/null
        cd citab && docker compose up -d 2>/dev/null
    """)
    assert setup.returncode == 0, setup.stderr
    try:
        yield b
    finally:
        b.sh("cd citab && docker compose down; docker rm -f $(docker ps -aq)")


# (command line, exit status, stdout as a regex (fullmatch, . matches newlines), in stderr)
LINES: list[tuple[str, int, str, str]] = [
    # -- what runs, what exits -------------------------------------------------------------------
    ("docker run --rm --add-host db.local:10.1.2.3 busybox grep db.local /etc/hosts", 0,
     r"10\.1\.2\.3\s+db\.local\n", ""),
    ("docker run --rm --dns 9.9.9.9 busybox grep nameserver /etc/resolv.conf", 0,
     r"nameserver 9\.9\.9\.9\n", ""),
    ("docker run --rm -a stdout busybox sh -c 'echo out; echo err >&2'", 0, r"out\n", ""),
    ("docker run -q --rm busybox echo quiet", 0, r"quiet\n", ""),
    ("docker run --rm --network host busybox echo host", 0, r"host\n", ""),
    ("docker run --rm --network none busybox echo none", 0, r"none\n", ""),
    ("docker run --rm -e A=1 --env B=2 busybox sh -c 'echo $A$B'", 0, r"12\n", ""),
    ("docker run --rm -w /tmp busybox pwd", 0, r"/tmp\n", ""),
    ("docker run --rm --entrypoint echo busybox from-entrypoint", 0, r"from-entrypoint\n", ""),
    ("echo piped | docker run --rm -i busybox cat", 0, r"piped\n", ""),
    ("docker run --rm --user 1000:1000 busybox id -u", 0, r"1000\n", ""),
    ("docker create --name made busybox true && docker start -a made && docker rm made", 0,
     r"[0-9a-f]{64}\nmade\n", ""),
    # -- what fails before the container runs: 125 ------------------------------------------------
    ("docker run --rm --restart always busybox true", 125, "", "--restart"),
    ("docker run --restart sometimes busybox true", 125, "", "restart policy"),
    ("docker run -p notaport busybox true", 125, "", "port"),
    ("docker run --rm --pull never nosuch/image:1 true", 125, "", "nosuch/image:1"),
    ("docker run --rm nosuch/image:1 true", 125, "", "nosuch/image"),
    ("docker run --rm --mount type=nfs,target=/x busybox true", 125, "", "--mount"),
    ("docker create --name web busybox true", 125, "", "already in use"),
    ("docker run", 125, "", "required"),
    ("docker ps --no-such-flag", 125, "", "--no-such-flag"),
    ("docker frobnicate", 1, "", "unknown command"),
    # -- the running container --------------------------------------------------------------------
    ("docker exec web sh -c 'exit 9'", 9, "", ""),
    ("docker exec -e X=y web sh -c 'echo $X'", 0, r"y\n", ""),
    ("docker exec -w /etc web pwd", 0, r"/etc\n", ""),
    ("docker exec nosuch true", 1, "", "nosuch"),
    ("docker top web", 0, r"UID\s+PID\s+PPID.*CMD\n.*sleep 1000.*", ""),
    ("docker port web", 0, r"8080/tcp -> 0\.0\.0\.0:\d+\n.*", ""),
    ("docker port web 8080 | head -1 | cut -d: -f2 | grep -x $HP", 0, r"\d+\n", ""),
    ("docker inspect -f '{{.State.Running}} {{.Config.Labels.ci}}' web", 0, r"true true\n", ""),
    # the image's labels are there too, as in docker
    ("docker inspect --format '{{json .Config.Labels}}' web", 0, r'\{"ci":"true",.*\}\n', ""),
    ("docker inspect -f '{{.Name}}' web", 0, r"/web\n", ""),
    ("docker container inspect -f '{{.State.Status}}' web", 0, r"running\n", ""),
    ("docker inspect -f '{{.Nope}}' web", 0, r"<no value>\n", ""),
    ("docker stats --no-stream --format '{{.Name}}' web", 0, r"web\n", ""),
    # -- the exited one ---------------------------------------------------------------------------
    ("docker wait done", 0, r"3\n", ""),
    ("docker logs --tail 1 done", 0, r"two\n", ""),
    ("docker logs -t done | head -1", 0, r"\d{4}-\d\d-\d\dT\S+Z one\n", ""),
    ("docker inspect -f '{{.State.ExitCode}} {{.State.Status}}' done", 0, r"3 exited\n", ""),
    ("docker start -a done", 3, r"one\ntwo\n", ""),
    # -- listings ---------------------------------------------------------------------------------
    ("docker ps --format '{{.Names}}' | sort", 0, r"citab-app-1\nweb\n", ""),
    ("docker ps -a --filter status=exited --format '{{.Names}}'", 0, r"done\n", ""),
    ("docker ps -a --filter exited=3 -q | wc -l", 0, r"1\n", ""),
    ("docker ps --filter name=web --format '{{.Names}}\t{{.Status}}'", 0, r"web\tUp .*\n", ""),
    ("docker ps --filter label=ci=true --format '{{.Ports}}'", 0,
     r"0\.0\.0\.0:\d+->8080/tcp\n", ""),
    ("docker ps --filter name=web --format json | python3 -c "
     "'import json,sys; print(json.loads(sys.stdin.read())[\"Names\"])'", 0, r"web\n", ""),
    ("docker ps -a --format '{{.Names}} {{.Label \"ci\"}}' --filter label=ci", 0,
     r"web true\n", ""),
    ("docker ps --format '{{.Nope}}'", 1, "", "can't evaluate field Nope"),
    ("docker ps -aq --no-trunc --filter name=web | wc -c", 0, r"65\n", ""),
    ("docker container ls -a --format '{{.Names}}' | sort", 0, r"citab-app-1\ndone\nweb\n", ""),
    ("docker container ls --filter label=ci -q | wc -l", 0, r"1\n", ""),
    ("docker image ls --format '{{.Repository}}:{{.Tag}}' busybox", 0, r"busybox:latest\n", ""),
    ("docker images --format '{{upper .Repository}} {{len .ID}}' busybox", 0,
     r"BUSYBOX \d+\n", ""),
    ("docker images --format 'table {{.Repository}}\t{{.Tag}}' busybox", 0,
     r"REPOSITORY\s+TAG\nbusybox\s+latest\n", ""),
    ("docker image inspect -f '{{.Os}}/{{.Architecture}}' busybox", 0, r"linux/\w+\n", ""),
    ("docker volume inspect -f '{{.Name}} {{.Driver}}' v1", 0, r"v1 local\n", ""),
    ("docker volume ls --filter name=v1 --format '{{.Name}}'", 0, r"v1\n", ""),
    ("docker network create ci-net && docker network ls --format '{{.Name}}' | grep -x ci-net"
     " && docker network inspect -f '{{.Name}}' ci-net && docker network rm ci-net", 0,
     r"\S+\nci-net\nci-net\nci-net\n", ""),
    ("docker system df", 0, r"TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n.*", ""),
    ("docker system info --format '{{.ContainersRunning}} {{.ContainersStopped}}'", 0,
     r"2 1\n", ""),
    ("docker version --format '{{.Client.Version}}'", 0, r"\d+\.\d+\.\d+\S*\n", ""),
    ("docker version -f '{{json .Server.Version}}'", 0, r'"\d+\.\d+\.\d+\S*"\n', ""),
    # -- compose ----------------------------------------------------------------------------------
    ("cd citab && docker compose ps --format '{{.Service}} {{.State}}'", 0, r"app running\n",
     ""),
    ("cd citab && docker compose ps -q | wc -c", 0, r"65\n", ""),
    ("cd citab && test \"$(docker compose ps --format '{{.ID}}')\" = "
     "\"$(docker inspect -f '{{.Id}}' citab-app-1)\" && echo same", 0, r"same\n", ""),
    ("docker compose ls --format '{{.Name}} {{.Status}}'", 0, r"citab running\(1\)\n", ""),
    ("docker compose ls --format json | python3 -c "
     "'import json,sys; print(json.load(sys.stdin)[0][\"Name\"])'", 0, r"citab\n", ""),
    ("cd citab && docker compose images --format '{{.ContainerName}} {{.Repository}}'", 0,
     r"citab-app-1 busybox\n", ""),
    ("cd citab && docker compose images --format '{{.Nope}}'", 1, "", "Nope"),
    ("cd citab && docker compose exec app sh -c 'exit 6'", 6, "", ""),
    ("cd citab && docker compose run --rm app sh -c 'exit 4'", 4, "", ""),
]


@pytest.mark.parametrize(("line", "code", "stdout", "stderr"), LINES,
                         ids=[line[0][:60] for line in LINES])
def test_command_line(box: Box, line: str, code: int, stdout: str, stderr: str) -> None:
    r = box.sh(line)
    assert r.returncode == code, (r.stdout, r.stderr)
    if stdout or code == 0:
        assert re.fullmatch(stdout, r.stdout, re.S), (r.stdout, r.stderr)
    if stderr:
        assert stderr in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
