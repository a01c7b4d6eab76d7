"""Where a container's mounts come from on the host.

- named volume: ``<state>/volumes/<name>/``; kept by ``down``, removed by ``down -v``; on first
  use it is filled with the image's content at the mount path, as Docker does (the path is
  resolved inside the image's tree: its symlinks never lead onto the host's files);
- bind mount: source relative to the project directory, ``~`` expanded, created when missing
  (short syntax, or ``bind.create_host_path``);
- anonymous volume: ``<container>/volumes/<hash>/``, initialised from the image like a named
  one, removed with the container;
- tmpfs: a fresh, empty ``<container>/tmpfs/<hash>/`` on every start;
- secrets and configs: the file itself, or inline/environment content written to
  ``<container>/secrets/<name>``, mounted at ``/run/secrets/<name>`` and ``/<name>``.

``read_only`` is recorded and shown, but **proot cannot enforce read-only binds**: a process in the
container that writes to a ``:ro`` mount changes the host files.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import attrs

from ..errors import ConfigError
from ..paths import atomic_write, remove_tree
from ..runtime.rootfs import seed_volume
from .model import MountSpec, ProjectModel
from .state import ProjectState


@attrs.frozen(kw_only=True)
class HostMount:
    source: Path
    target: str
    read_only: bool = False
    kind: str = "bind"  # bind | volume
    name: str | None = None


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _seed(dest: Path, image_rootfs: Path | None, target: str) -> None:
    """Fill a new, empty volume with what the image has at ``target`` (Docker's copy-up).

    ``image_rootfs`` is the image's tree (an overlay root's lower layer); ``target`` is
    resolved inside it, symlinks and ``..`` included, never onto the host's files."""
    if image_rootfs is None:
        return
    seed_volume(dest, image_rootfs, target)


def volume_dir(state: ProjectState, project: ProjectModel, source: str) -> Path:
    """A named volume's folder: the project's (``<state>/volumes``), or for a standalone
    container the user's shared volumes (``project.volumes_dir``), as ``docker run -v``."""
    return (Path(project.volumes_dir) if project.volumes_dir else state.volumes) / source


def resolve_mounts(
    project: ProjectModel,
    mounts: tuple[MountSpec, ...],
    state: ProjectState,
    container: str,
    image_rootfs: Path | None,
    *,
    fresh_tmpfs: bool = True,
) -> list[HostMount]:
    out: list[HostMount] = []
    cdir = state.container_dir(container)
    workdir = Path(project.working_dir)
    for m in mounts:
        if m.type == "volume":
            if m.source not in project.volumes:
                raise ConfigError(
                    f"service volume {m.source!r} is not declared in the top-level 'volumes'."
                )
            d = volume_dir(state, project, m.source)
            if not d.exists():
                tmp = d.with_name(d.name + ".init")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                _seed(tmp, image_rootfs, m.target)
                tmp.rename(d)
            out.append(HostMount(source=d, target=m.target, read_only=m.read_only,
                                 kind="volume", name=m.source))
        elif m.type == "anonymous":
            d = cdir / "volumes" / _h(m.target)
            if not d.exists():
                d.mkdir(parents=True)
                _seed(d, image_rootfs, m.target)
            out.append(HostMount(source=d, target=m.target, kind="volume"))
        elif m.type == "bind":
            src = Path(m.source).expanduser()
            if not src.is_absolute():
                src = (workdir / src).resolve()
            if not src.exists():
                if not m.create_host_path:
                    raise ConfigError(f"bind mount source {src} does not exist.")
                src.mkdir(parents=True, exist_ok=True)
            out.append(HostMount(source=src, target=m.target, read_only=m.read_only))
        elif m.type == "tmpfs":
            d = cdir / "tmpfs" / _h(m.target)
            if fresh_tmpfs:
                shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True, exist_ok=True)
            out.append(HostMount(source=d, target=m.target))
        elif m.type in ("secret", "config"):
            if m.content is not None or not m.source:
                f = cdir / "secrets" / _h(m.target)
                atomic_write(f, m.content or "", mode=0o444)
                src = f
            else:
                src = Path(m.source)
                if not src.exists():
                    raise ConfigError(f"{m.type} file {src} does not exist.")
            out.append(HostMount(source=src, target=m.target, read_only=True))
        else:
            raise ConfigError(f"unsupported volume type {m.type!r}.")
    return out


def remove_volumes(state: ProjectState, project: ProjectModel | None) -> list[str]:
    """``down -v``: remove the project's named volumes (not external ones)."""
    removed: list[str] = []
    if not state.volumes.is_dir():
        return removed
    external = {k for k, v in (project.volumes.items() if project else ()) if v.external}
    for d in sorted(state.volumes.iterdir()):
        if d.name in external:
            continue
        remove_tree(d, ignore_errors=True)  # copes with a native container's subuid files
        removed.append(d.name)
    return removed
