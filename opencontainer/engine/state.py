"""Per-project state on disk: ``<project dir>/.containers/``.

::

    .containers/
      project.json              the resolved model (engine.model.ProjectModel) + hashes
      supervisor.pid            pid of the detached supervisor
      supervisor.log            its stdio
      lock                      flock held by the supervisor while it runs
      supervisor.sock           control socket (under paths.runtime if the path is too long)
      volumes/<name>/           named volumes (kept by `down`, removed by `down -v`)
      <container>/state.json    ContainerState, rewritten atomically on every transition
      <container>/log.jsonl     {"t": time, "s": "stdout"|"stderr", "l": line}
      <container>/rootfs/ run.sh hosts

Everything here is readable without the supervisor: ``ps`` and ``logs`` work from these files
when it is gone (a container whose supervisor is dead is shown as exited).
This module imports only the standard library and attrs, so the CLI's ``ps`` path stays light
(what only some commands need -- hashlib, procfs, signal -- is imported where it is used).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ..errors import StateError
from ..paths import Paths, atomic_write, file_lock

SOCKET_MAX = 100


@attrs.define(kw_only=True)
class ContainerState:
    name: str
    service: str
    id: str = ""  # 64 hex digits, set at creation (older records: derived, see index.py)
    number: int = 1
    project: str = ""
    status: str = "created"
    health: str = ""
    exit_code: int | None = None
    pid: int | None = None
    pgid: int | None = None
    pid_start: int | None = None
    created_at: float = attrs.field(factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    config_hash: str = ""
    image: str = ""
    command: list[str] = attrs.field(factory=list)
    publishers: list[list[Any]] = attrs.field(factory=list)
    manually_stopped: bool = False
    health_log: list[dict[str, Any]] = attrs.field(factory=list)
    one_off: bool = False
    error: str = ""  # why the last start failed, or the removal

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerState:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@attrs.frozen
class ProjectState:
    """Paths of one project's state directory, plus small readers and writers."""

    root: Path
    runtime_dir: Path | None = None

    @property
    def project_json(self) -> Path:
        return self.root / "project.json"

    @property
    def pid_file(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def socket(self) -> Path:
        sock = self.root / "supervisor.sock"
        if len(str(sock)) < SOCKET_MAX or self.runtime_dir is None:
            return sock
        import hashlib  # not at the top: loading OpenSSL costs ~2 ms of every ``ps``

        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return self.runtime_dir / f"sup-{digest}.sock"

    def container_dir(self, name: str) -> Path:
        return self.root / name

    def state_file(self, name: str) -> Path:
        return self.root / name / "state.json"

    def log_file(self, name: str) -> Path:
        return self.root / name / "log.jsonl"

    # -- containers --------------------------------------------------------------------------
    def write_container(self, st: ContainerState, *, durable: bool = True) -> None:
        """``state.json``, atomically (readers see the old or the new record); ``durable``:
        fsynced too (not for a ``--rm`` container's: it is deleted when it exits, and a
        crash leaves it for ``kill_leftovers`` either way)."""
        atomic_write(self.state_file(st.name), json.dumps(st.to_dict(), indent=1),
                     durable=durable)

    def read_container(self, name: str) -> ContainerState | None:
        try:
            return ContainerState.from_dict(json.loads(self.state_file(name).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def containers(self) -> list[ContainerState]:
        out = []
        try:
            with os.scandir(self.root) as it:  # closed now, not whenever the GC gets to it
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return []
        for e in entries:
            if e.is_dir() and e.name != "volumes" and os.path.exists(
                os.path.join(e.path, "state.json")
            ):
                st = self.read_container(e.name)
                if st is not None:
                    out.append(st)
        return out

    # -- the supervisor ----------------------------------------------------------------------
    def supervisor_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def supervisor_alive(self) -> bool:
        """True while some process holds the project's lock."""
        if not self.lock_file.exists():
            return False
        fd = os.open(self.lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def read_project(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.project_json.read_text())
            return data
        except (OSError, ValueError):
            return None


def effective(st: ContainerState, supervisor_alive: bool) -> ContainerState:
    """What ``ps`` shows: a container whose supervisor is gone is not running."""
    if supervisor_alive or st.status in ("created", "exited", "dead"):
        return st
    return attrs.evolve(st, status="exited", health="", exit_code=st.exit_code
                        if st.exit_code is not None else 137)


# -- processes ----------------------------------------------------------------------------------
def same_process(pid: int | None, start: int | None) -> bool:
    from ..runtime.procfs import start_time

    return pid is not None and start is not None and start_time(pid) == start


def group_members(pgid: int) -> list[int]:
    out = []
    with os.scandir("/proc") as it:
        procs = list(it)
    for e in procs:
        if not e.name.isdigit():
            continue
        try:
            rest = Path(e.path, "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(rest) > 3 and int(rest[2]) == pgid:
            out.append(int(e.name))
    return out


def kill_leftovers(state: ProjectState) -> list[str]:
    """SIGKILL the process groups of containers a dead supervisor left running.

    Only groups whose leader is still the recorded process (same start time) or that still
    have members are killed; returns the names of the containers cleaned up.
    """
    import signal

    cleaned = []
    for st in state.containers():
        if st.pgid is None:
            continue
        alive = same_process(st.pid, st.pid_start) or bool(group_members(st.pgid))
        if alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(st.pgid, signal.SIGKILL)
            cleaned.append(st.name)
        from .lifecycle import leftover

        leftover(st)
        st.pid = st.pgid = st.pid_start = None
        st.health = ""
        state.write_container(st)
    return cleaned


# -- the global index of projects -----------------------------------------------------------------
def register_project(paths: Paths, name: str, state_dir: Path, working_dir: str,
                     files: list[str]) -> None:
    index = paths.projects_index
    with file_lock(index.with_suffix(".lock")):
        data = read_index(paths)
        data[name] = {"state_dir": str(state_dir), "working_dir": working_dir, "files": files}
        atomic_write(index, json.dumps(data, indent=1, sort_keys=True))


def unregister_project(paths: Paths, name: str) -> None:
    index = paths.projects_index
    if not index.exists():
        return
    with file_lock(index.with_suffix(".lock")):
        data = read_index(paths)
        if data.pop(name, None) is not None:
            atomic_write(index, json.dumps(data, indent=1, sort_keys=True))


def read_index(paths: Paths) -> dict[str, dict[str, Any]]:
    try:
        data: dict[str, dict[str, Any]] = json.loads(paths.projects_index.read_text())
        return data
    except (OSError, ValueError):
        return {}


@attrs.frozen
class RegisteredProject:
    """One entry of the per-user index of compose projects (``paths.projects_index``)."""

    name: str
    state_dir: Path
    working_dir: Path
    files: tuple[str, ...] = ()


def registered_projects(paths: Paths, *, prune: bool = True) -> list[RegisteredProject]:
    """Every compose project this user has brought up and not taken down, from anywhere.

    ``prune``: entries whose state directory is gone (the project folder was deleted) are
    dropped from the index on the way."""
    data = read_index(paths)
    out: list[RegisteredProject] = []
    gone: list[str] = []
    for name, entry in sorted(data.items()):
        if not isinstance(entry, dict) or not entry.get("state_dir"):
            gone.append(name)
            continue
        try:
            state_dir = Path(str(entry["state_dir"]))
            working_dir = Path(str(entry.get("working_dir") or state_dir.parent))
        except (KeyError, TypeError):
            gone.append(name)
            continue
        if not state_dir.is_dir():
            gone.append(name)
            continue
        out.append(RegisteredProject(name, state_dir, working_dir,
                                     tuple(str(f) for f in entry.get("files") or ())))
    if prune and gone:
        with contextlib.suppress(OSError, StateError), \
                file_lock(paths.projects_index.with_suffix(".lock")):
            fresh = read_index(paths)
            changed = False
            for name in gone:
                old = fresh.get(name)
                if old is not None and not Path(str(old.get("state_dir", ""))).is_dir():
                    del fresh[name]
                    changed = True
            if changed:
                atomic_write(paths.projects_index, json.dumps(fresh, indent=1, sort_keys=True))
    return out


# -- logs -----------------------------------------------------------------------------------------
@attrs.frozen
class LogRecord:
    container: str
    service: str
    t: float
    stream: str
    text: str


def read_logs(state: ProjectState, container: str, service: str, *, tail: int | None = None,
              since: float | None = None) -> list[LogRecord]:
    out: list[LogRecord] = []
    try:
        with open(state.log_file(container), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                rec = _parse_log(line, container, service)
                if rec is not None and (since is None or rec.t >= since):
                    out.append(rec)
    except OSError:
        return []
    if tail is not None:
        out = out[-tail:] if tail > 0 else []
    return out


def _parse_log(line: str, container: str, service: str) -> LogRecord | None:
    try:
        d = json.loads(line)
        return LogRecord(container, service, float(d["t"]), str(d["s"]), str(d["l"]))
    except (ValueError, KeyError, TypeError):
        return None


def follow_log(path: Path, offset: int) -> Iterator[tuple[int, str]]:
    """Complete lines appended after ``offset`` -> (new offset, line)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            while True:
                line = fh.readline()
                if not line or not line.endswith(b"\n"):
                    return
                offset += len(line)
                yield offset, line.decode("utf-8", "replace")
    except OSError:
        return
