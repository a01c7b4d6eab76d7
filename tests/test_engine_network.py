"""Ports on one shared loopback and the generated /etc/hosts."""

from __future__ import annotations

import pytest

from opencontainer.engine.model import PortSpec, ProjectModel, ServiceConfig
from opencontainer.engine.network import LOW_PORT_BASE, hosts_file, plan_ports
from opencontainer.errors import ProotError


def project(**ports: tuple[PortSpec, ...]) -> ProjectModel:
    return ProjectModel(name="p", working_dir="/tmp", services={
        n: ServiceConfig(name=n, ports=p) for n, p in ports.items()})


def test_port_map_is_project_wide_and_maps_low_ports() -> None:
    p = project(web=(PortSpec(target=80, published=18080),), db=(PortSpec(target=5432),),
                admin=(PortSpec(target=81),))
    plan = plan_ports(p, port_map=True)
    assert plan.port_map == {80: 18080, 81: LOW_PORT_BASE + 81}
    assert plan.published["web"] == (("0.0.0.0", 18080, 80, "tcp"),)
    assert plan.relays == ()


def test_without_port_map_same_port_works_and_other_ports_are_relayed() -> None:
    p = project(db=(PortSpec(target=6379, published=6379),),
                web=(PortSpec(target=8000, published=18000),))
    plan = plan_ports(p, port_map=False)
    assert plan.port_map == {}
    assert [(r.listen, r.target) for r in plan.relays] == [(18000, 8000)]


def test_without_port_map_low_ports_are_refused_with_the_fix() -> None:
    p = project(web=(PortSpec(target=80, published=8080),))
    with pytest.raises(ProotError, match=r"below 1024.*proot >= 5\.2"):
        plan_ports(p, port_map=False)
    plan_ports(p, port_map=False, privileged=True)


def test_termux_low_port_shift_relays_published_low_ports() -> None:
    """Termux's proot -p: container port 80 is bound at 2080; 8080:80 is relayed there."""
    p = project(web=(PortSpec(target=80, published=8080),), api=(PortSpec(target=81),),
                db=(PortSpec(target=5432, published=15432),))
    plan = plan_ports(p, port_map=False, low_port_shift=True)
    assert plan.port_map == {}
    assert sorted((r.listen, r.target) for r in plan.relays) == [(8080, 2080), (15432, 5432)]
    assert plan.published["web"] == (("0.0.0.0", 8080, 80, "tcp"),)
    with pytest.raises(ProotError, match="publishes port 80, below 1024"):
        plan_ports(project(web=(PortSpec(target=80, published=80),)), port_map=False,
                   low_port_shift=True)


def test_two_services_on_one_container_port_are_refused() -> None:
    p = project(a=(PortSpec(target=8000, published=18001),),
                b=(PortSpec(target=8000, published=18002),))
    with pytest.raises(ProotError, match="both use container port 8000"):
        plan_ports(p, port_map=True)


def test_hosts_file_lists_services_aliases_names_and_extra_hosts() -> None:
    p = ProjectModel(name="p", working_dir="/tmp", services={
        "db": ServiceConfig(name="db", aliases=("database",)),
        "web": ServiceConfig(name="web", container_name="theweb",
                             extra_hosts=(("host.docker.internal", "host-gateway"),
                                          ("other", "10.0.0.5"))),
    })
    text = hosts_file(p, "web", "theweb")
    line = next(ln for ln in text.splitlines() if "db" in ln)
    assert line.startswith("127.0.0.1\t")
    for name in ("db", "database", "p-db-1", "web", "theweb"):
        assert name in line.split()
    assert "127.0.0.1\thost.docker.internal" in text
    assert "10.0.0.5\tother" in text
