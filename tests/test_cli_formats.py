"""``--format`` on real listings (integration: the test registry's busybox, real proot):
``images``, ``ps``, ``inspect`` and ``compose ps`` share one Go-template engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def env(proot_54: Path, test_images: Any) -> dict[str, str]:
    test_images["busybox"]
    return {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def test_images_formats(oc: Any, env: dict[str, str]) -> None:
    ok(oc("pull", "busybox", env=env))
    assert ok(oc("images", "--format", "{{.Repository}}", env=env)) == "busybox\n"
    assert ok(oc("images", "--format", "{{.Repository}}:{{.Tag}} {{len .ID}}",
                 env=env)) == "busybox:latest 12\n"
    table = ok(oc("images", "--format", "table {{.Repository}}\\t{{.Tag}}", env=env))
    assert table.splitlines() == ["REPOSITORY   TAG", "busybox      latest"]
    default = ok(oc("images", env=env)).splitlines()
    assert default[0].startswith("REPOSITORY   TAG       IMAGE ID       CREATED")
    row = json.loads(ok(oc("images", "--format", "json", env=env)))
    assert row["Repository"] == "busybox" and row["ID"].startswith("sha256:")
    r = oc("images", "--format", "{{.Nope}}", env=env)
    assert r.returncode == 1
    assert "can't evaluate field Nope in type ImageContext" in r.stderr


def test_ps_and_inspect_formats(oc: Any, env: dict[str, str], tmp_path: Path) -> None:
    ok(oc("create", "--name", "fmt-one", "--label", "tier=web", "busybox", "true", env=env,
          cwd=tmp_path))
    try:
        out = ok(oc("ps", "-a", "--format", '{{.Names}} {{.State}} {{.Label "tier"}}',
                    env=env, cwd=tmp_path))
        assert out == "fmt-one created web\n"
        out = ok(oc("ps", "-a", "--format", "table {{.Names}}\\t{{upper .State}}", env=env,
                    cwd=tmp_path))
        assert out.splitlines() == ["NAMES     STATE", "fmt-one   CREATED"]
        header = ok(oc("ps", "-a", env=env, cwd=tmp_path)).splitlines()[0]
        assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                  "PORTS", "NAMES"]
        assert header.startswith("CONTAINER ID   IMAGE")
        row = json.loads(ok(oc("ps", "-a", "--format", "{{json .}}", env=env, cwd=tmp_path)))
        assert row["Names"] == "fmt-one" and "Label" not in row
        r = oc("ps", "-a", "--format", "{{.Nope}}", env=env, cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.strip() == (
            'Error: template parsing error: template: :1:2: executing "" at <.Nope>: '
            "can't evaluate field Nope in type ContainerContext")
        out = ok(oc("inspect", "--format", "{{.Name}} {{.Config.Labels.tier}} "
                    '{{index .Config.Labels "tier"}} {{.State.Status}} {{.Nope}}',
                    "fmt-one", env=env, cwd=tmp_path))
        assert out.split(" ", 1)[1] == "web web created <no value>\n"
        assert out.split()[0].lstrip("/") == "fmt-one"
        out = ok(oc("inspect", "-f", "{{json .Config.Labels}}", "fmt-one", env=env,
                    cwd=tmp_path))
        assert json.loads(out)["tier"] == "web"
    finally:
        oc("rm", "-f", "fmt-one", env=env, cwd=tmp_path)


COMPOSE = """
services:
  web:
    image: busybox
    command: ["sleep", "600"]
"""


def test_compose_ps_formats(oc: Any, env: dict[str, str], tmp_path: Path) -> None:
    proj = tmp_path / "fmtproj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(COMPOSE)
    ok(oc("compose", "up", "-d", env=env, cwd=proj))
    try:
        assert ok(oc("compose", "ps", "--format", "{{.Name}}", env=env,
                     cwd=proj)) == "fmtproj-web-1\n"
        out = ok(oc("compose", "ps", "--format", "table {{.Service}}\\t{{.State}}", env=env,
                    cwd=proj))
        assert out.splitlines() == ["SERVICE   STATE", "web       running"]
        default = ok(oc("compose", "ps", env=env, cwd=proj)).splitlines()
        assert default[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED",
                                      "STATUS", "PORTS"]
        row = json.loads(ok(oc("compose", "ps", "--format", "json", env=env, cwd=proj)))
        assert row["Service"] == "web" and row["Project"] == "fmtproj"
        r = oc("compose", "ps", "--format", "{{.Nope}}", env=env, cwd=proj)
        assert r.returncode == 1 and "can't evaluate field Nope" in r.stderr
        assert ok(oc("info", "-f", "{{.ContainersRunning}} {{.Images}}", env=env,
                     cwd=tmp_path)) == "1 1\n"
    finally:
        oc("compose", "down", env=env, cwd=proj)
