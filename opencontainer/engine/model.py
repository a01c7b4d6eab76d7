"""The engine's own view of a project: what the supervisor needs, serialisable to JSON.

The compose loader produces a rich ``Project``; the engine keeps a smaller, frozen model of it
(``ProjectModel`` / ``ServiceConfig``) that is written to ``project.json`` and read back by the
detached supervisor, so the supervisor never has to load YAML. :mod:`.adapter` turns a loaded
compose ``Project`` into a :class:`ProjectModel`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .restart import RestartPolicy


@attrs.frozen(kw_only=True)
class PortSpec:
    target: int
    published: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"


@attrs.frozen(kw_only=True)
class MountSpec:
    """``type``: volume | bind | tmpfs | secret | config | anonymous."""

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    create_host_path: bool = True
    content: str | None = None  # secrets/configs given inline or from the environment


@attrs.frozen(kw_only=True)
class DependencySpec:
    condition: str = "service_started"
    required: bool = True
    restart: bool = False


@attrs.frozen(kw_only=True)
class HealthSpec:
    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    start_interval: float = 5.0
    retries: int = 3

    @property
    def disabled(self) -> bool:
        return not self.test or self.test[0] == "NONE"


def as_dict(value: Mapping[Any, Any]) -> dict[Any, Any]:
    """attrs converter (typed, so that mypy accepts any mapping)."""
    return dict(value)


def _tuple(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


@attrs.frozen(kw_only=True)
class ServiceConfig:
    name: str
    image: str = ""
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple)
    environment: Mapping[str, str] = attrs.field(factory=dict, converter=as_dict, hash=False)
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    ports: tuple[PortSpec, ...] = ()
    volumes: tuple[MountSpec, ...] = ()
    depends_on: Mapping[str, DependencySpec] = attrs.field(
        factory=dict, converter=as_dict, hash=False
    )
    healthcheck: HealthSpec | None = None
    restart: RestartPolicy = attrs.field(factory=RestartPolicy)
    stop_signal: str = "SIGTERM"
    stop_grace_period: float = 10.0
    container_name: str | None = None
    scale: int = 1
    aliases: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    tty: bool = False
    shell_script: str | None = None  # test runner: a /bin/sh script instead of an image
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=as_dict, hash=False)
    networks: tuple[str, ...] = ()  # the compose network keys the service joins
    stdin_open: bool = False
    dns: tuple[str, ...] = ()
    auto_remove: bool = False  # `run --rm`: removed when it exits for good
    network_mode: str = ""  # "host": the host's network even where projects get their own

    def config_hash(self) -> str:
        """Like compose's hash: everything but scale and depends_on."""
        data = to_jsonable(self)
        for key in ("scale", "depends_on"):
            data.pop(key, None)
        for key in ("labels", "networks", "stdin_open", "dns", "auto_remove", "network_mode"):
            # empty: the hash of a model that had no such key
            if not data.get(key):
                data.pop(key, None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def container_names(self, project: str) -> list[str]:
        if self.container_name:
            return [self.container_name]
        return [f"{project}-{self.name}-{n}" for n in range(1, max(self.scale, 0) + 1)]


@attrs.frozen(kw_only=True)
class VolumeSpec:
    name: str
    external: bool = False
    driver_opts: Mapping[str, str] = attrs.field(factory=dict, converter=as_dict, hash=False)


@attrs.frozen(kw_only=True)
class ProjectModel:
    name: str
    working_dir: str
    services: Mapping[str, ServiceConfig] = attrs.field(converter=as_dict, hash=False)
    volumes: Mapping[str, VolumeSpec] = attrs.field(factory=dict, converter=as_dict, hash=False)
    state_dir: str = ""
    compose_files: tuple[str, ...] = ()
    kind: str = "compose"  # compose | container (a standalone container: a project of one)
    volumes_dir: str = ""  # where named volumes live ("": <state_dir>/volumes)

    @property
    def standalone(self) -> bool:
        return self.kind == "container"

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProjectModel:
        return project_from_dict(json.loads(text))

    def with_services(self, services: Mapping[str, ServiceConfig]) -> ProjectModel:
        return attrs.evolve(self, services=services)


# -- (de)serialisation ------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    if attrs.has(type(obj)):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in attrs.fields(type(obj))}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def service_from_dict(d: Mapping[str, Any]) -> ServiceConfig:
    hc = d.get("healthcheck")
    return ServiceConfig(
        name=d["name"],
        image=d.get("image", ""),
        command=d.get("command"),
        entrypoint=d.get("entrypoint"),
        environment=d.get("environment") or {},
        working_dir=d.get("working_dir"),
        user=d.get("user"),
        hostname=d.get("hostname"),
        ports=tuple(PortSpec(**p) for p in d.get("ports") or ()),
        volumes=tuple(MountSpec(**m) for m in d.get("volumes") or ()),
        depends_on={k: DependencySpec(**v) for k, v in (d.get("depends_on") or {}).items()},
        healthcheck=HealthSpec(**{**hc, "test": tuple(hc["test"])}) if hc else None,
        restart=RestartPolicy(**d["restart"]) if d.get("restart") else RestartPolicy(),
        stop_signal=d.get("stop_signal") or "SIGTERM",
        stop_grace_period=float(d.get("stop_grace_period", 10.0)),
        container_name=d.get("container_name"),
        scale=int(d.get("scale", 1)),
        aliases=tuple(d.get("aliases") or ()),
        extra_hosts=tuple((h, ip) for h, ip in d.get("extra_hosts") or ()),
        tty=bool(d.get("tty", False)),
        shell_script=d.get("shell_script"),
        labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
        networks=tuple(str(n) for n in d.get("networks") or ()),
        stdin_open=bool(d.get("stdin_open", False)),
        dns=tuple(str(x) for x in d.get("dns") or ()),
        auto_remove=bool(d.get("auto_remove", False)),
        network_mode=str(d.get("network_mode") or ""),
    )


def project_from_dict(d: Mapping[str, Any]) -> ProjectModel:
    return ProjectModel(
        name=d["name"],
        working_dir=d["working_dir"],
        services={k: service_from_dict(v) for k, v in d["services"].items()},
        volumes={k: VolumeSpec(**v) for k, v in (d.get("volumes") or {}).items()},
        state_dir=d.get("state_dir", ""),
        compose_files=tuple(d.get("compose_files") or ()),
        kind=str(d.get("kind") or "compose"),
        volumes_dir=str(d.get("volumes_dir") or ""),
    )


# -- durations ----------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, default: float) -> float:
    """Seconds from a number or a compose duration string (``1m30s``, ``500ms``)."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else default

