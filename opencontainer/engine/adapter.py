"""The compose loader's :class:`~opencontainer.compose.model.Project` as the engine's
:class:`~opencontainer.engine.model.ProjectModel`.

This module is the only place that knows both models. The loader has already normalised
everything (long forms, absolute paths, seconds as floats, ``deploy`` folded into ``restart``
and ``scale``, secret targets defaulted), so the adapter is a typed field-by-field copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from ..compose.model import (
    FileReference,
    Healthcheck,
    PortConfig,
    Project,
    Resource,
    Service,
    VolumeMount,
)
from ..compose.model import RestartPolicy as ComposeRestart
from ..paths import project_state_dir
from .model import (
    DependencySpec,
    HealthSpec,
    MountSpec,
    PortSpec,
    ProjectModel,
    ServiceConfig,
    VolumeSpec,
)
from .restart import RestartPolicy


def to_model(project: Project | ProjectModel,
             env: Mapping[str, str] | None = None) -> ProjectModel:
    """``project`` as the engine's model, with its ``state_dir`` set (the project's
    ``.containers`` folder, or where ``OPENCONTAINER_PROJECT_STATE`` in ``env`` says)."""
    model = project if isinstance(project, ProjectModel) else from_compose(project)
    if model.state_dir:
        return model
    state_dir = project_state_dir(Path(model.working_dir), env)
    return attrs.evolve(model, state_dir=str(state_dir))


def from_compose(project: Project) -> ProjectModel:
    """The engine's model of a loaded compose project (``state_dir`` left empty)."""
    working_dir = Path(project.working_dir or ".")
    return ProjectModel(
        name=project.name,
        working_dir=str(working_dir),
        services={name: service_config(svc, project, working_dir)
                  for name, svc in project.services.items()},
        volumes={key: VolumeSpec(name=vol.actual_name, external=vol.external)
                 for key, vol in project.volumes.items()},
        compose_files=tuple(project.files),
    )


def service_config(svc: Service, project: Project, working_dir: Path) -> ServiceConfig:
    """One compose service as the engine's :class:`ServiceConfig`."""
    return ServiceConfig(
        name=svc.name,
        image=svc.image or "",
        command=svc.command,
        entrypoint=svc.entrypoint,
        environment={k: "" if v is None else v for k, v in svc.environment.items()},
        working_dir=svc.working_dir,
        user=svc.user,
        hostname=svc.hostname,
        ports=tuple(port_spec(p) for p in svc.ports),
        volumes=mounts(svc, project, working_dir),
        depends_on={name: DependencySpec(condition=d.condition, required=d.required,
                                         restart=d.restart)
                    for name, d in svc.depends_on.items()},
        healthcheck=health_spec(svc.healthcheck),
        restart=restart_policy(svc.restart),
        stop_signal=svc.stop_signal,
        stop_grace_period=svc.stop_grace_period,
        container_name=svc.container_name,
        scale=svc.scale,
        aliases=tuple(a for net in svc.networks.values() for a in net.aliases),
        extra_hosts=tuple(extra_host(e) for e in svc.extra_hosts),
        tty=svc.tty,
        labels=dict(svc.labels),
        networks=() if svc.network_mode else tuple(svc.networks),
        network_mode="host" if svc.network_mode == "host" else "",
    )


def port_spec(port: PortConfig) -> PortSpec:
    """A published range (``8080-8081``) keeps its first port."""
    published = port.published.split("-")[0] if port.published else ""
    return PortSpec(target=port.target, published=int(published) if published else None,
                    host_ip=port.host_ip or "", protocol=port.protocol)


def extra_host(entry: str) -> tuple[str, str]:
    """``host=ip`` (the loader's canonical form; ``host:ip`` is accepted too)."""
    sep = "=" if "=" in entry else ":"
    host, _, ip = entry.partition(sep)
    return host, ip


def restart_policy(policy: ComposeRestart) -> RestartPolicy:
    return RestartPolicy(name=policy.name, max_retries=policy.max_retries)


def health_spec(hc: Healthcheck | None) -> HealthSpec | None:
    """``None`` when the service sets no test (the image's healthcheck, if any, applies)."""
    if hc is None:
        return None
    if hc.disable:
        return HealthSpec(test=("NONE",))
    if hc.test is None:
        return None
    return HealthSpec(
        test=hc.test,
        interval=hc.effective_interval,
        timeout=hc.effective_timeout,
        start_period=hc.effective_start_period,
        start_interval=hc.effective_start_interval,
        retries=hc.effective_retries,
    )


def volume_mount(v: VolumeMount) -> MountSpec:
    kind = v.type
    if kind == "volume" and not v.source:
        kind = "anonymous"
    create = True
    if v.bind is not None:
        create = bool(v.bind.get("create_host_path", True))
    return MountSpec(type=kind, source=v.source or "", target=v.target,
                     read_only=v.read_only, create_host_path=create)


def file_mount(kind: str, ref: FileReference, top: Mapping[str, Resource], project: Project,
               working_dir: Path) -> MountSpec:
    """A secret or config: from its file (relative to the project), its inline ``content``,
    or the project environment variable it names."""
    definition = top.get(ref.source)
    content: str | None = None
    source = ""
    if definition is not None:
        raw = definition.config.get("content")
        content = None if raw is None else str(raw)
        env_name = definition.config.get("environment")
        if env_name is not None and content is None:
            content = project.environment.get(str(env_name), "")
        if definition.file:
            path = Path(definition.file).expanduser()
            source = str(path if path.is_absolute() else working_dir / path)
    return MountSpec(type=kind, source=source, target=ref.target, read_only=True,
                     content=content)


def mounts(svc: Service, project: Project, working_dir: Path) -> tuple[MountSpec, ...]:
    """Volumes, then tmpfs mounts, then secrets and configs."""
    out = [volume_mount(v) for v in svc.volumes]
    out += [MountSpec(type="tmpfs", target=t.split(":")[0]) for t in svc.tmpfs]
    out += [file_mount("secret", r, project.secrets, project, working_dir) for r in svc.secrets]
    out += [file_mount("config", r, project.configs, project, working_dir) for r in svc.configs]
    return tuple(out)
