"""registries_conf, oc_env, oc and require_unprivileged."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.registry import Registry


@pytest.mark.integration
def test_registries_conf_mirrors_docker_io(registries_conf: Path, registry: Registry) -> None:
    doc = tomllib.loads(registries_conf.read_text())
    by_location = {r.get("prefix", r["location"]): r for r in doc["registry"]}
    hub = by_location["docker.io"]
    assert hub["location"] == "docker.io"
    assert hub["mirror"] == [{"location": registry.host, "insecure": True}]
    assert by_location[registry.host]["insecure"] is True


@pytest.mark.integration
def test_oc_env_isolates_state(oc_env: dict[str, str], registries_conf: Path,
                               tmp_path: Path) -> None:
    assert Path(oc_env["OPENCONTAINER_HOME"]).is_dir()
    assert Path(oc_env["HOME"]).is_dir()
    assert Path(oc_env["OPENCONTAINER_HOME"]).is_relative_to(tmp_path)
    assert oc_env["OPENCONTAINER_REGISTRIES_CONF"] == str(registries_conf)


@pytest.mark.integration
def test_oc_runs_the_cli(oc: object) -> None:
    assert callable(oc)
    res = oc("--help")
    assert isinstance(res, subprocess.CompletedProcess)
    assert res.returncode == 0, res.stderr
    assert "usage" in res.stdout.lower()


def test_require_unprivileged_fails_as_root(tmp_path: Path) -> None:
    """Run a tiny pytest session with the variable set; as root it must fail."""
    (tmp_path / "test_x.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.plugin"]\n')
    env = {**os.environ, "OPENCONTAINER_TEST_REQUIRE_UNPRIVILEGED": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(tmp_path), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    if os.geteuid() == 0:
        assert res.returncode != 0
        assert "run them as an unprivileged user" in res.stdout
    else:
        assert res.returncode == 0, res.stdout + res.stderr
