"""Image references, registries.conf, docker config credentials, platforms (unit tests)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from opencontainer.errors import ConfigError, ImageNotFound, InvalidReference, RegistryError
from opencontainer.image.archive import apply_changes
from opencontainer.image.auth import Credentials, DockerConfig, parse_challenge
from opencontainer.image.platform import Platform, select_manifest
from opencontainer.image.reference import familiar, normalize, parse_reference
from opencontainer.image.registries_conf import parse as parse_conf

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("postgres", "docker.io/library/postgres:latest", "postgres:latest"),
        ("postgres:15", "docker.io/library/postgres:15", "postgres:15"),
        ("user/app:1.2", "docker.io/user/app:1.2", "user/app:1.2"),
        ("docker.io/library/redis", "docker.io/library/redis:latest", "redis:latest"),
        ("index.docker.io/library/redis:7", "docker.io/library/redis:7", "redis:7"),
        (f"ghcr.io/o/r@{D}", f"ghcr.io/o/r@{D}", f"ghcr.io/o/r@{D}"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        (f"host:5000/a/b:tag@{D}", f"host:5000/a/b:tag@{D}", f"host:5000/a/b:tag@{D}"),
        ("127.0.0.1:5000/a-b/c_d.e__f:v1.0-rc", "127.0.0.1:5000/a-b/c_d.e__f:v1.0-rc", None),
        ("Upper/x", "Upper/x:latest", None),  # upper-case first component = a host
        ("a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"),
    ],
)
def test_parse(text: str, full: str, short: str | None) -> None:
    assert normalize(text) == full
    if short:
        assert familiar(text) == short


def test_parts() -> None:
    ref = parse_reference(f"host:5000/a/b:tag@{D}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", "tag", D)
    assert ref.reference == D
    assert parse_reference("busybox").reference == "latest"
    assert parse_reference("busybox", default_tag=False).tag is None
    assert parse_reference("postgres:15").familiar_name() == "postgres"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("Postgres", "lowercase"),
        ("user/App", "lowercase"),
        ("a b", "spaces"),
        ("x:", "bad tag"),
        ("x:-tag", "bad tag"),
        ("x@sha256:abc", "invalid digest"),
        ("x@sha256:" + "A" * 64, "64"),
        ("x@md5:" + "a" * 32, "unsupported"),
        ("-x", "not a valid"),
        ("x//y", "not a valid"),
        ("x/", "not a valid"),
        ("a" * 300, "longer"),
        (":tag", "no repository"),
    ],
)
def test_invalid(text: str, match: str) -> None:
    with pytest.raises(InvalidReference, match=match):
        parse_reference(text)


CONF = """
unqualified-search-registries = ["docker.io", "quay.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
[[registry.mirror]]
location = "mirror.example.com/hub"

[[registry]]
prefix = "example.com/team"
location = "internal.example.com:8443/mirror/team"
insecure = true

[[registry]]
prefix = "*.blocked.org"
blocked = true

[[registry]]
location = "127.0.0.1:5000"
insecure = true
"""


def test_registries_conf() -> None:
    conf = parse_conf(CONF)
    assert conf.unqualified_search_registries == ("docker.io", "quay.io")
    eps = conf.endpoints(parse_reference("postgres:15"))
    assert [(e.host, e.repository, e.plain_http, e.mirror) for e in eps] == [
        ("127.0.0.1:5000", "library/postgres", True, True),
        ("mirror.example.com", "hub/library/postgres", False, True),
        ("registry-1.docker.io", "library/postgres", False, False),
    ]
    ep = conf.endpoints(parse_reference("example.com/team/app:1"))
    assert [(e.host, e.repository, e.base_url) for e in ep] == [
        ("internal.example.com:8443", "mirror/team/app", "http://internal.example.com:8443")
    ]
    # longest prefix wins; others go where they say
    assert conf.endpoints(parse_reference("example.com/other"))[0].host == "example.com"
    assert conf.endpoints(parse_reference("ghcr.io/o/r"))[0].base_url == "https://ghcr.io"
    with pytest.raises(RegistryError, match="blocked"):
        conf.endpoints(parse_reference("x.blocked.org/a"))


def test_registries_conf_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML"):
        parse_conf("[[registry]\n")
    with pytest.raises(ConfigError, match="true or false"):
        parse_conf('[[registry]]\nprefix = "x"\ninsecure = "yes"\n')
    from opencontainer.image.registries_conf import load

    assert load({"OPENCONTAINER_REGISTRIES_CONF": str(tmp_path / "missing")}).registries == ()
    user = tmp_path / "xdg" / "containers" / "registries.conf"
    user.parent.mkdir(parents=True)
    user.write_text(CONF)
    assert len(load({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).registries) == 4


def test_docker_config_lookup_and_store(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "docker"
    cfg_dir.mkdir()
    auth = base64.b64encode(b"hub:pw").decode()
    (cfg_dir / "config.json").write_text(json.dumps({
        "auths": {
            "https://index.docker.io/v1/": {"auth": auth},
            "http://reg.example.com:5000": {"auth": base64.b64encode(b"u:p:x").decode()},
        },
        "other": "kept",
    }))
    dc = DockerConfig.from_env({"DOCKER_CONFIG": str(cfg_dir)})
    assert dc.get("registry-1.docker.io") == Credentials("hub", "pw")
    assert dc.get("reg.example.com:5000") == Credentials("u", "p:x")
    assert dc.get("nowhere.example.com") is None
    dc.store("127.0.0.1:1234", Credentials("a", "b"))
    data = json.loads((cfg_dir / "config.json").read_text())
    assert data["other"] == "kept"
    assert (cfg_dir / "config.json").stat().st_mode & 0o777 == 0o600
    assert dc.get("127.0.0.1:1234") == Credentials("a", "b")
    assert dc.erase("127.0.0.1:1234") is True
    assert dc.erase("127.0.0.1:1234") is False
    assert "password=***" in repr(Credentials("a", "secret"))


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


INDEX = {
    "manifests": [
        {"digest": "a", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"digest": "c", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "d", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "e", "platform": {"os": "unknown", "architecture": "unknown"}},
    ]
}


@pytest.mark.parametrize(
    ("wanted", "digest"),
    [("linux/amd64", "a"), ("linux/arm/v7", "c"), ("linux/arm/v6", "b"), ("linux/arm64", "d"),
     ("linux/arm64/v8", "d"), ("arm64", "d"), ("linux/x86_64", "a")],
)
def test_select_manifest(wanted: str, digest: str) -> None:
    sel = select_manifest(INDEX, Platform.parse(wanted), explicit=True, name="x")
    assert sel["digest"] == digest


def test_select_manifest_missing_and_bad_platform() -> None:
    with pytest.raises(ImageNotFound, match="linux/s390x"):
        select_manifest(INDEX, Platform.parse("linux/s390x"), explicit=True, name="x")
    with pytest.raises(ConfigError):
        Platform.parse("a/b/c/d")
    assert Platform.host().os == "linux"


def test_apply_changes() -> None:
    cfg: dict[str, object] = {"Env": ["A=0"]}
    apply_changes(cfg, ['CMD ["/bin/app", "-x"]', "ENTRYPOINT run me", "ENV A=1 B=2",
                        "ENV C three", "WORKDIR /srv", "USER 1000", "EXPOSE 80 53/udp",
                        "LABEL a=b", "VOLUME /data", "STOPSIGNAL SIGINT"])
    assert cfg["Cmd"] == ["/bin/app", "-x"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "run me"]
    assert cfg["Env"] == ["A=1", "B=2", "C=three"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    with pytest.raises(ConfigError):
        apply_changes(cfg, ["RUN rm -rf /"])


def test_human_size_and_ago() -> None:
    from opencontainer.humanize import human_ago, human_size

    assert human_size(4_261_000) == "4.26MB"
    assert human_size(999) == "999B"
    assert human_size(123_456_789) == "123MB"
    assert human_ago("2020-01-01T00:00:00Z", now=1_700_000_000).endswith("years ago")
    assert human_ago(None) == "N/A"
