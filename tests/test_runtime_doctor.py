"""``opencontainer doctor``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.android import ANDROID_PREFIX

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_doctor_reports_capabilities(oc: Any, proot: Path) -> None:
    res = oc("doctor", env={"OPENCONTAINER_PROOT": str(proot)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert str(proot) in res.stdout and "  ports:" in res.stdout
    assert "image store:" in res.stdout and "GB free" in res.stdout
    data = json.loads(oc("doctor", "--format", "json",
                         env={"OPENCONTAINER_PROOT": str(proot)}).stdout)
    caps = data["proot"]
    assert caps["works"] and data["problems"] == []
    if not caps["port_map"]:
        assert any("proot >= 5.2" in h for h in data["hints"])


def test_doctor_without_proot(oc: Any, tmp_path: Path) -> None:
    res = oc("doctor", env={"OPENCONTAINER_PROOT": str(tmp_path / "missing")})
    assert res.returncode == 1
    assert "proot:             not found" in res.stdout
    assert "PROBLEM: OPENCONTAINER_PROOT names" in res.stdout


def _doctor_json(oc: Any, proot: Path) -> dict[str, Any]:
    res = oc("doctor", "--format", "json", env={"OPENCONTAINER_PROOT": str(proot)})
    assert res.returncode == 0, res.stdout + res.stderr
    data: dict[str, Any] = json.loads(res.stdout)
    return data


@pytest.mark.integration
def test_doctor_tells_the_three_proots_apart(oc: Any, proot_binaries: dict[str, Path],
                                             proot_termux: Path) -> None:
    expected = {
        "5.1.0": "no mapping: relayed, container ports < 1024 need root",
        "5.4.0": "mapped by proot (-p IN:OUT)",
        "termux": "ports < 1024 shifted by +2000 (Termux -p)",
    }
    for name, binary in proot_binaries.items():
        res = oc("doctor", env={"OPENCONTAINER_PROOT": str(binary)})
        assert res.returncode == 0, res.stdout + res.stderr
        assert expected[name] in res.stdout, (name, res.stdout)
        sysvipc = "yes" if name == "termux" else "no"
        assert f"  --sysvipc:       {sysvipc}" in res.stdout, (name, res.stdout)
        assert "hard links:        allowed" in res.stdout
    caps = _doctor_json(oc, proot_termux)["proot"]
    assert caps["low_port_shift"] and not caps["port_map"] and caps["sysvipc"]


@pytest.mark.integration
def test_doctor_under_android(oc_env: dict[str, str], proot_termux: Path,
                              tmp_path: Path) -> None:
    """On Android (simulated): no user namespaces, no hard links; Termux's proot shifts low
    ports and emulates SysV IPC, and makes symlinks for hard links."""
    env = {**oc_env, "OPENCONTAINER_PROOT": str(proot_termux),
           "PYTHONPATH": str(REPO)}
    res = subprocess.run([*ANDROID_PREFIX, sys.executable, "-m", "opencontainer", "doctor"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "user namespaces:   not available" in out, out
    assert "hard links:        refused" in out, out
    assert "ports:           ports < 1024 shifted by +2000 (Termux -p)" in out, out
    assert "  --sysvipc:       yes" in out and "  --link2symlink:  yes" in out
    assert "container roots:   copy" in out
    assert "containers run with proot --link2symlink" in out
    res = subprocess.run([*ANDROID_PREFIX, sys.executable, "-m", "opencontainer", "doctor",
                          "--format", "json"], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path, check=False)
    data = json.loads(res.stdout)
    assert data["user_namespaces"]["available"] is False
    assert data["hardlinks"]["allowed"] is False


@pytest.mark.integration
def test_a_stale_overlay_verdict_is_probed_again(oc: Any, oc_env: dict[str, str],
                                                 proot_termux: Path, tmp_path: Path) -> None:
    """An overlay verdict cached before user namespaces went away is not trusted: the check
    runs again (one warning) and containers get copied roots."""
    env = {**oc_env, "OPENCONTAINER_PROOT": str(proot_termux), "PYTHONPATH": str(REPO)}
    first = json.loads(oc("doctor", "--format", "json", env=env).stdout)
    assert first["rootfs"]["overlay"], "overlay roots are expected on the test machines"
    res = subprocess.run([*ANDROID_PREFIX, sys.executable, "-m", "opencontainer", "doctor"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "container roots:   copy" in res.stdout, res.stdout
    assert res.stderr.count("user namespaces are no longer available") == 1, res.stderr
    # the new verdict is cached: no second warning, still copy
    res = subprocess.run([*ANDROID_PREFIX, sys.executable, "-m", "opencontainer", "doctor"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
                         check=False)
    assert "container roots:   copy" in res.stdout and "no longer" not in res.stderr
