"""What this user's containers use besides themselves: volumes and networks, found on disk.

Read-only, like :mod:`.index` (no engine, no supervisor); ``volume``, ``network`` and
``system`` commands list and change them.

Volumes, as docker shows them:

- a standalone container's named volume (``run -v NAME:/path``) and ``volume create``'s:
  ``paths.data/volumes/<name>/`` (labels, if any, in ``paths.data/volumes/.<name>.json``);
- a compose project's named volume ``<name>``: ``<project state dir>/volumes/<name>/``, shown
  as ``<project>_<name>`` with compose's labels;
- an anonymous volume (``-v /path``, an image's ``VOLUME``): ``<container>/volumes/<hash>/``,
  named by a hash of its path; it lives and dies with its container.

A volume is *in use* when the ``spec.json`` of some container (running or not) mounts it.

Networks are derived from the projects' models: ``host`` (every container shares the host's
network today) and, for each compose project with containers, the networks its services join
(``<project>_default`` unless they name others); ``network create`` adds user-defined ones,
recorded in ``paths.data/networks/<name>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..paths import Paths
from .index import Entry, Project

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@attrs.frozen(kw_only=True)
class Volume:
    name: str
    mountpoint: Path
    created: float
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    project: str = ""  # compose project ("" for global and anonymous volumes)
    anonymous: bool = False
    users: tuple[str, ...] = ()  # names of the containers that mount it

    @property
    def in_use(self) -> bool:
        return bool(self.users)

    def inspect(self) -> dict[str, Any]:
        """``docker volume inspect``'s object."""
        return {
            "CreatedAt": _iso(self.created),
            "Driver": "local",
            "Labels": dict(self.labels) or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": None,
            "Scope": "local",
        }


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def anonymous_name(path: Path) -> str:
    return hashlib.sha256(os.path.abspath(path).encode()).hexdigest()


def global_volumes_dir(paths: Paths) -> Path:
    return paths.data / "volumes"


def label_file(paths: Paths, name: str) -> Path:
    return global_volumes_dir(paths) / f".{name}.json"


def _dirs(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if e.is_dir(follow_symlinks=False)
                           and not e.name.startswith(".") and not e.name.endswith(".init")),
                          key=lambda e: e.name)
    except OSError:
        return []


def _ctime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()


def usage(entries: Iterable[Entry]) -> dict[str, list[str]]:
    """Absolute host path -> names of the containers that mount it."""
    out: dict[str, list[str]] = {}
    for e in entries:
        for m in e.summary.mounts:
            if m.source:
                out.setdefault(os.path.abspath(m.source), []).append(e.name)
    return out


def volumes(paths: Paths, projects: Sequence[Project], entries: Sequence[Entry]) -> list[Volume]:
    """Every volume: global ones, the compose projects' and the containers' anonymous ones."""
    used = usage(entries)
    out: list[Volume] = []
    for d in _dirs(global_volumes_dir(paths)):
        labels: dict[str, str] = {}
        created = _ctime(d.path)
        try:
            meta = json.loads(label_file(paths, d.name).read_text())
            labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
            created = float(meta.get("created", created))
        except (OSError, ValueError, AttributeError):
            pass
        out.append(Volume(name=d.name, mountpoint=Path(d.path), created=created, labels=labels,
                          users=tuple(used.get(os.path.abspath(d.path), ()))))
    for p in projects:
        if not p.standalone:
            for d in _dirs(p.state.volumes):
                out.append(Volume(
                    name=f"{p.name}_{d.name}", mountpoint=Path(d.path), created=_ctime(d.path),
                    labels={"com.docker.compose.project": p.name,
                            "com.docker.compose.volume": d.name},
                    project=p.name, users=tuple(used.get(os.path.abspath(d.path), ()))))
    for e in entries:
        for d in _dirs(e.project.state.container_dir(e.name) / "volumes"):
            out.append(Volume(name=anonymous_name(Path(d.path)), mountpoint=Path(d.path),
                              created=_ctime(d.path), labels={ANONYMOUS_LABEL: ""},
                              anonymous=True, users=(e.name,)))
    return out


def find_volume(all_volumes: Sequence[Volume], name: str) -> Volume | None:
    for v in all_volumes:
        if v.name == name:
            return v
    return None


def tree_size(path: Path | str) -> int:
    """Bytes of the regular files under ``path`` that are its own (hard links shared with the
    image store, ``st_nlink > 1``, are not counted), not following symbolic links."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for top, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(top, f))
            except OSError:
                continue
            if st.st_nlink > 1:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512 if st.st_blocks else st.st_size
    return total


# -- networks -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Network:
    name: str
    driver: str
    project: str = ""  # the compose project it belongs to
    builtin: bool = False  # host: always there, never removed
    created: float = 0.0
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    options: dict[str, Any] = attrs.field(factory=dict, hash=False)
    containers: tuple[str, ...] = ()  # names of the containers on it (running or not)
    running: tuple[str, ...] = ()  # ... of them running

    @property
    def id(self) -> str:
        return hashlib.sha256(f"network\0{self.name}\0{self.created!r}".encode()).hexdigest()

    def inspect(self, entries: Sequence[Entry] = ()) -> dict[str, Any]:
        by_name = {e.name: e for e in entries}
        return {
            "Name": self.name,
            "Id": self.id,
            "Created": _iso(self.created) if self.created else "0001-01-01T00:00:00Z",
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": bool(self.options.get("internal")),
            "Attachable": bool(self.options.get("attachable")),
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {
                by_name[n].id if n in by_name else n: {"Name": n}
                for n in self.containers
            },
            "Options": {str(k): str(v) for k, v in (self.options.get("opts") or {}).items()},
            "Labels": dict(self.labels),
        }


def networks_dir(paths: Paths) -> Path:
    return paths.data / "networks"


def networks(paths: Paths, projects: Sequence[Project],
             entries: Sequence[Entry]) -> list[Network]:
    """``host``, the compose projects' networks (those their containers are on, and those their
    model declares) and the user-defined ones."""
    on: dict[str, list[Entry]] = {}
    for e in entries:
        for n in e.summary.networks:
            on.setdefault(n, []).append(e)

    def members(name: str) -> dict[str, Any]:
        es = on.get(name, [])
        return {"containers": tuple(e.name for e in es),
                "running": tuple(e.name for e in es if e.running
                                 or e.summary.status == "paused")}

    out = [Network(name="host", driver="host", builtin=True, **members("host"))]
    seen = {"host"}
    for p in projects:
        if p.standalone:
            continue
        has_containers = any(e.project is p or e.project.state.root == p.state.root
                             for e in entries)
        if not has_containers:
            continue
        declared = p.model.get("networks")
        specs: dict[str, dict[str, Any]] = {}
        if isinstance(declared, dict):
            specs = {str(k): (v if isinstance(v, dict) else {}) for k, v in declared.items()}
        for svc in (p.model.get("services") or {}).values():
            for key in (svc.get("networks") if isinstance(svc, dict) else None) or ("default",):
                specs.setdefault(str(key), {})
        for key, spec in sorted(specs.items()):
            if spec.get("external"):
                continue
            name = str(spec.get("name") or f"{p.name}_{key}")
            if name in seen:
                continue
            seen.add(name)
            out.append(Network(
                name=name, driver=str(spec.get("driver") or "bridge"), project=p.name,
                created=_ctime(str(p.state.project_json)),
                labels={"com.docker.compose.project": p.name,
                        "com.docker.compose.network": key},
                **members(name)))
    for f in sorted(networks_dir(paths).glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        name = str(data.get("name") or f.stem)
        if name in seen:
            continue
        seen.add(name)
        out.append(Network(name=name, driver=str(data.get("driver") or "bridge"),
                           created=float(data.get("created") or 0.0),
                           labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
                           options={k: v for k, v in data.items()
                                    if k in ("internal", "attachable", "opts")},
                           **members(name)))
    return out


def find_network(all_networks: Sequence[Network], ref: str) -> Network | None:
    for n in all_networks:
        if n.name == ref:
            return n
    matches = [n for n in all_networks if ref and n.id.startswith(ref.lower())]
    return matches[0] if len(matches) == 1 else None
