"""The typed, immutable project model produced by the loader (frozen attrs classes).

Every attribute is normalised: long forms, absolute paths, seconds as floats. ``to_dict()`` on
:class:`Project` gives the canonical compose-spec dict (what ``opencontainer config`` prints);
loading that dict again gives the same model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import ComposeError
from .normalize import format_duration


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _opt_map(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _frozen_map(value)


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value or ())


def _opt_tuple(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _thaw(value: Any) -> Any:
    """Deep copy into plain dict/list for output."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


@attrs.frozen(kw_only=True)
class PortConfig:
    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.app_protocol:
            d["app_protocol"] = self.app_protocol
        if self.host_ip:
            d["host_ip"] = self.host_ip
        d["mode"] = self.mode
        if self.name:
            d["name"] = self.name
        d["protocol"] = self.protocol
        if self.published is not None:
            d["published"] = self.published
        d["target"] = self.target
        return d


@attrs.frozen(kw_only=True)
class VolumeMount:
    type: str
    target: str
    source: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)
    volume: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)
    tmpfs: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)
    image: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        if self.source is not None:
            d["source"] = self.source
        d["target"] = self.target
        if self.read_only:
            d["read_only"] = True
        if self.consistency:
            d["consistency"] = self.consistency
        for k in ("bind", "volume", "tmpfs", "image"):
            v = getattr(self, k)
            if v is not None:
                d[k] = _thaw(v)
        return d


@attrs.frozen(kw_only=True)
class Dependency:
    condition: str = "service_started"
    required: bool = True
    restart: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"condition": self.condition}
        if self.restart:
            d["restart"] = True
        d["required"] = self.required
        return d


DEFAULT_HEALTH_INTERVAL = 30.0
DEFAULT_HEALTH_TIMEOUT = 30.0
DEFAULT_HEALTH_START_PERIOD = 0.0
DEFAULT_HEALTH_START_INTERVAL = 5.0
DEFAULT_HEALTH_RETRIES = 3


@attrs.frozen(kw_only=True)
class Healthcheck:
    """``None`` for a duration or ``retries`` means "not set": use the image's value, else the
    Docker default (the ``DEFAULT_HEALTH_*`` constants; see the ``effective_*`` properties)."""

    test: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None
    disable: bool = False

    @property
    def effective_interval(self) -> float:
        return DEFAULT_HEALTH_INTERVAL if self.interval is None else self.interval

    @property
    def effective_timeout(self) -> float:
        return DEFAULT_HEALTH_TIMEOUT if self.timeout is None else self.timeout

    @property
    def effective_start_period(self) -> float:
        return DEFAULT_HEALTH_START_PERIOD if self.start_period is None else self.start_period

    @property
    def effective_start_interval(self) -> float:
        if self.start_interval is None:
            return DEFAULT_HEALTH_START_INTERVAL
        return self.start_interval

    @property
    def effective_retries(self) -> int:
        return DEFAULT_HEALTH_RETRIES if self.retries is None else self.retries

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.disable:
            d["disable"] = True
        for k in ("interval",):
            v = getattr(self, k)
            if v is not None:
                d[k] = format_duration(v)
        if self.retries is not None:
            d["retries"] = self.retries
        for k in ("start_interval", "start_period"):
            v = getattr(self, k)
            if v is not None:
                d[k] = format_duration(v)
        if self.test is not None:
            d["test"] = list(self.test)
        if self.timeout is not None:
            d["timeout"] = format_duration(self.timeout)
        return d


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """``name`` is one of ``no``, ``always``, ``on-failure``, ``unless-stopped``."""

    name: str = "no"
    max_retries: int = 0
    delay: float | None = None
    window: float | None = None

    def to_compose(self) -> str:
        if self.name == "on-failure" and self.max_retries:
            return f"on-failure:{self.max_retries}"
        return self.name


@attrs.frozen(kw_only=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)

    def to_dict(self) -> dict[str, Any] | None:
        d: dict[str, Any] = {}
        if self.aliases:
            d["aliases"] = list(self.aliases)
        d.update(_thaw(self.extra))
        return d or None


@attrs.frozen(kw_only=True)
class FileReference:
    """A service's use of a secret or config, in long form."""

    source: str
    target: str
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None

    @property
    def effective_mode(self) -> int:
        """The file mode to create: ``mode`` if set, else 0o444 (compose's default)."""
        return 0o444 if self.mode is None else self.mode

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.gid is not None:
            d["gid"] = self.gid
        if self.mode is not None:
            d["mode"] = self.mode
        d["source"] = self.source
        d["target"] = self.target
        if self.uid is not None:
            d["uid"] = self.uid
        return d


@attrs.frozen(kw_only=True)
class EnvFileProblem:
    """A required ``env_file`` that was missing at load time (see ``Project.check_env_files``)."""

    path: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def error(self) -> ComposeError:
        return ComposeError(f"env file {self.path} not found", file=self.file, line=self.line,
                            key=self.key)


@attrs.frozen(kw_only=True)
class RunProblem:
    """Why a service loads (``config`` shows it) but cannot be run (see
    ``Project.check_runnable``): the message and where in the compose file."""

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def error(self) -> ComposeError:
        return ComposeError(self.message, file=self.file, line=self.line, key=self.key)


@attrs.frozen(kw_only=True)
class Service:
    name: str
    image: str | None = None
    build: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_opt_tuple)
    environment: Mapping[str, str | None] = attrs.field(factory=dict, converter=_frozen_map)
    working_dir: str | None = None
    user: str | None = None
    ports: tuple[PortConfig, ...] = attrs.field(default=(), converter=_tuple)
    volumes: tuple[VolumeMount, ...] = attrs.field(default=(), converter=_tuple)
    tmpfs: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    depends_on: Mapping[str, Dependency] = attrs.field(factory=dict, converter=_frozen_map)
    healthcheck: Healthcheck | None = None
    restart: RestartPolicy = attrs.field(factory=RestartPolicy)
    stop_signal: str = "SIGTERM"
    stop_grace_period: float = 10.0
    hostname: str | None = None
    domainname: str | None = None
    extra_hosts: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    profiles: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    container_name: str | None = None
    scale: int = 1
    networks: Mapping[str, ServiceNetwork] = attrs.field(factory=dict, converter=_frozen_map)
    network_mode: str | None = None
    links: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    expose: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    pull_policy: str | None = None
    platform: str | None = None
    tty: bool = False
    stdin_open: bool = False
    init: bool | None = None
    read_only: bool = False
    secrets: tuple[FileReference, ...] = attrs.field(default=(), converter=_tuple)
    configs: tuple[FileReference, ...] = attrs.field(default=(), converter=_tuple)
    dns: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    dns_search: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    dns_opt: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)
    env_file_problems: tuple[EnvFileProblem, ...] = attrs.field(
        default=(), converter=_tuple, eq=False, repr=False
    )
    run_problems: tuple[RunProblem, ...] = attrs.field(
        default=(), converter=_tuple, eq=False, repr=False
    )

    @property
    def restart_policy(self) -> RestartPolicy:
        return self.restart

    def to_dict(self) -> dict[str, Any]:
        """The canonical compose-spec form of this service (keys sorted)."""
        d: dict[str, Any] = _thaw(self.extra)
        if self.build is not None:
            d["build"] = _thaw(self.build)
        if self.command is not None:
            d["command"] = list(self.command)
        if self.configs:
            d["configs"] = [c.to_dict() for c in self.configs]
        if self.container_name:
            d["container_name"] = self.container_name
        if self.depends_on:
            d["depends_on"] = {k: self.depends_on[k].to_dict() for k in sorted(self.depends_on)}
        for k in ("dns", "dns_opt", "dns_search"):
            if getattr(self, k):
                d[k] = list(getattr(self, k))
        if self.domainname:
            d["domainname"] = self.domainname
        if self.entrypoint is not None:
            d["entrypoint"] = list(self.entrypoint)
        if self.environment:
            d["environment"] = {k: self.environment[k] for k in sorted(self.environment)}
        if self.expose:
            d["expose"] = list(self.expose)
        if self.extra_hosts:
            d["extra_hosts"] = list(self.extra_hosts)
        if self.healthcheck is not None:
            d["healthcheck"] = self.healthcheck.to_dict()
        if self.hostname:
            d["hostname"] = self.hostname
        if self.image is not None:
            d["image"] = self.image
        if self.init is not None:
            d["init"] = self.init
        if self.labels:
            d["labels"] = {k: self.labels[k] for k in sorted(self.labels)}
        if self.links:
            d["links"] = list(self.links)
        if self.network_mode:
            d["network_mode"] = self.network_mode
        if self.networks:
            d["networks"] = {k: self.networks[k].to_dict() for k in sorted(self.networks)}
        if self.platform:
            d["platform"] = self.platform
        if self.ports:
            d["ports"] = [p.to_dict() for p in self.ports]
        if self.profiles:
            d["profiles"] = list(self.profiles)
        if self.pull_policy:
            d["pull_policy"] = self.pull_policy
        if self.read_only:
            d["read_only"] = True
        if self.restart.name != "no" or self.restart.max_retries:
            d["restart"] = self.restart.to_compose()
        if self.scale != 1:
            d["scale"] = self.scale
        if self.secrets:
            d["secrets"] = [s.to_dict() for s in self.secrets]
        if self.stdin_open:
            d["stdin_open"] = True
        if self.stop_grace_period != 10.0:
            d["stop_grace_period"] = format_duration(self.stop_grace_period)
        if self.stop_signal != "SIGTERM":
            d["stop_signal"] = self.stop_signal
        if self.tmpfs:
            d["tmpfs"] = list(self.tmpfs)
        if self.tty:
            d["tty"] = True
        if self.user is not None:
            d["user"] = self.user
        if self.volumes:
            d["volumes"] = [v.to_dict() for v in self.volumes]
        if self.working_dir is not None:
            d["working_dir"] = self.working_dir
        return {k: d[k] for k in sorted(d)}

    def config_hash(self) -> str:
        """sha256 of the canonical service dict without scale, depends_on, build and profiles
        (as docker compose's ``ServiceHash``): changes mean the container must be recreated."""
        d = self.to_dict()
        for k in ("scale", "depends_on", "build", "profiles"):
            d.pop(k, None)
        deploy = d.get("deploy")
        if isinstance(deploy, dict):
            deploy = {k: v for k, v in deploy.items() if k != "replicas"}
            if deploy:
                d["deploy"] = deploy
            else:
                d.pop("deploy")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@attrs.frozen(kw_only=True)
class Resource:
    """A top-level network, volume, secret or config, kept as its normalised dict."""

    name: str
    config: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)

    @property
    def external(self) -> bool:
        return bool(self.config.get("external"))

    @property
    def actual_name(self) -> str:
        return str(self.config.get("name") or self.name)

    @property
    def file(self) -> str | None:
        f = self.config.get("file")
        return str(f) if f is not None else None

    def to_dict(self) -> dict[str, Any] | None:
        d = _thaw(self.config)
        return {k: d[k] for k in sorted(d)} if d else None


@attrs.frozen(kw_only=True)
class Project:
    """A loaded compose project (what :func:`~opencontainer.compose.loader.load_project`
    returns): its ``name``, ``working_dir``, the enabled ``services`` (file order),
    ``disabled_services`` (those their profiles leave out), the top-level ``networks``,
    ``volumes``, ``secrets`` and ``configs``, the ``environment`` used for interpolation, the
    compose ``files`` and the loader's ``warnings``."""

    name: str
    working_dir: str
    services: Mapping[str, Service] = attrs.field(factory=dict, converter=_frozen_map)
    disabled_services: Mapping[str, Service] = attrs.field(factory=dict, converter=_frozen_map)
    networks: Mapping[str, Resource] = attrs.field(factory=dict, converter=_frozen_map)
    volumes: Mapping[str, Resource] = attrs.field(factory=dict, converter=_frozen_map)
    secrets: Mapping[str, Resource] = attrs.field(factory=dict, converter=_frozen_map)
    configs: Mapping[str, Resource] = attrs.field(factory=dict, converter=_frozen_map)
    extensions: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map)
    environment: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    files: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    profiles: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def service_names(self) -> tuple[str, ...]:
        """Enabled services in file order."""
        return tuple(self.services)

    def service(self, name: str) -> Service:
        return self.services[name]

    def container_names(self, service: str, *, separator: str = "-") -> list[str]:
        """``container_name``, else ``<project>-<service>-<n>`` for n in 1..scale (``_`` as
        separator with ``--compatibility``)."""
        svc = self.services[service]
        if svc.container_name:
            return [svc.container_name]
        return [separator.join((self.name, service, str(i))) for i in range(1, svc.scale + 1)]

    def with_enabled(self, names: Iterable[str]) -> Project:
        """Explicitly targeted services run whatever their profiles (``docker compose up
        svc``): a copy where ``names`` and the disabled services they depend on (transitively)
        are enabled. Unknown names raise ComposeError."""
        services = dict(self.services)
        disabled = dict(self.disabled_services)
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in services:
                continue
            if name not in disabled:
                raise ComposeError(f"no such service: {name}")
            svc = disabled.pop(name)
            if not svc.networks and not svc.network_mode:
                svc = attrs.evolve(svc, networks={"default": ServiceNetwork()})
            services[name] = svc
            todo.extend(d for d, dep in svc.depends_on.items() if dep.required)
        order = [*self.services, *(n for n in self.disabled_services if n in services)]
        return attrs.evolve(self, services={n: services[n] for n in order},
                            disabled_services=disabled)

    def check_env_files(self, names: Iterable[str] | None = None) -> None:
        """Raise the ComposeError of the first required env_file that was missing at load
        time, for ``names`` (default: every enabled service). Call before starting them."""
        for name in self.services if names is None else names:
            svc = self.services.get(name)
            if svc is not None and svc.env_file_problems:
                raise svc.env_file_problems[0].error()

    def check_runnable(self, names: Iterable[str] | None = None, *, deps: bool = True,
                       need_image: bool = True) -> tuple[str, ...]:
        """The services that running ``names`` (default: every enabled service) involves:
        ``names`` and, with ``deps``, what they depend on (transitively), in that order.
        Raises the ComposeError (with file, line and key) of the first reason why one of
        them cannot be run: an unknown name, no image (unless ``need_image`` is false), a
        missing required ``env_file``. Call before anything is pulled, created or started."""
        every = {**self.disabled_services, **self.services}
        todo = list(self.services if names is None else names)
        order: list[str] = []
        while todo:
            name = todo.pop(0)
            if name in order:
                continue
            svc = every.get(name)
            if svc is None:
                raise ComposeError(f"no such service: {name}")
            order.append(name)
            if deps:
                todo.extend(d for d, dep in svc.depends_on.items() if dep.required or d in every)
        for name in order:
            svc = every[name]
            if need_image and svc.run_problems:
                raise svc.run_problems[0].error()
            if svc.env_file_problems:
                raise svc.env_file_problems[0].error()
        return tuple(order)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        d["services"] = {n: self.services[n].to_dict() for n in sorted(self.services)}
        for key in ("networks", "volumes", "secrets", "configs"):
            res: Mapping[str, Resource] = getattr(self, key)
            if res:
                d[key] = {n: res[n].to_dict() for n in sorted(res)}
        for k in sorted(self.extensions):
            d[k] = _thaw(self.extensions[k])
        return d
