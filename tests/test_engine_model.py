"""The adapter from the compose loader's Project to the engine model, and mounts on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.engine.adapter import to_model
from opencontainer.engine.model import ProjectModel, parse_duration
from opencontainer.engine.state import ProjectState
from opencontainer.engine.volumes import resolve_mounts
from opencontainer.errors import ConfigError

COMPOSE = """
name: demo
services:
  db:
    image: postgres:15
    restart: on-failure:3
    ports: ["15432:5432", "127.0.0.1:8080:80/tcp"]
    volumes:
      - dbdata:/var/lib/postgresql/data
      - ./init:/docker-entrypoint-initdb.d:ro
      - /var/lib/anon
    tmpfs: [/run/tmp]
    environment: {POSTGRES_PASSWORD: pw}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      timeout: 1s
      start_period: 1m
      retries: 7
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    secrets: [dbpass]
    configs: [app_conf]
    networks:
      default:
        aliases: [database]
    extra_hosts: ["other.example:10.1.2.3"]
  app:
    image: python:3.11-slim
    command: python3 -m http.server
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started, required: false}
    container_name: the-app
volumes:
  dbdata: {}
secrets:
  dbpass: {file: ./secret.txt}
configs:
  app_conf: {content: "key=value"}
"""


def load(tmp_path: Path) -> ProjectModel:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "secret.txt").write_text("s3cret")
    project = load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),),
                                       env={"HOME": str(tmp_path)}))
    return to_model(project, {})


def test_adapter_reads_the_compose_model(tmp_path: Path) -> None:
    m = load(tmp_path)
    assert m.name == "demo" and Path(m.state_dir) == tmp_path / ".containers"
    db = m.services["db"]
    assert str(db.restart) == "on-failure:3"
    assert [(p.published, p.target, p.host_ip) for p in db.ports] == [
        (15432, 5432, ""), (8080, 80, "127.0.0.1")]
    assert db.healthcheck is not None
    assert (db.healthcheck.test, db.healthcheck.interval, db.healthcheck.timeout,
            db.healthcheck.start_period, db.healthcheck.retries) == (
        ("CMD-SHELL", "pg_isready -U postgres"), 2.0, 1.0, 60.0, 7)
    assert db.stop_signal == "SIGINT" and db.stop_grace_period == 90.0
    kinds = {v.target: v.type for v in db.volumes}
    assert kinds == {"/var/lib/postgresql/data": "volume",
                     "/docker-entrypoint-initdb.d": "bind", "/var/lib/anon": "anonymous",
                     "/run/tmp": "tmpfs", "/run/secrets/dbpass": "secret",
                     "/app_conf": "config"}
    assert "database" in db.aliases
    assert db.extra_hosts == (("other.example", "10.1.2.3"),)
    app = m.services["app"]
    assert app.command == ("python3", "-m", "http.server")
    assert app.depends_on["db"].condition == "service_healthy"
    assert app.depends_on["cache"].required is False
    assert app.container_names("demo") == ["the-app"]
    assert "dbdata" in m.volumes
    # round trip through project.json
    assert ProjectModel.from_json(m.to_json()) == m
    assert ProjectModel.from_json(m.to_json()).services["db"].config_hash() == db.config_hash()


def test_mounts_on_disk(tmp_path: Path) -> None:
    m = load(tmp_path)
    state = ProjectState(tmp_path / ".containers")
    image = tmp_path / "image"
    (image / "var/lib/postgresql/data").mkdir(parents=True)
    (image / "var/lib/postgresql/data/seed").write_text("from image")
    mounts = {h.target: h for h in resolve_mounts(m, m.services["db"].volumes, state,
                                                   "demo-db-1", image)}
    vol = mounts["/var/lib/postgresql/data"]
    assert vol.source == state.volumes / "dbdata"
    assert (vol.source / "seed").read_text() == "from image"  # copied up on first use
    (vol.source / "seed").write_text("changed")
    resolve_mounts(m, m.services["db"].volumes, state, "demo-db-1", image)
    assert (vol.source / "seed").read_text() == "changed"  # ... only on first use
    bind = mounts["/docker-entrypoint-initdb.d"]
    assert bind.source == tmp_path / "init" and bind.source.is_dir() and bind.read_only
    assert mounts["/run/secrets/dbpass"].source == tmp_path / "secret.txt"
    assert mounts["/app_conf"].source.read_text() == "key=value"
    assert mounts["/run/tmp"].source.is_dir()


def test_undeclared_named_volume_is_an_error(tmp_path: Path) -> None:
    m = load(tmp_path)
    from opencontainer.engine.model import MountSpec

    with pytest.raises(ConfigError, match="not declared"):
        resolve_mounts(m, (MountSpec(type="volume", source="nope", target="/x"),),
                       ProjectState(tmp_path / ".c"), "c", None)


def test_parse_duration() -> None:
    assert parse_duration("1m30s", 0) == 90
    assert parse_duration("500ms", 0) == 0.5
    assert parse_duration(3, 0) == 3
    assert parse_duration("junk", 7) == 7
    assert parse_duration(None, 7) == 7
