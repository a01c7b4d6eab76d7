"""Networking on one shared loopback (DESIGN §10), decided before anything starts.

There are no network namespaces: every service shares the host's ports and reaches the others
on 127.0.0.1 through a generated ``/etc/hosts``.

- With a proot that has ``-p IN:OUT`` one project-wide port map is passed to *every* service, so
  a service listening on its container port is really on the published host port and a
  neighbour connecting to ``db:5432`` is rewritten the same way. Container ports below 1024 that
  are not published are mapped to ``20000 + port`` so that they can be bound unprivileged.
- Termux's proot (``-p`` without argument) moves every bind of, and loopback connect to, a port
  below 1024 up by 2000: a service on container port 80 is host port 2080 and its neighbours
  still reach it as ``web:80``; a published port is relayed to the shifted one.
- Without ``-p``: ``published == target`` works directly; ``published != target`` is served by a
  TCP relay in the supervisor (published -> target). Ports below 1024 (unprivileged) and two
  services on the same container port cannot work and are refused up front, with the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..errors import ProotError
from .model import ProjectModel, as_dict

LOW_PORT_BASE = 20000
LOW_PORT_SHIFT = 2000  # Termux's proot -p


@attrs.frozen(kw_only=True)
class Relay:
    host_ip: str
    listen: int
    target: int


@attrs.frozen(kw_only=True)
class PortPlan:
    port_map: Mapping[int, int] = attrs.field(factory=dict, converter=as_dict, hash=False)
    relays: tuple[Relay, ...] = ()
    # service -> [(host_ip, published, target, protocol)] as `ps` shows them
    published: Mapping[str, tuple[tuple[str, int, int, str], ...]] = attrs.field(
        factory=dict, converter=as_dict, hash=False
    )


_FIX = (
    "install a proot with port mapping (upstream proot >= 5.2, e.g. 5.4.0; Termux's proot "
    "only shifts ports below 1024) and point OPENCONTAINER_PROOT at it"
)


def plan_ports(project: ProjectModel, *, port_map: bool, privileged: bool = False,
               low_port_shift: bool = False) -> PortPlan:
    """The ports of ``project``; ``low_port_shift``: Termux's proot -p is in use."""
    owners: dict[int, str] = {}
    mapping: dict[int, int] = {}
    relays: list[Relay] = []
    published: dict[str, list[tuple[str, int, int, str]]] = {}
    problems: list[str] = []
    for name in sorted(project.services):
        svc = project.services[name]
        seen_here: set[int] = set()
        for p in svc.ports:
            t = p.target
            if t in owners and owners[t] != name:
                problems.append(
                    f"services {owners[t]!r} and {name!r} both use container port {t}, "
                    "but all services share one loopback"
                )
                continue
            owners[t] = name
            if t in seen_here and p.published is not None and mapping.get(t) not in (
                None,
                p.published,
            ):
                problems.append(f"service {name!r} publishes container port {t} twice")
                continue
            seen_here.add(t)
            host_port = p.published if p.published is not None else t
            if port_map:
                if p.published is not None and p.published != t:
                    mapping[t] = p.published
                elif t < 1024 and not privileged:
                    if p.published is not None:
                        problems.append(
                            f"service {name!r} publishes port {t}, below 1024, which needs root"
                        )
                        continue
                    mapping[t] = LOW_PORT_BASE + t
                    host_port = mapping[t]
            else:
                # Termux's proot -p binds (and loopback-connects) ports < 1024 at +2000
                shifted = low_port_shift and t < 1024 and not privileged
                host_target = t + LOW_PORT_SHIFT if shifted else t
                if t < 1024 and not privileged and not shifted:
                    problems.append(
                        f"service {name!r} listens on container port {t}, below 1024, and this "
                        "proot cannot map ports"
                    )
                    continue
                if p.published is not None and p.published < 1024 and not privileged:
                    problems.append(
                        f"service {name!r} publishes port {p.published}, below 1024, which "
                        "needs root"
                    )
                    continue
                if p.published is not None and p.published != host_target:
                    if p.protocol != "tcp":
                        problems.append(
                            f"service {name!r} maps {p.protocol} port {p.published}->{t}, but "
                            "only TCP can be relayed without proot's port map"
                        )
                        continue
                    relays.append(Relay(host_ip=p.host_ip or "127.0.0.1",
                                        listen=p.published, target=host_target))
            if p.published is not None:
                published.setdefault(name, []).append(
                    (p.host_ip or "0.0.0.0", host_port, t, p.protocol)
                )
    if problems:
        fix = "" if port_map else f"; {_FIX}"
        raise ProotError("cannot set up the ports: " + "; ".join(problems) + fix + ".")
    return PortPlan(
        port_map=mapping,
        relays=tuple(relays),
        published={k: tuple(v) for k, v in published.items()},
    )


def hosts_file(project: ProjectModel, service: str, container: str) -> str:
    """The ``/etc/hosts`` of one container: every service name, alias and container name."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    names: list[str] = []
    for name in sorted(project.services):
        svc = project.services[name]
        for n in (name, *svc.aliases, *svc.container_names(project.name),
                  svc.hostname or ""):
            if n and n not in names:
                names.append(n)
    if container not in names:
        names.append(container)
    lines.append("127.0.0.1\t" + " ".join(names))
    own = project.services.get(service)
    if own is not None:
        for host, ip in own.extra_hosts:
            addr = "127.0.0.1" if ip in ("host-gateway", "") else ip.strip("[]")
            lines.append(f"{addr}\t{host}")
    return "\n".join(lines) + "\n"
