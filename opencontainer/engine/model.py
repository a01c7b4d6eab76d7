"""The engine's own view of a project: what the supervisor needs, serialisable to JSON.

The compose loader produces a rich ``Project``; the engine keeps a smaller, frozen model of it
(``ProjectModel`` / ``ServiceConfig``) that is written to ``project.json`` and read back by the
detached supervisor, so the supervisor never has to load YAML. :func:`from_compose` is the only
place that knows the compose model's shape (an adapter read with ``getattr``, so small changes in
the loader do not break the engine).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
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

    def config_hash(self) -> str:
        """Like compose's hash: everything but scale and depends_on."""
        data = to_jsonable(self)
        for key in ("scale", "depends_on"):
            data.pop(key, None)
        for key in ("labels", "networks"):  # empty: the hash of a model that had no such key
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
    )


def project_from_dict(d: Mapping[str, Any]) -> ProjectModel:
    return ProjectModel(
        name=d["name"],
        working_dir=d["working_dir"],
        services={k: service_from_dict(v) for k, v in d["services"].items()},
        volumes={k: VolumeSpec(**v) for k, v in (d.get("volumes") or {}).items()},
        state_dir=d.get("state_dir", ""),
        compose_files=tuple(d.get("compose_files") or ()),
    )


# -- adapter from the compose loader ------------------------------------------------------------
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


def _g(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _env_dict(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in value:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def _restart_of(svc: Any) -> RestartPolicy:
    deploy = _g(svc, "deploy")
    policy = _g(deploy, "restart_policy")
    if policy:
        cond = str(_g(policy, "condition", "any") or "any")
        attempts = int(_g(policy, "max_attempts", 0) or 0)
        name = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(cond, "always")
        return RestartPolicy(name=name, max_retries=attempts)
    value = _g(svc, "restart")
    if isinstance(value, RestartPolicy):
        return value
    if value is not None and hasattr(value, "name") and hasattr(value, "max_retries"):
        return RestartPolicy(name=str(value.name), max_retries=int(value.max_retries or 0))
    return RestartPolicy.parse(str(value) if value else "no")


def _health_of(svc: Any) -> HealthSpec | None:
    hc = _g(svc, "healthcheck")
    if hc is None:
        return None
    if _g(hc, "disable", False):
        return HealthSpec(test=("NONE",))
    test = _g(hc, "test")
    if test is None:
        return None
    if isinstance(test, str):
        test = ("CMD-SHELL", test)
    return HealthSpec(
        test=tuple(str(t) for t in test),
        interval=parse_duration(_g(hc, "interval"), 30.0),
        timeout=parse_duration(_g(hc, "timeout"), 30.0),
        start_period=parse_duration(_g(hc, "start_period"), 0.0),
        start_interval=parse_duration(_g(hc, "start_interval"), 5.0),
        retries=int(_g(hc, "retries", 3) or 3),
    )


def _mounts_of(svc: Any, project: Any, working_dir: Path) -> tuple[MountSpec, ...]:
    mounts: list[MountSpec] = []
    for v in _g(svc, "volumes") or ():
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:
                mounts.append(MountSpec(type="anonymous", target=parts[0]))
                continue
            src, tgt = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            mounts.append(MountSpec(type=kind, source=src, target=tgt, read_only=ro))
            continue
        kind = str(_g(v, "type", "volume") or "volume")
        source = _g(v, "source") or ""
        if kind == "volume" and not source:
            kind = "anonymous"
        bind = _g(v, "bind")
        create = bool(_g(bind, "create_host_path", True)) if bind is not None else True
        mounts.append(
            MountSpec(
                type=kind,
                source=str(source),
                target=str(_g(v, "target")),
                read_only=bool(_g(v, "read_only", False)),
                create_host_path=create,
            )
        )
    for t in _g(svc, "tmpfs") or ():
        mounts.append(MountSpec(type="tmpfs", target=str(t).split(":")[0]))
    for kind, top_name in (("secret", "secrets"), ("config", "configs")):
        top = _g(project, top_name) or {}
        for ref in _g(svc, top_name) or ():
            name = ref if isinstance(ref, str) else str(_g(ref, "source"))
            target = None if isinstance(ref, str) else _g(ref, "target")
            if not target:
                target = f"/run/secrets/{name}" if kind == "secret" else f"/{name}"
            elif kind == "secret" and not str(target).startswith("/"):
                target = f"/run/secrets/{target}"
            definition = _g(top, name) if isinstance(top, Mapping) else None
            definition = _g(definition, "config", None) or definition
            file = _g(definition, "file")
            content = _g(definition, "content")
            env_name = _g(definition, "environment")
            if env_name is not None and content is None:
                content = _g(project, "environment", {}).get(env_name, "") if isinstance(
                    _g(project, "environment"), Mapping
                ) else ""
            src = ""
            if file:
                p = Path(str(file)).expanduser()
                src = str(p if p.is_absolute() else working_dir / p)
            mounts.append(
                MountSpec(
                    type=kind,
                    source=src,
                    target=str(target),
                    read_only=True,
                    content=None if content is None else str(content),
                )
            )
    return tuple(mounts)


def _ports_of(svc: Any) -> tuple[PortSpec, ...]:
    out: list[PortSpec] = []
    for p in _g(svc, "ports") or ():
        if isinstance(p, str | int):
            text = str(p)
            proto = "tcp"
            if "/" in text:
                text, proto = text.split("/", 1)
            parts = text.rsplit(":", 2)
            if len(parts) == 1:
                out.append(PortSpec(target=int(parts[0]), protocol=proto))
            elif len(parts) == 2:
                out.append(PortSpec(target=int(parts[1]), published=int(parts[0]), protocol=proto))
            else:
                out.append(
                    PortSpec(
                        target=int(parts[2]),
                        published=int(parts[1]) if parts[1] else None,
                        host_ip=parts[0],
                        protocol=proto,
                    )
                )
            continue
        published = _g(p, "published")
        if isinstance(published, str):
            published = int(published.split("-")[0]) if published else None
        out.append(
            PortSpec(
                target=int(_g(p, "target")),
                published=None if published is None else int(published),
                host_ip=str(_g(p, "host_ip", "") or ""),
                protocol=str(_g(p, "protocol", "tcp") or "tcp"),
            )
        )
    return tuple(out)


def _depends_of(svc: Any) -> dict[str, DependencySpec]:
    deps = _g(svc, "depends_on") or {}
    if isinstance(deps, list | tuple):
        return {str(d): DependencySpec() for d in deps}
    out = {}
    for name, d in deps.items():
        out[str(name)] = DependencySpec(
            condition=str(_g(d, "condition", "service_started") or "service_started"),
            required=bool(_g(d, "required", True)),
            restart=bool(_g(d, "restart", False)),
        )
    return out


def _aliases_of(svc: Any) -> tuple[str, ...]:
    nets = _g(svc, "networks") or {}
    out: list[str] = []
    if isinstance(nets, Mapping):
        for net in nets.values():
            out.extend(str(a) for a in (_g(net, "aliases") or ()))
    return tuple(out)


def _networks_of(svc: Any) -> tuple[str, ...]:
    if _g(svc, "network_mode"):
        return ()
    nets = _g(svc, "networks") or ()
    return tuple(str(n) for n in nets)


def _labels_of(svc: Any) -> dict[str, str]:
    labels = _g(svc, "labels") or {}
    if isinstance(labels, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in labels.items()}
    out = {}
    for item in labels:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def _extra_hosts_of(svc: Any) -> tuple[tuple[str, str], ...]:
    value = _g(svc, "extra_hosts") or ()
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for entry in value:
            if isinstance(entry, tuple | list):
                items.append((str(entry[0]), str(entry[1])))
                continue
            text = str(entry)
            sep = "=" if "=" in text else ":"
            host, _, ip = text.partition(sep)
            items.append((host, ip))
    return tuple(items)


def service_from_compose(svc: Any, project: Any, working_dir: Path, name: str) -> ServiceConfig:
    scale = _g(svc, "scale")
    if scale is None:
        scale = _g(_g(svc, "deploy"), "replicas", 1)
    return ServiceConfig(
        name=name,
        image=str(_g(svc, "image") or ""),
        command=_g(svc, "command"),
        entrypoint=_g(svc, "entrypoint"),
        environment=_env_dict(_g(svc, "environment")),
        working_dir=_g(svc, "working_dir"),
        user=_g(svc, "user"),
        hostname=_g(svc, "hostname"),
        ports=_ports_of(svc),
        volumes=_mounts_of(svc, project, working_dir),
        depends_on=_depends_of(svc),
        healthcheck=_health_of(svc),
        restart=_restart_of(svc),
        stop_signal=str(_g(svc, "stop_signal") or "SIGTERM"),
        stop_grace_period=parse_duration(_g(svc, "stop_grace_period"), 10.0),
        container_name=_g(svc, "container_name"),
        scale=int(scale if scale is not None else 1),
        aliases=_aliases_of(svc),
        extra_hosts=_extra_hosts_of(svc),
        tty=bool(_g(svc, "tty", False)),
        labels=_labels_of(svc),
        networks=_networks_of(svc),
    )


def from_compose(project: Any, *, state_dir: Path | None = None) -> ProjectModel:
    """Adapter: the compose loader's ``Project`` -> :class:`ProjectModel`."""
    working_dir = Path(str(_g(project, "working_dir") or "."))
    services_in = _g(project, "services") or {}
    services = {
        str(name): service_from_compose(svc, project, working_dir, str(name))
        for name, svc in services_in.items()
    }
    volumes_in = _g(project, "volumes") or {}
    volumes = {}
    for key, vol in volumes_in.items():
        vol = _g(vol, "config", None) or vol
        ext = _g(vol, "external", False)
        volumes[str(key)] = VolumeSpec(
            name=str(_g(vol, "name") or key),
            external=bool(ext if not isinstance(ext, Mapping) else True),
        )
    files = tuple(str(f) for f in (_g(project, "files") or _g(project, "compose_files") or ()))
    return ProjectModel(
        name=str(_g(project, "name")),
        working_dir=str(working_dir),
        services=services,
        volumes=volumes,
        state_dir=str(state_dir) if state_dir else "",
        compose_files=files,
    )
