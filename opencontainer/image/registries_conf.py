"""containers-registries.conf(5), version 2: where to pull a repository from.

::

    unqualified-search-registries = ["docker.io"]

    [[registry]]
    prefix = "docker.io"            # what the reference starts with (host, host/path, *.host)
    location = "registry-1.docker.io"   # where that prefix really lives (default: the prefix)
    insecure = false                # plain HTTP / unverified TLS allowed
    blocked = false                 # refuse to pull from it
    [[registry.mirror]]
    location = "127.0.0.1:5000"     # tried first, in order, then the location
    insecure = true

The file is ``$OPENCONTAINER_REGISTRIES_CONF``, else ``$XDG_CONFIG_HOME/containers/registries.conf``
(default ``~/.config/containers/registries.conf``), else ``/etc/containers/registries.conf``.
Short names always mean Docker Hub, as with ``docker pull`` (``unqualified-search-registries`` is
read and exposed but not used to guess).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import attrs

from ..errors import ConfigError, RegistryError
from .reference import DEFAULT_DOMAIN, Reference

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@attrs.frozen
class Endpoint:
    """One place to pull ``repository`` from: ``host`` (with port), path inside it, scheme."""

    host: str
    repository: str
    insecure: bool = False
    mirror: bool = False

    @property
    def plain_http(self) -> bool:
        """Docker talks plain HTTP to loopback registries; we also do for ``insecure`` ones."""
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host
        return self.insecure or hostname in ("localhost", "127.0.0.1", "[::1]") or (
            hostname.startswith("127.")
        )

    @property
    def base_url(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}"


@attrs.frozen
class Mirror:
    location: str
    insecure: bool = False


@attrs.frozen
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Mirror, ...] = ()

    def matches(self, name: str) -> bool:
        if self.prefix.startswith("*."):
            host = name.split("/", 1)[0]
            return host.endswith(self.prefix[1:])
        return name == self.prefix or name.startswith(self.prefix + "/")


@attrs.frozen
class RegistriesConf:
    registries: tuple[RegistryEntry, ...] = ()
    unqualified_search_registries: tuple[str, ...] = ()
    source: Path | None = None

    def find(self, ref: Reference) -> RegistryEntry | None:
        """The entry with the longest matching prefix for ``ref`` (host/path)."""
        name = ref.repository
        best: RegistryEntry | None = None
        for entry in self.registries:
            if entry.matches(name) and (best is None or len(entry.prefix) > len(best.prefix)):
                best = entry
        return best

    def endpoints(self, ref: Reference) -> list[Endpoint]:
        """Where to try, in order: the mirrors, then the location. Raises if blocked."""
        entry = self.find(ref)
        if entry is None:
            host = DOCKER_HUB_ENDPOINT if ref.domain == DEFAULT_DOMAIN else ref.domain
            return [Endpoint(host=host, repository=ref.path)]
        if entry.blocked:
            raise RegistryError(
                f"registry {entry.prefix} is blocked in "
                f"{self.source or 'registries.conf'}, so {ref.familiar()} cannot be pulled."
            )
        name = ref.repository
        if entry.prefix.startswith("*."):
            rest = name.split("/", 1)[1]
        else:
            rest = name[len(entry.prefix) :].lstrip("/")
        out: list[Endpoint] = []
        for mirror in entry.mirrors:
            out.append(_endpoint(mirror.location, rest, mirror.insecure, mirror=True))
        location = entry.location or entry.prefix
        if location == DEFAULT_DOMAIN:
            location = DOCKER_HUB_ENDPOINT
        out.append(_endpoint(location, rest, entry.insecure, mirror=False))
        return out


def _endpoint(location: str, rest: str, insecure: bool, *, mirror: bool) -> Endpoint:
    location = location.removeprefix("https://").removeprefix("http://").rstrip("/")
    host, _, base = location.partition("/")
    if host == DEFAULT_DOMAIN:
        host = DOCKER_HUB_ENDPOINT
    repository = f"{base}/{rest}" if base else rest
    return Endpoint(host=host, repository=repository, insecure=insecure, mirror=mirror)


def config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The registries.conf to read, or None when there is none."""
    env = os.environ if env is None else env
    named = env.get("OPENCONTAINER_REGISTRIES_CONF")
    if named:
        return Path(named).expanduser()
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or "~").expanduser() / ".config")
    user = Path(xdg) / "containers" / "registries.conf"
    if user.is_file():
        return user
    system = Path("/etc/containers/registries.conf")
    return system if system.is_file() else None


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false.")
    return value


def parse(text: str, source: Path | None = None) -> RegistriesConf:
    where = str(source or "registries.conf")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}.") from exc
    entries: list[RegistryEntry] = []
    for i, raw in enumerate(data.get("registry", []) or []):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [[registry]] #{i + 1} must be a table.")
        prefix = str(raw.get("prefix") or raw.get("location") or "")
        if not prefix:
            raise ConfigError(f"{where}: [[registry]] #{i + 1} needs a prefix or a location.")
        mirrors = tuple(
            Mirror(
                location=str(m.get("location", "")),
                insecure=_bool(m.get("insecure", False), f"{where}: mirror insecure"),
            )
            for m in raw.get("mirror", []) or []
            if isinstance(m, dict) and m.get("location")
        )
        entries.append(
            RegistryEntry(
                prefix=prefix.removeprefix("https://").removeprefix("http://").rstrip("/"),
                location=str(raw.get("location") or prefix),
                insecure=_bool(raw.get("insecure", False), f"{where}: insecure"),
                blocked=_bool(raw.get("blocked", False), f"{where}: blocked"),
                mirrors=mirrors,
            )
        )
    search = data.get("unqualified-search-registries", []) or []
    return RegistriesConf(
        registries=tuple(entries),
        unqualified_search_registries=tuple(str(s) for s in search),
        source=source,
    )


def load(env: Mapping[str, str] | None = None, path: Path | None = None) -> RegistriesConf:
    """Read the registries.conf that applies (an empty config when there is none)."""
    path = path or config_path(env)
    if path is None:
        return RegistriesConf()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return RegistriesConf()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}.") from exc
    return parse(text, path)


__all__ = ["Endpoint", "Mirror", "RegistriesConf", "RegistryEntry", "config_path", "load", "parse"]
