"""Standalone containers on disk (``opencontainer run``): one folder each under
``paths.containers/<name>/``::

    config.json   what was asked (id, name, image, the resolved ContainerSpec, options)
    state.json    status, pids, exit code, times  (written atomically, by the keeper)
    run.sh        the exact command (see runscript.py), hosts, hostname, resolv.conf beside it
    rootfs/       the container's private root filesystem
    log.jsonl     {"t": ..., "stream": "stdout"|"stderr", "line": ...} per output line
    control.json  a stop/kill request for the keeper (written by ``stop``/``kill``)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from ..errors import ContainerError, ContainerNotFound, StateError
from ..humanize import human_duration
from ..paths import atomic_write, validate_name
from . import procfs
from .spec import ContainerSpec, _tuple

CONFIG = "config.json"
STATE = "state.json"
LOG = "log.jsonl"
CONTROL = "control.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def new_id() -> str:
    return secrets.token_hex(32)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ADJ = _words(
    "admiring agitated amazing angry awesome bold brave busy charming clever cool dazzling "
    "determined eager ecstatic elastic elated elegant epic fervent festive flamboyant focused "
    "friendly gallant gifted goofy gracious happy hardcore heuristic hopeful hungry infallible "
    "inspiring jolly jovial keen kind laughing loving lucid magical modest musing mystifying "
    "naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive "
    "practical priceless quirky quizzical relaxed reverent romantic sad serene sharp silly "
    "sleepy stoic strange stupefied suspicious sweet tender thirsty trusting upbeat vibrant "
    "vigilant vigorous wizardly wonderful xenodochial youthful zealous zen "
)
_NOUN = _words(
    "albattani allen archimedes ardinghelli babbage banach bardeen bartik bassi bell benz "
    "bhabha blackwell bohr booth borg bose brahmagupta brown burnell cannon carson cerf "
    "chandrasekhar curie darwin davinci dijkstra dirac einstein elion engelbart euclid euler "
    "faraday fermat fermi feynman franklin galileo gauss goldberg goodall hamilton hawking "
    "heisenberg hermann hodgkin hopper hypatia jackson jang jennings johnson kalam kapitsa "
    "keller kepler khorana knuth lamarr leakey lovelace lumiere mayer mccarthy meitner mendel "
    "morse newton nobel noether pare pascal pasteur perlman pike poincare ptolemy raman ritchie "
    "rosalind sammet shannon sinoussi stallman swartz tesla thompson torvalds turing "
    "varahamihira wescoff wiles williams wilson wozniak wright yalow yonath "
)


def generate_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"
        if name not in taken:
            return name
    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}{secrets.randbelow(100)}"


@attrs.frozen
class ContainerConfig:
    id: str
    name: str
    image: str
    image_id: str
    created: str
    spec: ContainerSpec
    proot: str
    auto_remove: bool = False
    anonymous_volumes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    command: tuple[str, ...] = attrs.field(default=(), converter=_tuple)  # as given (ps)
    attach_stdin: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=False)
        d["spec"] = self.spec.to_dict()
        d["anonymous_volumes"] = list(self.anonymous_volumes)
        d["command"] = list(self.command)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerConfig:
        known = {a.name for a in attrs.fields(cls)}
        data = {k: v for k, v in d.items() if k in known}
        data["spec"] = ContainerSpec.from_dict(d["spec"])
        return cls(**data)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@attrs.frozen
class ContainerState:
    status: str = "created"  # created | running | exited | removing
    pid: int | None = None  # proot
    pid_start: int | None = None
    monitor_pid: int | None = None
    monitor_start: int | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str = ""
    restart_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerState:
        known = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def running(self) -> bool:
        return self.status == "running"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {path}: {exc}.") from exc
    if not isinstance(data, dict):
        raise StateError(f"{path} is not a JSON object.")
    return data


@attrs.frozen
class Container:
    """A standalone container folder."""

    dir: Path
    config: ContainerConfig

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def run_sh(self) -> Path:
        return self.dir / "run.sh"

    @property
    def log_path(self) -> Path:
        return self.dir / LOG

    def raw_state(self) -> ContainerState:
        try:
            return ContainerState.from_dict(_read_json(self.dir / STATE))
        except FileNotFoundError:
            return ContainerState()

    def state(self) -> ContainerState:
        """The recorded state, corrected when its keeper died without writing the end."""
        st = self.raw_state()
        if st.status in ("running", "stopping"):
            keeper = procfs.same_process(st.monitor_pid, st.monitor_start)
            proot_alive = procfs.same_process(st.pid, st.pid_start)
            if not keeper and not proot_alive:
                # re-read: the keeper may have just written the final state
                st2 = self.raw_state()
                if st2.status not in ("running", "stopping"):
                    return st2
                return attrs.evolve(st, status="exited",
                                    exit_code=st.exit_code if st.exit_code is not None else 255,
                                    finished_at=st.finished_at or now_iso(),
                                    error=st.error or "the container's keeper process died")
        return st

    def write_state(self, state: ContainerState) -> None:
        atomic_write(self.dir / STATE, json.dumps(state.to_dict(), indent=1))

    def update_state(self, **changes: Any) -> ContainerState:
        st = attrs.evolve(self.raw_state(), **changes)
        self.write_state(st)
        return st

    def write_control(self, action: str, **kw: Any) -> None:
        atomic_write(self.dir / CONTROL, json.dumps({"action": action, **kw}))

    def read_control(self) -> dict[str, Any]:
        try:
            data = _read_json(self.dir / CONTROL)
        except (FileNotFoundError, StateError):
            return {}
        return data

    def clear_control(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir / CONTROL)


class ContainerStore:
    """All standalone containers (``paths.containers``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dirs(self) -> Iterator[Path]:
        try:
            entries = sorted(self.root.iterdir())
        except FileNotFoundError:
            return
        for d in entries:
            if d.is_dir() and (d / CONFIG).is_file():
                yield d

    def load(self, d: Path) -> Container:
        try:
            return Container(d, ContainerConfig.from_dict(_read_json(d / CONFIG)))
        except (FileNotFoundError, KeyError, TypeError) as exc:
            raise StateError(f"container folder {d} has no usable config.json.") from exc

    def list(self) -> list[Container]:
        out = []
        for d in self._dirs():
            try:
                out.append(self.load(d))
            except StateError:
                continue
        out.sort(key=lambda c: c.config.created, reverse=True)
        return out

    def names(self) -> set[str]:
        return {d.name for d in self._dirs()}

    def get(self, ref: str) -> Container:
        """By name, full id or unique id prefix."""
        ref = ref.lstrip("/")
        d = self.root / ref
        if ref and "/" not in ref and (d / CONFIG).is_file():
            return self.load(d)
        matches = [c for c in self.list() if c.id.startswith(ref.lower())] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ContainerError(f"multiple containers match {ref!r}: give more of the id.")
        raise ContainerNotFound(f"no such container: {ref}.")

    def reserve(self, name: str | None) -> tuple[str, Path]:
        """A new container folder (name validated and unique)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if name:
            validate_name("container", name)
        else:
            name = generate_name(self.names())
        d = self.root / name
        try:
            d.mkdir(mode=0o755)
        except FileExistsError:
            raise ContainerError(
                f'the container name "{name}" is already in use; remove that container '
                f"('opencontainer rm {name}') or choose another name."
            ) from None
        return name, d

    def save_config(self, d: Path, config: ContainerConfig) -> Container:
        atomic_write(d / CONFIG, json.dumps(config.to_dict(), indent=1))
        c = Container(d, config)
        if not (d / STATE).exists():
            c.write_state(ContainerState())
        return c




def status_text(st: ContainerState, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if st.status == "running":
        started = parse_iso(st.started_at) or now
        return f"Up {human_duration(now - started)}"
    if st.status == "exited":
        fin = parse_iso(st.finished_at) or now
        code = st.exit_code if st.exit_code is not None else 255
        return f"Exited ({code}) {human_duration(now - fin)} ago"
    if st.status == "stopping":
        return "Stopping"
    return st.status.capitalize()
