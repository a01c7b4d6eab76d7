"""The proot-distro peer (5.10.3 from PyPI: the Termux project's Python rewrite, v5).

- installed into its own venv (``<cache>/proot-distro-venv``), never into the project's venv;
  ``OPENCONTAINER_BENCH_PROOT_DISTRO`` names another executable instead;
- off Termux it keeps containers under ``$XDG_DATA_HOME/proot-distro`` (``containers/<name>/
  rootfs`` + ``manifest.json``) and the downloaded layer blobs and manifests under
  ``$XDG_CACHE_HOME/proot-distro`` (``oci_layers``, ``oci_manifests``); a side gets one
  directory ``D`` and both point into it (``D/data``, ``D/cache``), so a fresh ``D`` is a cold
  install (no cached layers either);
- it runs ``$PD_PROOT_BIN`` when set (validated: an existing executable), else ``proot`` from
  PATH; the harness always sets it, to the same proot as our side of the row;
- a custom registry is part of the reference; plain HTTP needs ``--allow-insecure``:
  ``proot-distro install --allow-insecure 127.0.0.1:PORT/library/postgres:15`` installs a
  container named ``postgres`` (the image name without registry and tag);
- ``proot-distro login NAME -- CMD...`` runs a command in it: off Termux the proot line is
  ``proot --change-id=UID:GID --rootfs=. --cwd=HOME --bind=/dev --bind=/proc --bind=/sys`` (no
  ``-k``, no link2symlink, run from inside the rootfs) under ``env -i`` with a minimal
  environment (``login NAME --get-proot-cmd`` prints it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from .venvs import pip_tool

VERSION = "5.10.3"
PROGRAM = "proot-distro"

_VERSION = re.compile(r"PRoot-Distro version '([^']+)'")


@attrs.frozen
class ProotDistro:
    executable: Path

    def argv(self, *args: str) -> list[str]:
        return [str(self.executable), *args]

    def env(self, home: Path, proot: Path, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with proot-distro's data and cache in ``home``, ``proot`` as its proot."""
        env = dict(base)
        env.update(
            XDG_DATA_HOME=str(home / "data"),
            XDG_CACHE_HOME=str(home / "cache"),
            PD_PROOT_BIN=str(proot),
            PD_FORCE_NO_COLORS="true",
        )
        return env


def ensure_proot_distro(cache: Path) -> ProotDistro:
    """The proot-distro peer, installing it into ``cache/proot-distro-venv`` on first use."""
    override = os.environ.get("OPENCONTAINER_BENCH_PROOT_DISTRO")
    if override:
        return ProotDistro(Path(override))
    return ProotDistro(pip_tool(cache, "proot-distro-venv", f"{PROGRAM}=={VERSION}", PROGRAM))


def container_dir(home: Path, name: str) -> Path:
    """Where container ``name`` lives for a side whose directory is ``home`` (see env())."""
    return home / "data" / PROGRAM / "containers" / name


def parse_version(text: str) -> str | None:
    """``5.10.3`` from the footer of ``proot-distro help`` (it has no ``--version``)."""
    found = _VERSION.search(text)
    return found.group(1) if found else None
