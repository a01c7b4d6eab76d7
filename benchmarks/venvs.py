"""Peers from PyPI (udocker, proot-distro), each installed into its own venv under the bench
cache dir, never into the project's venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .core import NotAvailable


def pip_tool(cache: Path, venv_name: str, requirement: str, script: str) -> Path:
    """``cache/venv_name/bin/script``, pip-installing ``requirement`` there on first use.

    Raises :class:`NotAvailable` when the venv or the install fails (no network, no index)."""
    venv = cache / venv_name
    exe = venv / "bin" / script
    if exe.exists():
        return exe
    cache.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise NotAvailable(f"cannot create a venv for {requirement}: "
                           f"{made.stderr.strip()[-120:]}")
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", requirement],
        capture_output=True, text=True, check=False,
    )
    if pip.returncode != 0 or not exe.exists():
        raise NotAvailable(f"pip install {requirement} failed")
    return exe
