"""``ps --filter``: docker's filter keys over a plain description of each container.

Pure: no disk, no processes. :class:`ContainerSummary` is what a filter looks at (built by
:mod:`opencontainer.engine.index` for standalone and compose containers alike);
:meth:`Filters.parse` turns ``KEY=VALUE`` strings into a :class:`Filters`, refusing an unknown
key or a value that cannot mean anything (exit 125, docker's code for usage errors), and
:meth:`Filters.select` keeps the containers that match.

Docker's semantics: the same key given more than once matches any of its values (OR), different
keys must all match (AND) — except ``label``, where every given label must be present (AND, as
docker's ``MatchKVList``), and ``before``/``since``, which all apply. ``name`` is a regular
expression searched in the name (so a plain word is a substring match; ``^web`` anchors to the
start; docker's leading ``/`` is accepted too), ``id`` is an ID prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from ..errors import ConfigError

USAGE_EXIT = 125

KEYS = ("ancestor", "before", "expose", "exited", "health", "id", "label", "name", "network",
        "publish", "since", "status", "volume")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTHS = ("starting", "healthy", "unhealthy", "none")


class FilterError(ConfigError):
    """A ``--filter`` that cannot be applied (unknown key, bad value): exit 125."""

    exit_code = USAGE_EXIT


def _as_dict(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


def _as_values(value: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return dict(value)


@attrs.frozen(kw_only=True)
class Mount:
    destination: str
    name: str = ""  # a named (or anonymous) volume's name; "" for a bind
    source: str = ""


@attrs.frozen(kw_only=True)
class Published:
    container_port: int
    protocol: str = "tcp"
    host_port: int | None = None
    host_ip: str = ""


@attrs.frozen(kw_only=True)
class ContainerSummary:
    """One container as ``ps`` and its filters see it (docker's vocabulary)."""

    id: str
    name: str
    image: str = ""
    image_id: str = ""
    created: float = 0.0
    status: str = "created"  # one of STATUSES
    exit_code: int | None = None
    health: str = ""  # starting | healthy | unhealthy | "" (no healthcheck)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_as_dict, hash=False)
    mounts: tuple[Mount, ...] = ()
    published: tuple[Published, ...] = ()
    exposed: tuple[str, ...] = ()  # "80/tcp"
    networks: tuple[str, ...] = ()


def _ports(key: str, value: str) -> tuple[int, int, str]:
    """``80``, ``80/udp``, ``8000-8080/tcp`` -> (first, last, protocol)."""
    text, _, proto = value.partition("/")
    proto = proto.lower() or "tcp"
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not m or proto not in ("tcp", "udp", "sctp"):
        raise FilterError(f"invalid filter '{key}={value}': use PORT[/PROTOCOL] or "
                          "START-END[/PROTOCOL].")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else first
    if first > last or last > 65535:
        raise FilterError(f"invalid filter '{key}={value}': not a port range.")
    return first, last, proto


def _reference_forms(ref: str) -> set[str]:
    """The ways one image reference may be written: as given, and docker-normalised."""
    out = {ref}
    try:
        from ..image.reference import normalize

        out.add(normalize(ref))
    except Exception:  # not a reference (an ID, a typo): compared as given
        pass
    return out


def _name_matches(pattern: str, name: str) -> bool:
    try:
        rx = re.compile(pattern)
    except re.error:
        return pattern in name
    return bool(rx.search(name) or rx.search("/" + name))


ImageResolver = Callable[[str], "str | None"]


@attrs.frozen
class Filters:
    """Parsed ``--filter`` values: key -> the values given for it, in order."""

    values: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_as_values)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Filters:
        values: dict[str, list[str]] = {}
        for spec in specs:
            key, sep, value = spec.partition("=")
            key = key.strip().lower()
            if not sep or not key:
                raise FilterError(f"bad format of filter {spec!r}: expected KEY=VALUE.")
            if key not in KEYS:
                raise FilterError(f"invalid filter '{key}': the keys are "
                                  f"{', '.join(KEYS)}.")
            cls._check(key, value)
            values.setdefault(key, []).append(value)
        return cls({k: tuple(v) for k, v in values.items()})

    @staticmethod
    def _check(key: str, value: str) -> None:
        if key == "status" and value not in STATUSES:
            raise FilterError(f"invalid filter 'status={value}': the statuses are "
                              f"{', '.join(STATUSES)}.")
        if key == "health" and value not in HEALTHS:
            raise FilterError(f"invalid filter 'health={value}': use one of "
                              f"{', '.join(HEALTHS)}.")
        if key == "exited" and not re.fullmatch(r"-?\d+", value.strip()):
            raise FilterError(f"invalid filter 'exited={value}': an exit code is a number.")
        if key in ("publish", "expose"):
            _ports(key, value)
        if key in ("before", "since", "label", "ancestor") and not value:
            raise FilterError(f"invalid filter '{key}=': it needs a value.")

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def shows_all(self) -> bool:
        """As docker: a ``status`` filter lists stopped containers without ``-a``."""
        return "status" in self.values

    # -- matching --------------------------------------------------------------------------
    def select(self, containers: Sequence[ContainerSummary],
               universe: Sequence[ContainerSummary] | None = None,
               resolve_image: ImageResolver | None = None) -> list[ContainerSummary]:
        """The containers that pass every filter. ``universe``: where ``before``/``since``
        names are looked up (default: ``containers``); ``resolve_image``: an image reference
        -> its ID, for ``ancestor`` (None: references are compared as text)."""
        pool = list(universe if universe is not None else containers)
        bounds_before = [_lookup(pool, v, "before").created for v in self.values.get("before", ())]
        bounds_since = [_lookup(pool, v, "since").created for v in self.values.get("since", ())]
        ancestors = [self._ancestor(v, resolve_image) for v in self.values.get("ancestor", ())]
        out = []
        for c in containers:
            if any(c.created >= b for b in bounds_before):
                continue
            if any(c.created <= b for b in bounds_since):
                continue
            if ancestors and not any(_is_ancestor(c, forms, iid) for forms, iid in ancestors):
                continue
            if self.matches(c):
                out.append(c)
        return out

    @staticmethod
    def _ancestor(value: str, resolve: ImageResolver | None) -> tuple[set[str], str | None]:
        iid = None
        if resolve is not None:
            try:
                iid = resolve(value)
            except Exception:  # an image no longer in the store: match by reference only
                iid = None
        return _reference_forms(value), iid

    def matches(self, c: ContainerSummary) -> bool:
        """Every key but ``before``/``since``/``ancestor`` (which need other data)."""
        v = self.values
        if "id" in v and not any(c.id.startswith(x.lower()) for x in v["id"]):
            return False
        if "name" in v and not any(_name_matches(x, c.name) for x in v["name"]):
            return False
        if not labels_match(c.labels, v.get("label", ())):
            return False
        if "status" in v and c.status not in v["status"]:
            return False
        if "exited" in v and not (c.status == "exited" and c.exit_code is not None
                                  and c.exit_code in {int(x) for x in v["exited"]}):
            return False
        if "health" in v and (c.health or "none") not in v["health"]:
            return False
        if "volume" in v and not any(
            x in (m.destination, m.name or m.source) for x in v["volume"] for m in c.mounts
        ):
            return False
        if "network" in v and not any(x in c.networks for x in v["network"]):
            return False
        if "publish" in v and not any(
            _in_range(p.container_port, p.protocol, "publish", x)
            for x in v["publish"] for p in c.published
        ):
            return False
        if "expose" in v:
            ports = {(p.container_port, p.protocol) for p in c.published}
            for e in c.exposed:
                num, _, proto = e.partition("/")
                if num.isdigit():
                    ports.add((int(num), proto or "tcp"))
            if not any(_in_range(n, proto, "expose", x) for x in v["expose"]
                       for n, proto in ports):
                return False
        return True


def _in_range(port: int, proto: str, key: str, value: str) -> bool:
    first, last, want = _ports(key, value)
    return first <= port <= last and proto == want


def _is_ancestor(c: ContainerSummary, forms: set[str], image_id: str | None) -> bool:
    if _reference_forms(c.image) & forms:
        return True
    if image_id and c.image_id and _same_id(image_id, c.image_id):
        return True
    # an image ID (prefix) given as the filter value
    for f in forms:
        bare = f.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{4,64}", bare) and c.image_id.removeprefix(
                "sha256:").startswith(bare):
            return True
    return False


def _same_id(a: str, b: str) -> bool:
    return a.removeprefix("sha256:") == b.removeprefix("sha256:")


def _lookup(pool: Sequence[ContainerSummary], ref: str, key: str) -> ContainerSummary:
    """``before``/``since``: a container by name, ID or unique ID prefix."""
    for c in pool:
        if c.name == ref.lstrip("/") or c.id == ref:
            return c
    found = [c for c in pool if c.id.startswith(ref.lower())]
    if len(found) == 1:
        return found[0]
    if found:
        raise FilterError(f"invalid filter '{key}={ref}': it matches several containers "
                          f"({', '.join(c.name for c in found)}).")
    raise FilterError(f"invalid filter '{key}={ref}': no such container.")


__all__ = ["HEALTHS", "KEYS", "STATUSES", "ContainerSummary", "FilterError", "Filters", "Mount",
           "Published"]


def labels_match(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    """Whether ``labels`` has every ``key`` / ``key=value`` of a ``label`` filter (docker:
    all of them must match); the containers', volumes', networks' and images' filters."""
    for w in wanted:
        key, sep, value = w.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
