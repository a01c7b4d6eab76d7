"""Normalised values of the loaded model: ports, volumes, environment precedence, extends,
merging, profiles, anchors, ``!reset``/``!override``, include, and error locations."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import structlog

import opencontainer
from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.compose.model import Dependency, PortConfig, Project
from opencontainer.errors import ComposeError

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OPENCONTAINER_SHARED") or REPO.parent / "shared")
CORPUS = SHARED / "compose-corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared compose corpus not found")


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def load(d: Path, *files: str, env: dict[str, str] | None = None, **kw: object) -> Project:
    return load_project(LoadOptions(
        files=tuple(str(d / f) for f in files), env={"HOME": "/home/u", **(env or {})},
        working_dir=str(d), **kw))  # type: ignore[arg-type]


def test_public_reexport() -> None:
    assert opencontainer.load_project is load_project


def test_minimal_project_defaults(tmp_path: Path) -> None:
    write(tmp_path / "My_App", "compose.yaml", """
        services:
          web:
            image: nginx
    """)
    p = load_project(LoadOptions(env={}, working_dir=str(tmp_path / "My_App")))
    assert p.name == "my_app"
    assert p.working_dir == str(tmp_path / "My_App")
    web = p.services["web"]
    assert web.image == "nginx"
    assert web.command is None and web.entrypoint is None
    assert web.restart.name == "no" and web.stop_signal == "SIGTERM"
    assert web.stop_grace_period == 10.0 and web.scale == 1
    assert list(web.networks) == ["default"]
    assert p.networks["default"].config["name"] == "my_app_default"
    d = p.to_dict()
    assert d["services"]["web"] == {"image": "nginx", "networks": {"default": None}}


def test_discovery_upwards_and_override(tmp_path: Path) -> None:
    write(tmp_path, "docker-compose.yml", "services: {a: {image: x}}\n")
    write(tmp_path, "docker-compose.override.yml", "services: {a: {command: run}}\n")
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    p = load_project(LoadOptions(env={}, working_dir=str(sub)))
    assert p.services["a"].command == ("run",)
    assert p.working_dir == str(tmp_path)
    assert len(p.files) == 2


def test_no_file_found(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="no configuration file"):
        load_project(LoadOptions(env={}, working_dir=str(tmp_path)))


def test_compose_file_env_and_separator(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "services: {a: {image: x}}\n")
    write(tmp_path, "b.yml", "services: {a: {image: y}}\n")
    p = load_project(LoadOptions(env={"COMPOSE_FILE": "a.yml;b.yml",
                                      "COMPOSE_PATH_SEPARATOR": ";"}, working_dir=str(tmp_path)))
    assert p.services["a"].image == "y"


def test_stdin_file(tmp_path: Path) -> None:
    p = load_project(LoadOptions(files=("-",), env={}, working_dir=str(tmp_path),
                                 stdin_text="name: fromstdin\nservices: {a: {image: x}}\n"))
    assert p.name == "fromstdin" and p.working_dir == str(tmp_path)


def test_project_name_precedence(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "name: From-File\nservices: {a: {image: x}}\n")
    assert load(tmp_path, "compose.yaml").name == "from-file"
    assert load(tmp_path, "compose.yaml", env={"COMPOSE_PROJECT_NAME": "envname"}).name == "envname"
    assert load(tmp_path, "compose.yaml", env={"COMPOSE_PROJECT_NAME": "envname"},
                project_name="cli").name == "cli"
    with pytest.raises(ComposeError, match="invalid project name"):
        load(tmp_path, "compose.yaml", project_name="Bad Name")
    assert load(tmp_path, "compose.yaml").environment["COMPOSE_PROJECT_NAME"] == "from-file"


def test_ports_normalised(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            ports:
              - 80
              - "8080:80"
              - "127.0.0.1:5432:5432/udp"
              - "[::1]:9000:9000"
              - "3000-3002:4000-4002"
              - "127.0.0.1::81"
              - "7000-7005:22"
              - target: 443
                published: 8443
                protocol: tcp
                mode: host
                name: https
                app_protocol: https
    """)
    ports = load(tmp_path, "compose.yaml").services["a"].ports
    assert ports[0] == PortConfig(target=80)
    assert ports[1] == PortConfig(target=80, published="8080")
    assert ports[2] == PortConfig(target=5432, published="5432", host_ip="127.0.0.1",
                                  protocol="udp")
    assert ports[3].host_ip == "::1" and ports[3].published == "9000"
    assert [(p.target, p.published) for p in ports[4:7]] == [
        (4000, "3000"), (4001, "3001"), (4002, "3002")]
    assert ports[7] == PortConfig(target=81, host_ip="127.0.0.1")
    assert ports[8].published == "7000-7005" and ports[8].target == 22
    assert ports[9] == PortConfig(target=443, published="8443", mode="host", name="https",
                                  app_protocol="https")


def test_volumes_normalised(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            volumes:
              - ./data:/data
              - /abs:/abs:ro
              - ~/cache:/cache:rw,z
              - named:/named:nocopy
              - /anonymous
              - type: bind
                source: ./conf
                target: /conf
                read_only: true
              - type: tmpfs
                target: /tmp
                tmpfs: {size: 64m}
        volumes:
          named: {}
    """)
    vols = load(tmp_path, "compose.yaml").services["a"].volumes
    assert (vols[0].type, vols[0].source, vols[0].target) == ("bind", str(tmp_path / "data"),
                                                                "/data")
    assert vols[0].bind is not None and vols[0].bind["create_host_path"] is True
    assert vols[1].read_only and vols[1].source == "/abs"
    assert vols[2].source == "/home/u/cache" and not vols[2].read_only
    assert vols[2].bind is not None and vols[2].bind["selinux"] == "z"
    assert (vols[3].type, vols[3].source) == ("volume", "named")
    assert vols[3].volume is not None and vols[3].volume["nocopy"] is True
    assert (vols[4].type, vols[4].source, vols[4].target) == ("volume", None, "/anonymous")
    assert vols[5].source == str(tmp_path / "conf") and vols[5].read_only
    assert vols[6].type == "tmpfs" and vols[6].tmpfs is not None
    assert vols[6].tmpfs["size"] == 64 * 1024 * 1024


def test_environment_precedence(tmp_path: Path) -> None:
    write(tmp_path, ".env", "TAG=fromdotenv\nONLY_DOTENV=d\nSHELL_WINS=dotenv\n")
    write(tmp_path, "a.env", "A=1\nB=from-a\nC=from-a\n")
    write(tmp_path, "b.env", "C=from-b\n")
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: "x:${TAG}"
            env_file: [a.env, b.env, {path: missing.env, required: false}]
            environment:
              B: from-environment
              FROM_SHELL:
              UNSET_ONE:
              D: "${ONLY_DOTENV}-${SHELL_WINS}"
    """)
    p = load(tmp_path, "compose.yaml", env={"SHELL_WINS": "shell", "FROM_SHELL": "s"})
    a = p.services["a"]
    assert a.image == "x:fromdotenv"
    assert dict(a.environment) == {"A": "1", "B": "from-environment", "C": "from-b",
                                   "FROM_SHELL": "s", "D": "d-shell"}
    assert p.environment["SHELL_WINS"] == "shell"


def test_env_file_option_and_disable(tmp_path: Path) -> None:
    write(tmp_path, ".env", "TAG=dotenv\n")
    write(tmp_path, "one.env", "TAG=one\n")
    write(tmp_path, "two.env", "TAG=two\n")
    write(tmp_path, "compose.yaml", "services: {a: {image: 'x:${TAG:-none}'}}\n")
    assert load(tmp_path, "compose.yaml").services["a"].image == "x:dotenv"
    assert load(tmp_path, "compose.yaml", env_files=("one.env", "two.env")).services[
        "a"].image == "x:two"
    assert load(tmp_path, "compose.yaml", env={"COMPOSE_DISABLE_ENV_FILE": "true"}).services[
        "a"].image == "x:none"
    with pytest.raises(ComposeError, match="not found"):
        load(tmp_path, "compose.yaml", env_files=("nope.env",))


def test_interpolation_in_values_not_keys(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: "${IMG:-busybox}"
            labels:
              "${KEY}": "$$literal ${VAL:?need VAL}"
    """)
    with structlog.testing.capture_logs() as logs:
        p = load(tmp_path, "compose.yaml", env={"VAL": "v"})
    assert p.services["a"].image == "busybox"
    assert dict(p.services["a"].labels) == {"${KEY}": "$literal v"}
    assert not [e for e in logs if "KEY" in e["event"]]
    with pytest.raises(ComposeError) as info:
        load(tmp_path, "compose.yaml")
    assert "need VAL" in str(info.value) and info.value.line == 5


def test_unset_variable_warns_once(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "services: {a: {image: 'x${NOPE}', command: 'echo $NOPE'}}\n")
    with structlog.testing.capture_logs() as logs:
        p = load(tmp_path, "compose.yaml")
    assert p.services["a"].image == "x"
    assert [e["event"] for e in logs if "NOPE" in e["event"]] == [
        'The "NOPE" variable is not set. Defaulting to a blank string.']


def test_command_and_healthcheck(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            command: sh -c 'echo "hi there"; sleep 1'
            entrypoint: []
            healthcheck:
              test: curl -f http://localhost || exit 1
              interval: 1m30s
              timeout: 10ms
              start_period: 500us
              start_interval: 2s
              retries: 5
            restart: on-failure:3
            stop_grace_period: 1m
          b:
            image: x
            healthcheck: {test: [NONE]}
            deploy: {replicas: 2, restart_policy: {condition: any, max_attempts: 4}}
    """)
    p = load(tmp_path, "compose.yaml")
    a, b = p.services["a"], p.services["b"]
    assert a.command == ("sh", "-c", 'echo "hi there"; sleep 1')
    assert a.entrypoint == ()
    hc = a.healthcheck
    assert hc is not None and hc.test == ("CMD-SHELL", "curl -f http://localhost || exit 1")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        90.0, 0.01, 0.0005, 2.0, 5)
    assert a.restart.name == "on-failure" and a.restart.max_retries == 3
    assert a.stop_grace_period == 60.0
    assert b.healthcheck is not None and b.healthcheck.disable
    assert b.healthcheck.effective_interval == 30.0
    assert b.scale == 2 and b.restart.name == "always" and b.restart.max_retries == 4
    assert p.to_dict()["services"]["a"]["healthcheck"]["interval"] == "1m30s"


def test_depends_on_forms(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          web:
            image: x
            depends_on:
              db: {condition: service_healthy, restart: true}
              cache: {condition: service_started, required: false}
          worker:
            image: x
            depends_on: [db]
          db: {image: x}
    """)
    p = load(tmp_path, "compose.yaml")
    assert p.services["web"].depends_on["db"] == Dependency(condition="service_healthy",
                                                            restart=True)
    assert p.services["worker"].depends_on["db"] == Dependency()
    assert "cache" not in p.services  # optional and undefined: a warning only
    assert any("cache" in w for w in p.warnings)


def test_secrets_and_configs_long_form(tmp_path: Path) -> None:
    write(tmp_path, "pw.txt", "secret\n")
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            secrets:
              - pw
              - {source: pw, target: other, uid: "1000", mode: 0440}
            configs:
              - cfg
              - {source: cfg, target: /etc/cfg.ini}
        secrets:
          pw: {file: ./pw.txt}
        configs:
          cfg: {content: "k=v"}
    """)
    p = load(tmp_path, "compose.yaml")
    s = p.services["a"]
    assert [(r.source, r.target) for r in s.secrets] == [
        ("pw", "/run/secrets/pw"), ("pw", "/run/secrets/other")]
    assert s.secrets[1].uid == "1000" and s.secrets[1].mode == 0o440
    assert [r.target for r in s.configs] == ["/cfg", "/etc/cfg.ini"]
    assert p.secrets["pw"].file == str(tmp_path / "pw.txt")


def test_merge_rules_for_override_files(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            command: [one, two]
            environment: [A=1, B=2]
            ports: ["8080:80", "9090:90"]
            volumes: ["./a:/data", "./b:/other"]
            dns: 8.8.8.8
            labels: {l1: a}
            depends_on: [b]
            healthcheck: {test: [CMD, one], interval: 5s}
          b: {image: x}
    """)
    write(tmp_path, "override.yaml", """
        services:
          a:
            image: y
            command: three
            environment: {B: "3", C: "4"}
            ports: ["8080:80", "7070:70"]
            volumes: ["./c:/data"]
            dns: [1.1.1.1]
            labels: [l2=b]
            depends_on: {b: {condition: service_healthy}}
            healthcheck: {test: [CMD, two]}
    """)
    a = load(tmp_path, "compose.yaml", "override.yaml").services["a"]
    assert a.image == "y"
    assert a.command == ("three",)
    assert dict(a.environment) == {"A": "1", "B": "3", "C": "4"}
    assert [p.published for p in a.ports] == ["8080", "9090", "7070"]
    assert [(v.source, v.target) for v in a.volumes] == [
        (str(tmp_path / "c"), "/data"), (str(tmp_path / "b"), "/other")]
    assert a.dns == ("8.8.8.8", "1.1.1.1")
    assert dict(a.labels) == {"l1": "a", "l2": "b"}
    assert a.depends_on["b"].condition == "service_healthy"
    assert a.healthcheck is not None and a.healthcheck.test == ("CMD", "two")
    assert a.healthcheck.interval == 5.0


def test_reset_and_override_tags(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a:
            image: x
            ports: ["80:80"]
            environment: {A: "1", B: "2"}
            command: echo hi
    """)
    write(tmp_path, "override.yaml", """
        services:
          a:
            ports: !reset []
            environment: !override {C: "3"}
            command: !reset null
    """)
    a = load(tmp_path, "compose.yaml", "override.yaml").services["a"]
    assert a.ports == ()
    assert dict(a.environment) == {"C": "3"}
    assert a.command is None


def test_anchors_merge_keys_and_extensions(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        x-common: &common
          image: base
          environment: &env
            A: "1"
          restart: always
        services:
          a:
            <<: *common
            environment:
              <<: *env
              B: "2"
          b:
            <<: *common
            restart: "no"
    """)
    p = load(tmp_path, "compose.yaml")
    assert p.services["a"].image == "base" and dict(p.services["a"].environment) == {
        "A": "1", "B": "2"}
    assert p.services["a"].restart.name == "always"
    assert p.services["b"].restart.name == "no"
    assert p.extensions["x-common"]["image"] == "base"


def test_extends_same_and_other_file(tmp_path: Path) -> None:
    write(tmp_path, "sub/base.yaml", """
        services:
          common:
            image: base
            env_file: common.env
            volumes: ["./data:/data"]
            ports: ["80"]
    """)
    write(tmp_path, "sub/common.env", "FROM_BASE=1\n")
    write(tmp_path, "compose.yaml", """
        services:
          web:
            extends: {file: sub/base.yaml, service: common}
            ports: ["81"]
            environment: {OWN: "2"}
          web2:
            extends: web
            image: other
    """)
    p = load(tmp_path, "compose.yaml")
    web = p.services["web"]
    assert web.image == "base"
    assert dict(web.environment) == {"FROM_BASE": "1", "OWN": "2"}
    assert web.volumes[0].source == str(tmp_path / "sub" / "data")
    assert [pc.target for pc in web.ports] == [80, 81]
    assert p.services["web2"].image == "other"
    assert dict(p.services["web2"].environment) == {"FROM_BASE": "1", "OWN": "2"}


def test_extends_cycle_rejected(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a: {extends: b, image: x}
          b: {extends: a}
    """)
    with pytest.raises(ComposeError, match="circular reference"):
        load(tmp_path, "compose.yaml")


def test_profiles(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          always: {image: x}
          debug: {image: x, profiles: [debug]}
          tools: {image: x, profiles: [tools, debug]}
    """)
    assert load(tmp_path, "compose.yaml").service_names == ("always",)
    p = load(tmp_path, "compose.yaml", profiles=("tools",))
    assert p.service_names == ("always", "tools") and list(p.disabled_services) == ["debug"]
    p = load(tmp_path, "compose.yaml", env={"COMPOSE_PROFILES": "debug"})
    assert p.service_names == ("always", "debug", "tools")
    assert load(tmp_path, "compose.yaml", profiles=("*",)).service_names == (
        "always", "debug", "tools")


def test_dependency_on_disabled_service_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          web: {image: x, depends_on: [db]}
          db: {image: x, profiles: [db]}
    """)
    with pytest.raises(ComposeError, match="disabled by its profiles"):
        load(tmp_path, "compose.yaml")
    assert "db" in load(tmp_path, "compose.yaml", profiles=("db",)).services


def test_include(tmp_path: Path) -> None:
    write(tmp_path, "lib/compose.yaml", """
        services:
          lib:
            image: "lib:${LIBTAG}"
            volumes: ["./x:/x"]
    """)
    write(tmp_path, "lib/.env", "LIBTAG=1.0\n")
    write(tmp_path, "compose.yaml", """
        include:
          - lib/compose.yaml
        services:
          app: {image: x, depends_on: [lib]}
    """)
    p = load(tmp_path, "compose.yaml")
    assert p.services["lib"].image == "lib:1.0"
    assert p.services["lib"].volumes[0].source == str(tmp_path / "lib" / "x")
    write(tmp_path, "clash.yaml", "include: [lib/compose.yaml]\nservices: {lib: {image: y}}\n")
    with pytest.raises(ComposeError, match="included project"):
        load(tmp_path, "clash.yaml")


def test_unsupported_attributes_warn_once(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a: {image: x, privileged: true, cap_add: [NET_ADMIN], mem_limit: 1g}
    """)
    with structlog.testing.capture_logs() as logs:
        p = load(tmp_path, "compose.yaml")
    assert len([w for w in p.warnings if "privileged" in w]) == 1
    assert len([e for e in logs if "cap_add" in e["event"]]) == 1
    assert p.services["a"].extra["privileged"] is True


def test_config_hash_ignores_scale_and_depends_on(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "services: {a: {image: x}, b: {image: x}}\n")
    write(tmp_path, "two.yaml", "services: {a: {image: x, scale: 3, depends_on: [b]}, "
                                "b: {image: x}}\n")
    write(tmp_path, "three.yaml", "services: {a: {image: y}}\n")
    h1 = load(tmp_path, "one.yaml").services["a"].config_hash()
    assert h1 == load(tmp_path, "two.yaml").services["a"].config_hash()
    assert h1 != load(tmp_path, "three.yaml").services["a"].config_hash()
    assert len(h1) == 64


# ---------------------------------------------------------------- errors name file:line:key

@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("services:\n  a:\n    image: x\n    ports: [\n", 5, None, "invalid YAML"),
        ("services:\n  a:\n    image: x\n   bad: indent\n", 4, None, "invalid YAML"),
        ("services:\n  a:\n    image: [1, 2]\n", 3, "services.a.image", "must be a string"),
        ("services:\n  a:\n    image: x\n    tty: {}\n", 4, "services.a.tty", "boolean"),
        ("services:\n  a:\n    image: x\n    depends_on: [nope]\n", 4,
         "services.a.depends_on.nope", "undefined service 'nope'"),
        ("services:\n  a:\n    image: x\n    ports:\n      - '80:80:80:80:x'\n", 5,
         "services.a.ports[0]", "port"),
        ("services:\n  a:\n    image: x\n    ports:\n      - '99999:80'\n", 5,
         "services.a.ports[0]", "invalid host port"),
        ("services:\n  a:\n    image: x\n    frobnicate: 1\n", 4, "services.a.frobnicate",
         "'frobnicate' not allowed"),
        ("services:\n  a:\n    image: x\n    volumes: [data:/data]\n", 4,
         "services.a.volumes[0]", "undefined volume 'data'"),
        ("services:\n  a:\n    image: x\n  a:\n    image: y\n", 4, None, "duplicate"),
        ("services:\n  a:\n    image: x\n    restart: sometimes\n", 4, "services.a.restart",
         "invalid restart policy"),
        ("services:\n  a:\n    image: x\n    healthcheck:\n      interval: 10 parsecs\n", 5,
         "services.a.healthcheck.interval", "invalid duration"),
    ],
)
def test_error_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, words: str
) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    with pytest.raises(ComposeError) as info:
        load(tmp_path, "compose.yaml")
    err = info.value
    assert err.file == str(f)
    assert err.line == line, str(err)
    if key is not None:
        assert err.key == key, str(err)
    assert words in str(err)
    assert str(err).startswith(f"{f}:{line}")
    assert "\n" not in str(err)


def test_cycle_error_names_cycle(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: [c]}
          c: {image: x, depends_on: [a]}
    """)
    with pytest.raises(ComposeError) as info:
        load(tmp_path, "compose.yaml")
    assert "a -> b -> c -> a" in str(info.value)
    assert info.value.line == 2 and info.value.key == "services.a.depends_on.b"


def test_duplicate_container_names(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          a: {image: x, container_name: same}
          b: {image: x, container_name: same}
    """)
    with pytest.raises(ComposeError, match="same container name"):
        load(tmp_path, "compose.yaml")


def test_error_in_override_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "services:\n  a:\n    image: x\n")
    write(tmp_path, "o.yaml", "services:\n  a:\n    depends_on: [ghost]\n")
    with pytest.raises(ComposeError) as info:
        load(tmp_path, "compose.yaml", "o.yaml")
    assert info.value.file == str(tmp_path / "o.yaml") and info.value.line == 3


@needs_corpus
def test_corpus_airflow_normalised() -> None:
    d = CORPUS / "airflow/airflow-core/docs/howto/docker-compose"
    p = load_project(LoadOptions(files=(str(d / "docker-compose.yaml"),),
                                 env={"AIRFLOW_UID": "50000"}, working_dir=str(d)))
    assert "flower" not in p.services and "flower" in p.disabled_services
    ws = p.services["airflow-apiserver"]
    assert ws.user == "50000:0"
    assert ws.depends_on["airflow-init"].condition == "service_completed_successfully"
    assert ws.depends_on["postgres"].condition == "service_healthy"
    assert ws.ports[0].published == "8080" and ws.ports[0].target == 8080
    assert ws.environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert ws.volumes[0].source == str(d / "dags")


@needs_corpus
def test_corpus_netbox_with_test_override() -> None:
    d = CORPUS / "netbox-docker"
    p = load_project(LoadOptions(
        files=(str(d / "docker-compose.test.yml"), str(d / "docker-compose.test.override.yml")),
        env={}, working_dir=str(d)))
    netbox = p.services["netbox"]
    assert netbox.ports and netbox.ports[0].target == 8080
    assert netbox.environment["DB_HOST"] == "postgres"
    assert "$(" in netbox.environment["SECRET_KEY"]


@needs_corpus
def test_corpus_compose_go_extends_reset() -> None:
    d = CORPUS / "compose-go/loader/testdata/extends"
    p = load_project(LoadOptions(files=(str(d / "reset.yaml"),), env={}, working_dir=str(d)))
    assert p.services["init"].command == ("sleep", "infinity")
    assert p.services["base"].command is None
    p = load_project(LoadOptions(files=(str(d / "base.yaml"),), env={}, working_dir=str(d)))
    assert p.services["another"].image == "base"
    assert p.services["with-build"].build is not None
    assert p.services["with-build"].build["context"] == str(d)


@needs_corpus
def test_corpus_dotenv_in_cwd_wins_over_project_dir() -> None:
    d = CORPUS / "docker-compose/pkg/e2e/fixtures/nested"
    p = load_project(LoadOptions(files=("../compose.yaml",), env={},
                                 working_dir=str(d / "sub")))
    assert p.services["echo"].command == ("echo", "root", "sub", "win=sub")
    assert p.working_dir == str(d)


@needs_corpus
def test_corpus_dotenv_sets_compose_file_and_profiles() -> None:
    d = CORPUS / "docker-compose/pkg/e2e/fixtures/dotenv"
    p = load_project(LoadOptions(env={}, working_dir=str(d)))
    assert p.working_dir == str(d / "development")
    assert p.services["backend"].image == "test:latest"
    assert "test" in p.services


def test_with_enabled_targets_disabled_services(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        services:
          app: {image: x}
          tool: {image: x, profiles: [tools], depends_on: [helper]}
          helper: {image: x, profiles: [other]}
    """)
    p = load(tmp_path, "compose.yaml")
    assert p.service_names == ("app",)
    q = p.with_enabled(["tool"])
    assert q.service_names == ("app", "tool", "helper") and not q.disabled_services
    assert list(q.services["tool"].networks) == ["default"]
    with pytest.raises(ComposeError, match="no such service"):
        p.with_enabled(["ghost"])


def test_label_file(tmp_path: Path) -> None:
    write(tmp_path, "labels.txt", "a=from-file\nb=from-file\n")
    write(tmp_path, "compose.yaml", """
        services:
          s: {image: x, label_file: ./labels.txt, labels: {b: own}}
    """)
    s = load(tmp_path, "compose.yaml").services["s"]
    assert dict(s.labels) == {"a": "from-file", "b": "own"}
    assert "label_file" not in s.to_dict()


def test_container_names_and_namespace_warnings(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """
        name: proj
        services:
          web: {image: x, scale: 2}
          db: {image: x, container_name: the-db, network_mode: "service:web", pid: "container:x"}
    """)
    p = load(tmp_path, "compose.yaml")
    assert p.container_names("web") == ["proj-web-1", "proj-web-2"]
    assert p.container_names("web", separator="_") == ["proj_web_1", "proj_web_2"]
    assert p.container_names("db") == ["the-db"]
    assert any("network_mode" in w for w in p.warnings)
    assert any("pid" in w for w in p.warnings)


def test_extends_chain_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a/one.yaml", """
        services:
          root: {image: root, environment: {LEVEL: root}, volumes: ["./r:/r"]}
          mid: {extends: root, environment: {MID: "1"}}
    """)
    write(tmp_path, "b/two.yaml", """
        services:
          top: {extends: {file: ../a/one.yaml, service: mid}, command: go}
    """)
    write(tmp_path, "compose.yaml", """
        services:
          app: {extends: {file: b/two.yaml, service: top}}
    """)
    app = load(tmp_path, "compose.yaml").services["app"]
    assert app.image == "root" and app.command == ("go",)
    assert dict(app.environment) == {"LEVEL": "root", "MID": "1"}
    assert app.volumes[0].source == str(tmp_path / "a" / "r")


def test_yaml_details(tmp_path: Path) -> None:
    from opencontainer.compose.yamlio import Override, Reset, parse_yaml, parse_yaml_rt

    text = "a: 0440\nb: 0o17\nc: 12\nd: !reset\ne: !override [1]\nf: 2001-12-14\ng: yes\n"
    for parse in (parse_yaml, parse_yaml_rt):
        data, locs = parse(text, "f.yaml")
        assert data == {"a": 0o440, "b": 0o17, "c": 12, "d": Reset(None),
                        "e": Override([1]), "f": "2001-12-14", "g": "yes"}
        assert locs.find(("e",)) == ("f.yaml", 5)
        assert locs.find(("e", 0, "deeper")) == ("f.yaml", 5)
