"""One index of this user's containers: standalone ones (``opencontainer run``: projects of
one container under ``paths.containers``) and those of every compose project (each project's
state directory, found through the per-user project index ``paths.projects_index`` — see
:func:`~opencontainer.engine.state.registered_projects` — plus the project beside the current
directory, registered or not).

Read-only and light (state files, no engine, no supervisor): ``ps`` lists it, and the container
commands find a container in it by name or unique ID prefix, wherever it lives. A compose
container gets a stable ID derived from its project's state directory, its name and its creation
time (it changes when the container is re-created, as docker's does).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ContainerError, ContainerNotFound
from ..humanize import status_text
from ..paths import Paths
from .filters import ContainerSummary, Mount, Published
from .state import ContainerState, ProjectState, effective, registered_projects

COMPOSE = "compose"
STANDALONE = "standalone"


@attrs.frozen(kw_only=True)
class Project:
    """A project found on this machine: a compose project, or a standalone container (a
    project of one, ``kind`` ``container``)."""

    name: str
    working_dir: Path
    state: ProjectState
    model: dict[str, Any] = attrs.field(factory=dict, hash=False, eq=False)

    @property
    def standalone(self) -> bool:
        return self.model.get("kind") == "container"


@attrs.frozen(kw_only=True)
class Entry:
    """One container of either kind, with what ``ps`` shows."""

    kind: str  # STANDALONE | COMPOSE
    summary: ContainerSummary
    project: Project
    state: ContainerState  # the effective state (a dead supervisor's containers: exited)
    command: tuple[str, ...] = ()
    status_text: str = ""
    ports_text: str = ""

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def running(self) -> bool:
        return self.summary.status in ("running", "restarting", "paused")


def compose_id(state_dir: Path, name: str, created_at: float) -> str:
    """The ID of a container recorded before IDs were stored (derived, stable)."""
    import hashlib  # rarely needed: not imported by every ``ps``

    return hashlib.sha256(f"{state_dir}\0{name}\0{created_at!r}".encode()).hexdigest()


# -- projects ---------------------------------------------------------------------------------
def projects(paths: Paths, extra: Iterable[Project] = ()) -> list[Project]:
    """The standalone containers' projects, the registered compose projects (pruned of deleted
    ones) and ``extra`` (e.g. the project beside the current directory), each state directory
    once."""
    out: list[Project] = []
    seen: set[str] = set()
    items = [Project(name=r.name, working_dir=r.working_dir,
                     state=ProjectState(r.state_dir, paths.runtime))
             for r in registered_projects(paths)]
    for p in [*standalone_projects(paths), *items, *extra]:
        key = str(p.state.root.absolute())
        if key in seen or not p.state.root.is_dir():
            continue
        seen.add(key)
        model = p.model or p.state.read_project() or {}
        out.append(attrs.evolve(p, name=str(model.get("name") or p.name), model=model))
    return out


def standalone_projects(paths: Paths) -> list[Project]:
    """Every standalone container's project (``paths.containers/<name>/project.json``)."""
    out = []
    try:
        with os.scandir(paths.containers) as it:
            dirs = [e.path for e in it if e.is_dir()]
    except OSError:
        return []
    for d in sorted(dirs):
        state = ProjectState(Path(d), paths.runtime)
        model = state.read_project()
        if model is None:  # being created (or a failed creation's leftovers)
            continue
        # its supervisor runs in the state directory (the creation's cwd may be gone)
        out.append(Project(name=str(model.get("name") or Path(d).name), working_dir=Path(d),
                           state=state, model=model))
    return out


# -- entries ----------------------------------------------------------------------------------
_DOCKER_STATUS = {"starting": "running", "stopping": "running"}


def _spec_of(cdir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cdir / "spec.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def project_entries(project: Project, now: float) -> list[Entry]:
    alive = project.state.supervisor_alive()
    services = project.model.get("services") or {}
    standalone = project.standalone
    out = []
    for raw in project.state.containers():
        st = effective(raw, alive)
        spec = _spec_of(project.state.container_dir(st.name))
        svc = services.get(st.service) or {}
        labels: dict[str, str] = {}
        labels.update({str(k): str(v) for k, v in (spec.get("labels") or {}).items()})
        labels.update({str(k): str(v) for k, v in (svc.get("labels") or {}).items()})
        if not standalone:
            labels.update({
                "com.docker.compose.project": st.project or project.name,
                "com.docker.compose.service": st.service,
                "com.docker.compose.container-number": str(st.number),
                "com.docker.compose.oneoff": "True" if st.one_off else "False",
            })
            labels.setdefault("com.docker.compose.project.working_dir",
                              str(project.working_dir))
        nets = tuple(svc.get("networks") or ()) or ("default",)
        published = tuple(Published(container_port=int(tgt), protocol=str(proto),
                                    host_port=int(pub), host_ip=str(ip))
                          for ip, pub, tgt, proto in st.publishers)
        summary = ContainerSummary(
            id=st.id or compose_id(project.state.root, st.name, st.created_at),
            name=st.name, image=st.image or str(spec.get("image") or ""),
            created=st.created_at,
            status=_DOCKER_STATUS.get(st.status, st.status),
            exit_code=st.exit_code, health=st.health, labels=labels,
            mounts=tuple(Mount(destination=str(m.get("target", "")), name=str(m.get("name") or ""),
                               source=str(m.get("source", "")))
                         for m in spec.get("mounts") or ()),
            published=published,
            exposed=tuple(str(e) for e in spec.get("exposed_ports") or ()),
            networks=("host",) if standalone else tuple(f"{project.name}_{n}" for n in nets),
        )
        out.append(Entry(
            kind=STANDALONE if standalone else COMPOSE, summary=summary,
            command=tuple(st.command), status_text=status_text(st, now),
            ports_text=", ".join(f"{ip}:{pub}->{tgt}/{proto}"
                                 for ip, pub, tgt, proto in st.publishers),
            project=project, state=st,
        ))
    return out


def entries(paths: Paths, extra_projects: Iterable[Project] = (),
            now: float | None = None) -> list[Entry]:
    """Every container, newest first."""
    now = time.time() if now is None else now
    out: list[Entry] = []
    for p in projects(paths, extra_projects):
        out += project_entries(p, now)
    out.sort(key=lambda e: e.summary.created, reverse=True)
    return out


def find(all_entries: Sequence[Entry], ref: str) -> Entry:
    """A container by name, full ID or unique ID prefix; an ambiguous reference is an error
    that names the candidates."""
    ref = ref.lstrip("/")
    if not ref:
        raise ContainerNotFound("no such container: ''.")
    named = [e for e in all_entries if e.name == ref]
    if len(named) == 1:
        return named[0]
    if not named:
        named = [e for e in all_entries if e.id == ref.lower()]
        if len(named) == 1:
            return named[0]
    if not named:
        named = [e for e in all_entries if e.id.startswith(ref.lower())]
        if len(named) == 1:
            return named[0]
    if named:
        which = ", ".join(f"{e.name} ({e.id[:12]})" for e in named)
        raise ContainerError(f"{ref!r} matches several containers: {which}; "
                             "give more of the ID.")
    raise ContainerNotFound(f"no such container: {ref}.")
