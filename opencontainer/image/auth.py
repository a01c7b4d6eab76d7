"""Registry credentials (``~/.docker/config.json``) and the token dance.

Credentials come from the Docker CLI's config file: ``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``. ``auths.<host>.auth`` is ``base64(user:password)``;
``credHelpers.<host>`` or ``credsStore`` name a ``docker-credential-<name>`` program that is run
as ``docker-credential-<name> get`` with the server on stdin and answers
``{"Username": ..., "Secret": ...}``.

Auth follows the Distribution token spec: a request answered ``401`` with
``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` gets a token from the realm (with
basic auth when we have credentials), and is retried with ``Authorization: Bearer``. Tokens are
reused per (host, scope). ``WWW-Authenticate: Basic`` gets the credentials directly.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import structlog

from ..errors import AuthError, ConfigError, RegistryError
from ..paths import atomic_write

log = structlog.get_logger(__name__)

DOCKER_HUB_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
)
HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}


@attrs.frozen(repr=False)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    cfg_dir = env.get("DOCKER_CONFIG")
    if cfg_dir:
        return Path(cfg_dir).expanduser() / "config.json"
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".docker" / "config.json"


def _key_host(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def config_key(host: str) -> str:
    """The key ``docker login`` writes for ``host``."""
    if host in HUB_HOSTS:
        return DOCKER_HUB_KEYS[0]
    return host


class DockerConfig:
    """A Docker CLI config file (read lazily; written atomically with mode 0600)."""

    def __init__(self, path: Path, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.env = dict(os.environ if env is None else env)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, path: Path | None = None
    ) -> DockerConfig:
        if path is not None and path.is_dir():
            path = path / "config.json"
        return cls(path or docker_config_path(env), env)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is not a readable Docker config file ({exc}).") from exc
        return data if isinstance(data, dict) else {}

    def _candidates(self, host: str) -> list[str]:
        return list(DOCKER_HUB_KEYS) if host in HUB_HOSTS else [host]

    def get(self, host: str) -> Credentials | None:
        data = self.read()
        hosts = {_key_host(k) for k in self._candidates(host)}
        helper = (data.get("credHelpers") or {}).get(host)
        if helper is None and host in HUB_HOSTS:
            helpers = data.get("credHelpers") or {}
            helper = next((helpers[k] for k in DOCKER_HUB_KEYS if k in helpers), None)
        for key, entry in (data.get("auths") or {}).items():
            if _key_host(key) not in hosts or not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"{self.path}: the auth for {key} is not base64.") from exc
                return Credentials(user, password)
            if entry.get("username") and entry.get("password"):
                return Credentials(str(entry["username"]), str(entry["password"]))
        store = helper or data.get("credsStore")
        if store:
            server = self._candidates(host)[0]
            return self._helper_get(str(store), server)
        return None

    def _helper_get(self, helper: str, server: str) -> Credentials | None:
        program = f"docker-credential-{helper}"
        try:
            proc = subprocess.run(
                [program, "get"],
                input=server.encode(),
                capture_output=True,
                timeout=30,
                env=self.env,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{self.path} names the credential helper {program}, which is not installed."
            ) from exc
        if proc.returncode != 0:
            log.debug("credential helper has nothing", helper=program, server=server)
            return None
        try:
            data = json.loads(proc.stdout)
            return Credentials(str(data["Username"]), str(data["Secret"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"credential helper {program} gave an unreadable answer.") from exc

    def store(self, host: str, creds: Credentials) -> None:
        data = self.read()
        key = config_key(host)
        helper = (data.get("credHelpers") or {}).get(key) or data.get("credsStore")
        if helper:
            program = f"docker-credential-{helper}"
            payload = json.dumps(
                {"ServerURL": key, "Username": creds.username, "Secret": creds.password}
            )
            try:
                proc = subprocess.run(
                    [program, "store"], input=payload.encode(), capture_output=True,
                    timeout=30, env=self.env, check=False,
                )
            except FileNotFoundError as exc:
                raise ConfigError(f"credential helper {program} is not installed.") from exc
            if proc.returncode != 0:
                raise ConfigError(f"credential helper {program} could not store the login.")
            data.setdefault("auths", {})[key] = {}
        else:
            raw = f"{creds.username}:{creds.password}".encode()
            data.setdefault("auths", {})[key] = {"auth": base64.b64encode(raw).decode()}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, json.dumps(data, indent="\t") + "\n", mode=0o600)

    def erase(self, host: str) -> bool:
        data = self.read()
        auths = data.get("auths") or {}
        hosts = {_key_host(k) for k in self._candidates(host)}
        keys = [k for k in auths if _key_host(k) in hosts]
        helper = (data.get("credHelpers") or {}).get(config_key(host)) or data.get("credsStore")
        if helper:
            subprocess.run(
                [f"docker-credential-{helper}", "erase"], input=config_key(host).encode(),
                capture_output=True, timeout=30, env=self.env, check=False,
            )
        if not keys:
            return bool(helper)
        for k in keys:
            del auths[k]
        atomic_write(self.path, json.dumps(data, indent="\t") + "\n", mode=0o600)
        return True


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', rest)
    }
    return scheme.lower(), params


class Authenticator:
    """Per-pull auth state: credentials per host and tokens per (host, scope)."""

    def __init__(
        self, config: DockerConfig | None, overrides: Mapping[str, Credentials] | None = None
    ) -> None:
        self.config = config
        self.overrides = dict(overrides or {})
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: dict[str, str] = {}
        self._creds: dict[str, Credentials | None] = {}

    def credentials(self, host: str) -> Credentials | None:
        if host in self.overrides:
            return self.overrides[host]
        if host not in self._creds:
            self._creds[host] = self.config.get(host) if self.config else None
        return self._creds[host]

    def header_for(self, host: str, scope: str) -> str | None:
        token = self._tokens.get((host, scope))
        if token:
            return f"Bearer {token}"
        return self._basic.get(host)

    def forget(self, host: str, scope: str) -> None:
        self._tokens.pop((host, scope), None)

    async def answer(
        self, session: aiohttp.ClientSession, host: str, challenge: str, scope: str
    ) -> str:
        """Turn a 401 challenge into an Authorization header (or raise AuthError)."""
        scheme, params = parse_challenge(challenge)
        creds = self.credentials(host)
        if scheme == "basic":
            if creds is None:
                raise AuthError(
                    f"registry {host} requires authentication; run 'opencontainer login {host}'."
                )
            self._basic[host] = creds.basic_header()
            return self._basic[host]
        if scheme != "bearer" or "realm" not in params:
            raise AuthError(f"registry {host} asks for an authentication scheme we do not know.")
        query = {"service": params["service"]} if params.get("service") else {}
        wanted = params.get("scope") or scope
        if wanted:
            query["scope"] = wanted
        headers = {"Authorization": creds.basic_header()} if creds else {}
        try:
            async with session.get(params["realm"], params=query, headers=headers) as resp:
                if resp.status in (401, 403):
                    if creds is None:
                        raise AuthError(
                            f"registry {host} requires authentication; "
                            f"run 'opencontainer login {host}'."
                        )
                    raise AuthError(
                        f"login to {host} failed: wrong username or password for "
                        f"{creds.username!r}."
                    )
                if resp.status != 200:
                    raise RegistryError(
                        f"the token server of {host} answered HTTP {resp.status}."
                    )
                body = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise RegistryError(f"cannot reach the token server of {host} ({exc}).") from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f"the token server of {host} gave no token.")
        self._tokens[(host, scope)] = str(token)
        return f"Bearer {token}"


__all__ = [
    "Authenticator",
    "Credentials",
    "DockerConfig",
    "config_key",
    "docker_config_path",
    "parse_challenge",
]
