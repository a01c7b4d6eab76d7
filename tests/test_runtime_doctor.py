"""``opencontainer doctor``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.integration
def test_doctor_reports_capabilities(oc: Any, proot: Path) -> None:
    res = oc("doctor", env={"OPENCONTAINER_PROOT": str(proot)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert str(proot) in res.stdout and "port mapping:" in res.stdout
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
