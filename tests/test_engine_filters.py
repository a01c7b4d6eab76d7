"""``ps --filter``: every docker key, its OR/AND rules, and the refusals (exit 125)."""

from __future__ import annotations

import pytest

from opencontainer.engine.filters import (
    ContainerSummary,
    FilterError,
    Filters,
    Mount,
    Published,
)

WEB = ContainerSummary(
    id="aaaa1111" + "0" * 56, name="web", image="busybox", image_id="sha256:" + "b" * 64,
    created=100.0, status="running", health="healthy",
    labels={"ci": "", "tier": "front"},
    mounts=(Mount(destination="/data", name="webdata"),
            Mount(destination="/conf", source="/host/conf")),
    published=(Published(container_port=80, host_port=8080),),
    exposed=("80/tcp", "443/tcp"), networks=("proj_default",),
)
DB = ContainerSummary(
    id="bbbb2222" + "0" * 56, name="proj-db-1", image="docker.io/library/postgres:15",
    image_id="sha256:" + "c" * 64, created=200.0, status="exited", exit_code=3,
    labels={"tier": "back", "com.docker.compose.project": "proj"},
    published=(Published(container_port=5432, host_port=5432, protocol="tcp"),
               Published(container_port=53, host_port=5353, protocol="udp")),
    networks=("proj_default", "proj_back"),
)
JOB = ContainerSummary(
    id="aaaa3333" + "0" * 56, name="job", image="busybox:latest", image_id="sha256:" + "b" * 64,
    created=300.0, status="created",
)
ALL = [WEB, DB, JOB]


def names(*specs: str) -> list[str]:
    return [c.name for c in Filters.parse(specs).select(ALL)]


def test_no_filter_keeps_everything() -> None:
    assert not Filters.parse([])
    assert names() == ["web", "proj-db-1", "job"]


def test_id_is_a_prefix() -> None:
    assert names("id=aaaa") == ["web", "job"]
    assert names("id=aaaa1") == ["web"]
    assert names("id=1111") == []  # not a substring match


def test_name_is_a_substring_or_regex() -> None:
    assert names("name=o") == ["proj-db-1", "job"]
    assert names("name=db") == ["proj-db-1"]
    assert names("name=^proj-") == ["proj-db-1"]
    assert names("name=^/web$") == ["web"]  # docker's leading slash
    assert names("name=web", "name=job") == ["web", "job"]  # same key: OR
    assert names("name=[") == []  # not a regex: a plain substring


def test_label_key_and_key_value_all_must_match() -> None:
    assert names("label=ci") == ["web"]
    assert names("label=tier") == ["web", "proj-db-1"]
    assert names("label=tier=back") == ["proj-db-1"]
    assert names("label=tier=") == []
    assert names("label=ci", "label=tier=back") == []  # label: AND, as docker
    assert names("label=com.docker.compose.project=proj") == ["proj-db-1"]
    assert names("label=nope") == []


def test_status_and_that_it_lists_stopped_ones() -> None:
    assert names("status=exited") == ["proj-db-1"]
    assert names("status=running", "status=created") == ["web", "job"]
    assert Filters.parse(["status=running"]).shows_all
    assert not Filters.parse(["name=x"]).shows_all


def test_exited_matches_only_exited_containers_with_that_code() -> None:
    assert names("exited=3") == ["proj-db-1"]
    assert names("exited=0") == []
    assert names("exited=0", "exited=3") == ["proj-db-1"]


def test_health() -> None:
    assert names("health=healthy") == ["web"]
    assert names("health=none") == ["proj-db-1", "job"]
    assert names("health=starting") == []


def test_ancestor_by_reference_and_id() -> None:
    assert names("ancestor=busybox") == ["web", "job"]
    assert names("ancestor=busybox:latest") == ["web", "job"]
    assert names("ancestor=docker.io/library/busybox") == ["web", "job"]
    assert names("ancestor=postgres:15") == ["proj-db-1"]
    assert names("ancestor=postgres") == []  # postgres:latest is another image
    assert names("ancestor=bbbbbbbb") == ["web", "job"]  # an image ID prefix
    assert names("ancestor=sha256:cccc") == ["proj-db-1"]
    # a resolver gives the ID of a reference: another tag of the same image matches too
    got = Filters.parse(["ancestor=mytag"]).select(ALL, resolve_image=lambda r: "b" * 64)
    assert [c.name for c in got] == ["web", "job"]


def test_volume_by_name_source_or_destination() -> None:
    assert names("volume=webdata") == ["web"]
    assert names("volume=/data") == ["web"]
    assert names("volume=/host/conf") == ["web"]
    assert names("volume=other") == []


def test_publish_and_expose() -> None:
    assert names("publish=80") == ["web"]
    assert names("publish=80/tcp") == ["web"]
    assert names("publish=8080") == []  # the container's port, as docker
    assert names("publish=53/udp") == ["proj-db-1"]
    assert names("publish=53") == []  # tcp by default
    assert names("publish=5000-6000") == ["proj-db-1"]
    assert names("expose=443") == ["web"]  # exposed by the image
    assert names("expose=5432") == ["proj-db-1"]  # published counts as exposed
    assert names("expose=1-100/udp") == ["proj-db-1"]


def test_network() -> None:
    assert names("network=proj_default") == ["web", "proj-db-1"]
    assert names("network=proj_back") == ["proj-db-1"]
    assert names("network=proj") == []


def test_before_and_since_by_name_or_id() -> None:
    assert names("before=proj-db-1") == ["web"]
    assert names("since=proj-db-1") == ["job"]
    assert names("since=web", "before=job") == ["proj-db-1"]
    assert names("before=bbbb") == ["web"]
    with pytest.raises(FilterError, match="no such container") as exc:
        names("before=ghost")
    assert exc.value.exit_code == 125
    with pytest.raises(FilterError, match="several containers"):
        names("since=aaaa")


def test_different_keys_all_apply() -> None:
    assert names("ancestor=busybox", "status=created") == ["job"]
    assert names("label=tier", "network=proj_back", "exited=3") == ["proj-db-1"]
    assert names("label=ci", "status=exited") == []


@pytest.mark.parametrize("spec, words", [
    ("bogus=1", "invalid filter 'bogus'"),
    ("label", "expected KEY=VALUE"),
    ("=x", "expected KEY=VALUE"),
    ("status=sleeping", "the statuses are"),
    ("health=great", "use one of"),
    ("exited=zero", "a number"),
    ("publish=http", "PORT[/PROTOCOL]"),
    ("expose=80/icmp", "PORT[/PROTOCOL]"),
    ("publish=90-80", "not a port range"),
    ("label=", "needs a value"),
])
def test_refusals_are_one_sentence_and_exit_125(spec: str, words: str) -> None:
    with pytest.raises(FilterError) as exc:
        Filters.parse([spec])
    assert exc.value.exit_code == 125
    msg = str(exc.value)
    assert words in msg and msg.endswith(".") and "\n" not in msg
