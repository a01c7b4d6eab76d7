"""The udocker peer (1.3.17 from PyPI), run offline as in /work/shared/peers/udocker.md.

- installed into its own venv (``<cache>/udocker-venv``), never into the project's venv;
- ``UDOCKER_TARBALL=`` (set, empty): no download of the "udockertools" engine tarball;
- ``UDOCKER_USE_PROOT_EXECUTABLE``: the system proot; for proot < 5.2 through a wrapper that
  drops udocker's ``-k <kernel>`` option (it breaks every glibc >= 2.33 fstat under 5.1.0);
- ``--allow-root`` when running as root; ``UDOCKER_REGISTRY=http://HOST`` for our registry.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from .venvs import pip_tool

VERSION = "1.3.17"

_NOK_WRAPPER = """#!/bin/bash
# drop udocker's "-k <release>" (proot < 5.2 breaks fstatat with it); options after -r untouched
args=(); seen_r=0
while (($#)); do
  if ((seen_r == 0)) && [[ $1 == -k ]]; then shift 2; continue; fi
  [[ $1 == -r ]] && seen_r=1
  args+=("$1"); shift
done
exec {proot} "${{args[@]}}"
"""


@attrs.frozen
class Udocker:
    executable: Path
    home: Path  # where wrappers live

    def argv(self, *args: str) -> list[str]:
        extra = ["--allow-root"] if os.geteuid() == 0 else []
        return [str(self.executable), *extra, *args]

    def env(
        self, udocker_dir: Path, proot: Path, registry_url: str, base: Mapping[str, str]
    ) -> dict[str, str]:
        env = dict(base)
        env.update(
            UDOCKER_DIR=str(udocker_dir),
            UDOCKER_TARBALL="",
            UDOCKER_USE_PROOT_EXECUTABLE=str(self.proot_for(proot)),
            UDOCKER_REGISTRY=registry_url,
        )
        return env

    def proot_for(self, proot: Path) -> Path:
        """``proot`` itself, or the ``-k``-dropping wrapper when it is older than 5.2."""
        if not needs_k_wrapper(proot):
            return proot
        wrapper = self.home / ("proot-nok" + str(proot).replace("/", "_"))
        if not wrapper.exists():
            wrapper.write_text(_NOK_WRAPPER.format(proot=proot))
            wrapper.chmod(0o755)
        return wrapper


def needs_k_wrapper(proot: Path) -> bool:
    out = subprocess.run([str(proot), "-V"], capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    for token in text.replace("v", " ").split():
        parts = token.split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return (int(parts[0]), int(parts[1])) < (5, 2)
    return True


def ensure_udocker(cache: Path) -> Udocker:
    """The udocker peer, installing it into ``cache/udocker-venv`` on first use."""
    override = os.environ.get("OPENCONTAINER_BENCH_UDOCKER")
    if override:
        cache.mkdir(parents=True, exist_ok=True)
        return Udocker(Path(override), cache)
    exe = pip_tool(cache, "udocker-venv", f"udocker=={VERSION}", "udocker")
    return Udocker(exe, cache)


def container_dir(udocker_dir: Path, name: str) -> Path | None:
    """The directory of udocker container ``name`` (or id), None when there is none.

    udocker keeps a container in ``containers/<uuid>/`` and each name as a relative symlink
    ``containers/<name> -> <uuid>``."""
    entry = udocker_dir / "containers" / name
    if entry.is_symlink():
        target = entry.resolve()
        return target if target.is_dir() else None
    return entry if entry.is_dir() else None


def discard_container(udocker_dir: Path, name: str, discard: Callable[[Path], None]) -> None:
    """``udocker rm NAME``'s effect on udocker's bookkeeping (the container's name links and
    directory gone), with the directory handed to ``discard`` instead of deleted."""
    target = container_dir(udocker_dir, name)
    if target is None:
        return
    for entry in (udocker_dir / "containers").iterdir():
        if entry.is_symlink() and os.path.basename(os.readlink(entry)) == target.name:
            entry.unlink()
    discard(target)
