"""The basic-auth and token-auth registries and the token server."""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.fixtures.procs import http_status
from tests.fixtures.push import RegistryClient, RegistryHTTPError, parse_challenge
from tests.fixtures.registry import Registry
from tests.fixtures.tokenserver import TokenServer

pytestmark = pytest.mark.integration


def _token_status(realm: str, service: str, scope: str, creds: tuple[str, str] | None) -> int:
    url = realm + "?" + urllib.parse.urlencode({"service": service, "scope": scope})
    req = urllib.request.Request(url)
    if creds:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(":".join(creds).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_basic_registry_requires_auth(basic_auth_registry: Registry) -> None:
    reg = basic_auth_registry
    assert http_status(reg.url + "/v2/") == 401
    assert reg.username and reg.password and reg.private_repository
    good = RegistryClient(reg.url, reg.username, reg.password)
    resp = good.get_manifest(reg.private_repository, "latest")
    assert resp.headers["docker-content-digest"] == reg.busybox_digest
    with pytest.raises(RegistryHTTPError) as err:
        RegistryClient(reg.url).get_manifest(reg.private_repository, "latest")
    assert err.value.status == 401
    with pytest.raises(RegistryHTTPError) as err:
        RegistryClient(reg.url, reg.username, "wrong").get_manifest(
            reg.private_repository, "latest")
    assert err.value.status == 401


def test_token_registry_challenge(token_auth_registry: Registry) -> None:
    reg = token_auth_registry
    req = urllib.request.Request(f"{reg.url}/v2/{reg.private_repository}/manifests/latest")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    err.value.close()
    assert err.value.code == 401
    kind, params = parse_challenge(err.value.headers["WWW-Authenticate"])
    assert kind == "bearer"
    assert params["realm"] == reg.realm
    assert params["service"] == reg.service
    assert params["scope"] == f"repository:{reg.private_repository}:pull"


def test_token_anonymous_pulls_public_only(token_auth_registry: Registry) -> None:
    reg = token_auth_registry
    assert reg.public_repository and reg.private_repository
    anon = RegistryClient(reg.url)
    resp = anon.get_manifest(reg.public_repository, "latest")
    assert resp.headers["docker-content-digest"] == reg.busybox_digest
    with pytest.raises(RegistryHTTPError) as err:
        RegistryClient(reg.url).get_manifest(reg.private_repository, "latest")
    assert err.value.status == 401


def test_token_authenticated_pulls_private(
    token_auth_registry: Registry, token_server: TokenServer
) -> None:
    reg = token_auth_registry
    assert reg.private_repository
    client = RegistryClient(reg.url, reg.username, reg.password)
    resp = client.get_manifest(reg.private_repository, "latest")
    assert resp.headers["docker-content-digest"] == reg.busybox_digest
    assert any(acct == reg.username and status == 200 for acct, _, status in
               token_server.log.entries)


def test_token_server_rejects_wrong_credentials(token_auth_registry: Registry) -> None:
    reg = token_auth_registry
    assert reg.realm and reg.service and reg.username
    scope = f"repository:{reg.private_repository}:pull"
    assert _token_status(reg.realm, reg.service, scope, (reg.username, "wrong")) == 401
    assert _token_status(reg.realm, reg.service, scope, ("nobody", "x")) == 401
    assert _token_status(reg.realm, reg.service, scope, (reg.username, reg.password or "")) == 200
    assert _token_status(reg.realm, reg.service, scope, None) == 200  # anonymous, no access
    with pytest.raises(RegistryHTTPError) as err:
        RegistryClient(reg.url, reg.username, "wrong").get_manifest(
            reg.private_repository or "", "latest")
    assert err.value.status == 401
