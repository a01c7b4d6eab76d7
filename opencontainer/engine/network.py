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

from collections.abc import Callable, Mapping

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


def hosts_file(project: ProjectModel, service: str, container: str,
               host_gateway: str = "") -> str:
    """The ``/etc/hosts`` of one container: every service name, alias and container name;
    ``host_gateway``: the address at which a private network reaches the host's loopback
    (``host.docker.internal``, and ``extra_hosts: host-gateway``)."""
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
    gateway = host_gateway or "127.0.0.1"
    own = project.services.get(service)
    extra = list(own.extra_hosts) if own is not None else []
    if host_gateway and "host.docker.internal" not in {h for h, _ in extra}:
        extra.append(("host.docker.internal", "host-gateway"))
    for host, ip in extra:
        addr = gateway if ip in ("host-gateway", "") else ip.strip("[]")
        lines.append(f"{addr}\t{host}")
    return "\n".join(lines) + "\n"


# -- private networks (issue 13) -------------------------------------------------------------
FORWARDERS = ("slirp4netns", "pasta")  # the default first: see docs/architecture.md
TUN = "/dev/net/tun"


@attrs.frozen(kw_only=True)
class NetworkChoice:
    """How a project's containers are networked. ``model``: ``private`` (a network namespace
    of the project's own, ports forwarded by ``forwarder``) or ``host`` (the shared loopback
    above); ``reason``: why, in a few words (``doctor``, ``inspect``)."""

    model: str
    reason: str
    forwarder: str = ""
    binary: str = ""
    # SUBUID:SUBGID:COUNT when native-backend containers with subordinate ids may join: the
    # holder's user namespace maps them too (runtime/netns.py sub_base)
    sub: str = ""

    @property
    def private(self) -> bool:
        return self.model == "private"


def _tun_usable(path: str = TUN) -> bool:
    import os

    return os.access(path, os.R_OK | os.W_OK)


def choose_network(env: Mapping[str, str], *, userns: bool | None = None,
                   which: Callable[[str], str | None] | None = None,
                   tun_usable: Callable[[], bool] = _tun_usable) -> NetworkChoice:
    """Private where it can work: user namespaces, a forwarder, a usable ``/dev/net/tun``;
    ``OPENCONTAINER_NETWORK=host`` forces the shared loopback, ``OPENCONTAINER_NET_FORWARDER``
    picks slirp4netns or pasta. ``userns``: None = probe now."""
    import shutil

    which = which or shutil.which
    wanted = (env.get("OPENCONTAINER_NETWORK") or "auto").strip().lower()
    if wanted in ("host", "shared"):
        return NetworkChoice(model="host", reason=f"OPENCONTAINER_NETWORK={wanted}")
    if wanted not in ("auto", "private"):
        raise ProotError(f"OPENCONTAINER_NETWORK={wanted!r} is not one of auto, private, host.")
    forced = (env.get("OPENCONTAINER_NET_FORWARDER") or "").strip().lower()
    if forced and forced not in FORWARDERS:
        raise ProotError(f"OPENCONTAINER_NET_FORWARDER={forced!r} is not one of "
                         f"{', '.join(FORWARDERS)}.")
    if userns is None:
        from ..runtime.overlay import userns_works

        userns = userns_works()
    if not userns:
        return NetworkChoice(model="host", reason="no unprivileged user namespaces here")
    found = [(f, which(f)) for f in ((forced,) if forced else FORWARDERS)]
    usable = [(f, b) for f, b in found if b]
    if not usable:
        return NetworkChoice(model="host", reason=(
            f"{forced or 'neither slirp4netns nor pasta'} is not installed"))
    if not tun_usable():
        return NetworkChoice(model="host", reason=f"{TUN} cannot be opened by this user")
    name, binary = usable[0]
    return NetworkChoice(model="private", forwarder=name, binary=str(binary),
                         reason=f"a network namespace per project, ports forwarded by {name}")


def plan_private(project: ProjectModel, *, privileged: bool = False) -> PortPlan:
    """The ports of ``project`` in a network namespace of its own: nothing to map or relay,
    any container port binds (port 80 too); published ports are forwarded from the host.
    Services still share one loopback, so two of them cannot listen on the same port."""
    owners: dict[tuple[int, str], str] = {}
    hosts: dict[tuple[int, str], str] = {}
    published: dict[str, list[tuple[str, int, int, str]]] = {}
    problems: list[str] = []
    for name in sorted(project.services):
        for p in project.services[name].ports:
            key = (p.target, p.protocol)
            if owners.get(key, name) != name:
                problems.append(f"services {owners[key]!r} and {name!r} both use container "
                                f"port {p.target}, but a project's services share one loopback")
                continue
            owners[key] = name
            if p.published is None:
                continue
            if p.published < 1024 and not privileged:
                problems.append(f"service {name!r} publishes port {p.published}, below 1024, "
                                "which needs root on the host")
                continue
            hkey = (p.published, p.protocol)
            if hosts.get(hkey, name) != name:
                problems.append(f"services {hosts[hkey]!r} and {name!r} both publish host "
                                f"port {p.published}")
                continue
            hosts[hkey] = name
            published.setdefault(name, []).append(
                (p.host_ip or "0.0.0.0", p.published, p.target, p.protocol))
    if problems:
        raise ProotError("cannot set up the ports: " + "; ".join(problems) + ".")
    return PortPlan(published={k: tuple(v) for k, v in published.items()})


def forwards(plan: PortPlan) -> list[tuple[str, str, int, int]]:
    """The forwarder's (protocol, host_ip, host_port, container_port) of a private plan."""
    out: list[tuple[str, str, int, int]] = []
    for entries in plan.published.values():
        for host_ip, host, target, proto in entries:
            out.append((proto, "" if host_ip == "0.0.0.0" else host_ip, host, target))
    return sorted(set(out))
