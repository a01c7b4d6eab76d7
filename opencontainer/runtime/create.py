"""Checks and small steps of creating and starting a container, shared by every container
(the engine's runner calls them): the command exists (docker's 127/126), mount points and the
working directory exist in the root, and the proot in use can run containers at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ContainerError
from ..paths import Paths, proot_binary
from .overlay import Layers
from .proot import ProotCapabilities
from .rootfs import resolve_in_rootfs as resolve_in_rootfs  # moved there; still importable here
from .spec import ContainerSpec


def ensure_target(rootfs: Path | Layers, target: str, is_dir: bool) -> None:
    """A mount point / working directory the container needs, created if missing (in the top
    layer, parents with the image's modes)."""
    layers = Layers.of(rootfs)
    parts, host = layers.resolve(target)
    if host is not None:
        return
    if not parts:
        return
    if is_dir:
        layers.ensure_dir(parts)
    else:
        layers.ensure_dir(parts[:-1])
        layers.top.joinpath(*parts).touch()


def check_proot(paths: Paths, env: Mapping[str, str] | None = None) -> ProotCapabilities:
    """The proot in use, able to run containers here (checked before anything is pulled)."""
    env = os.environ if env is None else env
    binary = proot_binary(env)
    caps = ProotCapabilities.detect(binary, cache_dir=paths.cache)
    if not caps.works:
        from ..errors import ProotError

        raise ProotError(f"proot at {binary} cannot run containers here: {caps.problem}.")
    return caps


def check_command(spec: ContainerSpec) -> None:
    """Docker's exit 127 / 126 before starting: the command must exist and be executable."""
    if not spec.argv:
        raise ContainerError("no command specified.")
    cmd = spec.argv[0]
    rootfs = spec.layers()
    if "/" in cmd:
        base = spec.cwd if not cmd.startswith("/") else "/"
        candidates = [resolve_in_rootfs(rootfs, os.path.join(base, cmd))]
    else:
        path = spec.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [resolve_in_rootfs(rootfs, os.path.join(d or "/", cmd))
                      for d in path.split(":")]
    found = [c for c in candidates if c.is_file()]
    if not found:
        where = "in $PATH" if "/" not in cmd else "in the container"
        raise ContainerError(
            f'exec: "{cmd}": executable file not found {where}.', exit_code=127
        )
    if not any(os.access(c, os.X_OK) for c in found):
        raise ContainerError(f'exec: "{cmd}": permission denied.', exit_code=126)
