"""``build``, ``builder prune`` and compose's builds, as the unprivileged user, FROM the registry
fixtures (busybox, the Debian python image), run with the real proot."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MULTI = """\
ARG GREETING=hello
FROM busybox AS builder
ARG GREETING
WORKDIR /src
COPY src/ .
RUN echo "$GREETING from builder" > made.txt && ls > listing.txt

FROM busybox AS unused
RUN exit 3

FROM busybox
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY --from=builder --chown=app:app /src/made.txt /src/listing.txt ./
COPY --chown=1000:1000 data.txt ./
USER app
HEALTHCHECK --interval=30s --retries=2 CMD test -f /app/made.txt
CMD ["sh", "-c", "cat made.txt listing.txt data.txt; echo user=$(id -u) pwd=$(pwd) home=$APP_HOME"]
"""


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def built(r: subprocess.CompletedProcess[str]) -> str:
    ok(r)
    return r.stderr


def steps(stderr: str) -> dict[str, bool]:
    """instruction shown -> whether it was CACHED, from --progress plain output."""
    shown: dict[str, str] = {}
    cached: set[str] = set()
    for line in stderr.splitlines():
        m = re.match(r"#(\d+) \[[^\]]+\] (.*)", line)
        if m:
            shown[m.group(1)] = m.group(2)
        m = re.match(r"#(\d+) CACHED$", line)
        if m:
            cached.add(m.group(1))
    return {text: n in cached for n, text in shown.items()}


@pytest.fixture
def multi(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(MULTI)
    (ctx / "src" / "one.c").write_text("int main;\n")
    (ctx / "src" / "debug.log").write_text("ignored\n")
    (ctx / "data.txt").write_text("data v1\n")
    (ctx / "notes.md").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("*.md\n**/*.log\n")
    return ctx


def test_multi_stage_build_runs_and_rebuilds_from_cache(oc: Any, test_images: Any,
                                                        multi: Path, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    r = oc("build", "--progress", "plain", "-t", "mine/app:1", "-t", "mine/app:latest",
           "--build-arg", "GREETING=hi", "--iidfile", str(iid), str(multi), timeout=300)
    ok(r)
    first = steps(r.stderr)
    assert not any(first.values()), r.stderr  # a cold build
    assert "RUN exit 3" not in r.stderr  # the target does not need that stage
    image_id = iid.read_text()
    assert image_id.startswith("sha256:")

    out = ok(oc("run", "--rm", "mine/app:1", timeout=120))
    assert out.splitlines() == ["hi from builder", "listing.txt", "made.txt", "one.c", "data v1",
                                "user=1000 pwd=/app home=/app"], out
    info = json.loads(ok(oc("image", "inspect", "mine/app:latest")))[0]
    cfg = info["Config"]
    assert cfg["User"] == "app" and cfg["WorkingDir"] == "/app"
    assert "APP_HOME=/app" in cfg["Env"]
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /app/made.txt"]
    assert cfg["Healthcheck"]["Retries"] == 2
    assert info["Id"] == image_id
    history = ok(oc("history", "--no-trunc", "--format", "json", "mine/app:1"))
    assert "HEALTHCHECK" in history and "COPY --chown=1000:1000 data.txt ./" in history

    # nothing changed (an ignored file does not count): every step is reused
    (multi / "notes.md").write_text("changed, but ignored\n")
    r = oc("build", "--progress", "plain", "--build-arg", "GREETING=hi", str(multi),
           timeout=300)
    again = steps(built(r))
    fs = {k: v for k, v in again.items() if k.startswith(("RUN", "COPY"))}
    assert len(fs) == 4 and all(fs.values()), r.stderr
    assert f"writing image {image_id}" in r.stderr, r.stderr
    r = oc("build", "-q", "-t", "mine/app:1", "--build-arg", "GREETING=hi", str(multi),
           timeout=300)
    assert ok(r).strip() == image_id

    # one COPY'd file changes: that step and what follows it are built again
    (multi / "data.txt").write_text("data v2\n")
    r = oc("build", "--progress", "plain", "-t", "mine/app:1", "--build-arg", "GREETING=hi",
           str(multi), timeout=300)
    after = steps(built(r))
    assert after["COPY --chown=1000:1000 data.txt ./"] is False, r.stderr
    assert after["COPY src/ ."] and after[
        'RUN echo "$GREETING from builder" > made.txt && ls > listing.txt'], r.stderr
    assert "data v2" in ok(oc("run", "--rm", "mine/app:1", timeout=120))

    # a build-arg changes the RUN and everything after it
    r = oc("build", "--progress", "plain", "--build-arg", "GREETING=hey", "-t", "mine/app:2",
           str(multi), timeout=300)
    changed = steps(built(r))
    assert changed["COPY src/ ."] is True
    assert changed['RUN echo "$GREETING from builder" > made.txt && ls > listing.txt'] is False
    assert ok(oc("run", "--rm", "mine/app:2", timeout=120)).startswith("hey from builder")

    pruned = ok(oc("builder", "prune", "-f"))
    assert "Deleted build cache objects:" in pruned
    r = oc("build", "--progress", "plain", "--build-arg", "GREETING=hi", str(multi),
           timeout=300)
    assert not any(steps(built(r)).values()), r.stderr
    assert ok(oc("run", "--rm", "mine/app:1", timeout=120)).startswith("hi from builder")


def test_build_errors_name_the_line(oc: Any, test_images: Any, tmp_path: Path) -> None:
    ctx = tmp_path / "bad"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo fine\nRUN exit 7\n")
    r = oc("build", str(ctx), timeout=300)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Dockerfile:3: RUN:") and "exit code: 7" in last, r.stderr
    r = oc("build", "-f", "-", str(ctx), input="FROM busybox\nCOPY missing /x\n", timeout=300)
    assert r.returncode == 1 and "Dockerfile:2: COPY:" in r.stderr and "missing" in r.stderr


def test_debian_run_adds_a_user_and_chowns(oc: Any, test_images: Any, tmp_path: Path) -> None:
    test_images["python"]
    ctx = tmp_path / "deb"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        "RUN useradd -m -u 1234 appuser && mkdir -p /data && echo hi > /data/f \\\n"
        # coreutils' stat uses statx, which an old proot does not translate: the build's
        # ENOSYS filter makes it fall back to a call proot translates (/data/f is not the host's)
        "    && stat -c %s /data/f > /data/size && chown -R appuser:appuser /data && id appuser\n"
        "USER appuser\n"
        'CMD ["sh", "-c", "id -un; id -u; cat /data/f /data/size; '
        'test -d /home/appuser && echo home"]\n')
    r = oc("build", "--progress", "plain", "-t", "deb:user", str(ctx), timeout=600)
    ok(r)
    assert "uid=1234(appuser)" in r.stderr
    out = ok(oc("run", "--rm", "deb:user", timeout=180))
    assert out.split() == ["appuser", "1234", "hi", "3", "home"], out


def test_compose_up_build_two_services(oc: Any, test_images: Any, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "web").mkdir(parents=True)
    (proj / "web" / "Dockerfile").write_text(
        "FROM busybox\nARG MSG\nRUN echo \"$MSG\" > /msg\n"
        'CMD ["sh", "-c", "cat /msg; sleep 300"]\n')
    (proj / "compose.yaml").write_text(
        "name: duo\n"
        "services:\n"
        "  web:\n"
        "    build:\n"
        "      context: ./web\n"
        "      args:\n"
        "        MSG: built-ok\n"
        "  cache:\n"
        "    image: busybox\n"
        "    command: [sh, -c, 'echo pulled-ok; sleep 300']\n"
        "    stop_grace_period: 1s\n")
    try:
        r = oc("up", "-d", "--build", cwd=proj, timeout=300)
        ok(r)
        assert "Building web" in r.stderr
        deadline = time.time() + 30
        logs = ""
        while time.time() < deadline:
            logs = oc("compose", "logs", cwd=proj).stdout
            if "built-ok" in logs and "pulled-ok" in logs:
                break
            time.sleep(0.5)
        assert "built-ok" in logs and "pulled-ok" in logs, logs
        assert "duo-web" in ok(oc("images", "--format", "{{.Repository}}"))
        # up again: the image is there, nothing is built; compose build rebuilds from cache
        r = oc("up", "-d", cwd=proj, timeout=300)
        assert "Building" not in ok(r) + r.stderr
        r = oc("compose", "build", "web", cwd=proj, timeout=300)
        assert "CACHED" in ok(r) + r.stderr
        r = oc("up", "-d", "--no-build", cwd=proj, timeout=300)
        ok(r)
    finally:
        oc("down", cwd=proj, timeout=120)


def test_built_image_pushed_runs_after_pull_in_fresh_home(oc: Any, test_images: Any,
                                                          registry: Any, tmp_path: Path) -> None:
    ctx = tmp_path / "rt"
    ctx.mkdir()
    (ctx / "msg.txt").write_text("round trip\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY msg.txt /msg.txt\nRUN echo built > /built\n"
        "LABEL stage=built\n"
        'CMD ["sh", "-c", "cat /msg.txt /built"]\n')
    dest = f"{registry.host}/built/rt:1"
    ok(oc("build", "-q", "-t", dest, str(ctx), timeout=300))
    out = ok(oc("push", dest, timeout=120))
    assert ": Pushed" in out and out.splitlines()[-1].startswith("1: digest: sha256:"), out
    # a fresh home: nothing of the build is there
    fresh = tmp_path / "fresh-home"
    fresh.mkdir()
    env = {"OPENCONTAINER_HOME": str(fresh)}
    assert ok(oc("images", "-q", env=env)).strip() == ""
    ok(oc("pull", "-q", dest, env=env, timeout=120))
    assert ok(oc("run", "--rm", dest, env=env, timeout=120)) == "round trip\nbuilt\n"
    info = json.loads(ok(oc("image", "inspect", dest, env=env)))[0]
    assert info["Config"]["Labels"]["stage"] == "built"
    history = ok(oc("history", "--no-trunc", dest, env=env))
    assert "RUN /bin/sh -c echo built > /built" in history, history


def test_compose_pull_ignore_buildable(oc: Any, test_images: Any, registry: Any,
                                       tmp_path: Path) -> None:
    proj = tmp_path / "pullproj"
    (proj / "app").mkdir(parents=True)
    (proj / "app" / "Dockerfile").write_text("FROM busybox\n")
    app = f"{registry.host}/not-pushed/app:1"
    (proj / "compose.yaml").write_text(
        "services:\n"
        "  app:\n"
        f"    image: {app}\n"
        "    build: ./app\n"
        "  cache:\n"
        "    image: busybox\n")
    r = oc("compose", "pull", "--ignore-buildable", cwd=proj, timeout=120)
    assert "Skipped - Image can be built" in ok(r) + r.stderr, r.stderr
    assert "not-pushed" not in r.stderr.replace(f"{app} Skipped", "")
    listed = ok(oc("images", "--format", "{{.Repository}}:{{.Tag}}"))
    assert "busybox:latest" in listed and "not-pushed" not in listed, listed
    # without the flag the buildable image is tried; its absence is a warning, not an error
    r = oc("compose", "pull", cwd=proj, timeout=120)
    ok(r)
    assert "must be built from source" in r.stderr and "compose build app" in r.stderr, r.stderr


def test_intermediates_hidden_and_prune_keeps_the_cache(oc: Any, test_images: Any,
                                                        tmp_path: Path) -> None:
    ctx = tmp_path / "steps"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY a.txt /a.txt\nENV STEP=1\nRUN echo one > /one\nRUN echo two > /two\n")
    ok(oc("pull", "-q", "busybox"))
    iid = ok(oc("build", "-q", str(ctx), timeout=300)).strip()

    def listed(*flags: str) -> list[str]:
        return ok(oc("images", *flags, "--no-trunc", "--format",
                     "{{.Repository}}:{{.Tag}} {{.ID}}")).splitlines()

    # docker's images: the result (untagged) and busybox; the step images only with -a
    shown = listed()
    assert len(shown) == 2 and f"<none>:<none> {iid}" in shown, shown
    assert any(s.startswith("busybox:latest ") for s in shown), shown
    assert len(listed("-a")) >= 4, listed("-a")
    # prune takes the dangling result off the list, but the cache still reuses every step
    out = ok(oc("image", "prune", "-f"))
    assert f"deleted: {iid}" in out, out
    assert listed() == [s for s in shown if s.startswith("busybox")]
    r = oc("build", "--progress", "plain", str(ctx), timeout=300)
    fs = {k: v for k, v in steps(built(r)).items() if k.startswith(("RUN", "COPY"))}
    assert len(fs) == 3 and all(fs.values()), r.stderr
    assert f"<none>:<none> {iid}" in listed()
    # builder prune removes the step images, never a result
    ok(oc("builder", "prune", "-f"))
    assert sorted(listed("-a")) == sorted(listed()) and len(listed()) == 2, listed("-a")


def test_corpus_file_builds_and_runs(oc: Any, test_images: Any, tmp_path: Path) -> None:
    """docker/compose's watch fixture, unchanged: its busybox service only builds (an inline
    Dockerfile); FROM busybox comes from the test registry, standing in for Docker Hub."""
    import shutil

    proj = tmp_path / "watch"
    shutil.copytree(Path(__file__).parent / "data" / "compose-corpus" / "watch", proj)
    try:
        r = oc("compose", "up", "-d", "busybox", cwd=proj, timeout=300)
        ok(r)
        assert "Building busybox" in r.stderr, r.stderr
        assert "watch-busybox" in ok(oc("images", "--format", "{{.Repository}}"))
        out = ok(oc("compose", "exec", "-T", "busybox", "sh", "-c",
                    "test -d /app/data && test -d /app/config && echo dirs-made",
                    cwd=proj, timeout=60))
        assert out.strip() == "dirs-made"
        ps = ok(oc("compose", "ps", "--format", "{{.Service}} {{.State}}", cwd=proj))
        assert ps.split() == ["busybox", "running"], ps
    finally:
        oc("compose", "down", cwd=proj, timeout=120)


def test_run_steps_change_files_in_place_and_cached_steps_apply(oc: Any, test_images: Any,
                                                                tmp_path: Path) -> None:
    """RUN steps change the stage's files in place: what they add, change and delete (files of
    the base image too) is in the image. Another Dockerfile that shares the first steps reuses
    them (their layers applied to the base image's files) and gives the same files."""
    ctx = tmp_path / "inplace"
    ctx.mkdir()
    (ctx / "a.txt").write_text("copied\n")
    first = ("FROM busybox\n"
             "RUN rm /bin/vi && echo edited >> /etc/group && mkdir /d && echo a > /d/a\n"
             "RUN rm -r /d && echo e > /e && chmod 600 /e\n")
    (ctx / "Dockerfile").write_text(
        first + "COPY a.txt /d/a.txt\nRUN cat /d/a.txt > /copied && ls /d > /listing\n")
    check = ("test ! -e /bin/vi && tail -n1 /etc/group && ls /d && cat /e /copied /listing "
             "&& stat -c %a /e")
    ok(oc("build", "-q", "-t", "inplace:1", str(ctx), timeout=300))
    assert ok(oc("run", "--rm", "inplace:1", "sh", "-c", check, timeout=120)).split() == [
        "edited", "a.txt", "e", "copied", "a.txt", "600"]
    history = ok(oc("history", "--no-trunc", "--format", "json", "inplace:1"))
    assert "RUN /bin/sh -c rm -r /d" in history, history

    (ctx / "Short.Dockerfile").write_text(first + "LABEL part=1\n")
    r = oc("build", "--progress", "plain", "-f", str(ctx / "Short.Dockerfile"), "-t",
           "inplace:short", str(ctx), timeout=300)
    fs = {k: v for k, v in steps(built(r)).items() if k.startswith("RUN")}
    assert len(fs) == 2 and all(fs.values()), r.stderr
    out = ok(oc("run", "--rm", "inplace:short", "sh", "-c",
                "test ! -e /bin/vi && test ! -e /d && tail -n1 /etc/group && cat /e",
                timeout=120))
    assert out.split() == ["edited", "e"], out
