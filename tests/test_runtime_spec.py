"""ContainerSpec and Docker's rules: command, env, user, ports."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from opencontainer.errors import ConfigError, ContainerError
from opencontainer.runtime.spec import (
    DEFAULT_PATH,
    ContainerSpec,
    Mount,
    PortMapping,
    build_spec,
    merge_env,
    parse_env_file,
    parse_env_list,
    parse_port,
    resolve_command,
    resolve_user,
)
from opencontainer.runtime.testing import make_busybox_rootfs


@attrs.frozen
class Cfg:
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


class TestResolveCommand:
    def test_image_entrypoint_and_cmd(self) -> None:
        cfg = Cfg(entrypoint=("/entry.sh",), cmd=("redis-server",))
        assert resolve_command(cfg) == ("/entry.sh", "redis-server")

    def test_trailing_args_replace_cmd(self) -> None:
        cfg = Cfg(entrypoint=("/entry.sh",), cmd=("redis-server",))
        assert resolve_command(cfg, command=["sh"]) == ("/entry.sh", "sh")

    def test_entrypoint_resets_cmd(self) -> None:
        cfg = Cfg(entrypoint=("/entry.sh",), cmd=("redis-server",))
        assert resolve_command(cfg, entrypoint="/bin/sh") == ("/bin/sh",)
        assert resolve_command(cfg, entrypoint="/bin/sh", command=["-c", "x"]) == (
            "/bin/sh", "-c", "x")

    def test_empty_entrypoint_clears(self) -> None:
        cfg = Cfg(entrypoint=("/entry.sh",), cmd=("redis-server",))
        assert resolve_command(cfg, entrypoint="", command=["ls"]) == ("ls",)

    def test_list_entrypoint(self) -> None:
        assert resolve_command(Cfg(cmd=("a",)), entrypoint=["x", "y"]) == ("x", "y")

    def test_nothing_to_run(self) -> None:
        with pytest.raises(ContainerError, match="no command"):
            resolve_command(Cfg())
        with pytest.raises(ContainerError):
            resolve_command(None)

    def test_cmd_only(self) -> None:
        assert resolve_command(Cfg(cmd=("sh",))) == ("sh",)
        assert resolve_command(Cfg(cmd=("sh",)), command=["echo", "hi"]) == ("echo", "hi")


class TestUser:
    def test_default_root(self, rootfs: Path) -> None:
        u = resolve_user(rootfs, None)
        assert (u.uid, u.gid, u.home, u.name) == (0, 0, "/root", "root")

    def test_name(self, rootfs: Path) -> None:
        u = resolve_user(rootfs, "app")
        assert u.spec == "1000:1000" and u.home == "/home/app"

    def test_uid(self, rootfs: Path) -> None:
        assert resolve_user(rootfs, "1000").spec == "1000:1000"
        # a uid without passwd entry is allowed (docker too); gid = uid
        u = resolve_user(rootfs, "4242")
        assert u.spec == "4242:4242" and u.home == "/"

    def test_uid_gid_and_group_names(self, rootfs: Path) -> None:
        assert resolve_user(rootfs, "1000:50").spec == "1000:50"
        assert resolve_user(rootfs, "app:staff").spec == "1000:50"
        assert resolve_user(rootfs, "65534:staff").spec == "65534:50"

    def test_unknown(self, rootfs: Path) -> None:
        with pytest.raises(ContainerError, match="unable to find user nosuch"):
            resolve_user(rootfs, "nosuch")
        with pytest.raises(ContainerError, match="unable to find group nogrp"):
            resolve_user(rootfs, "app:nogrp")

    def test_no_passwd(self, tmp_path: Path) -> None:
        assert resolve_user(tmp_path, None).spec == "0:0"
        assert resolve_user(tmp_path, "12:34").spec == "12:34"


class TestEnv:
    def test_precedence_and_defaults(self) -> None:
        env = merge_env(["A=image", "B=image", "PATH=/img"], {"B": "user"}, hostname="h",
                        home="/root")
        assert env == {"PATH": "/img", "HOSTNAME": "h", "A": "image", "B": "user",
                       "HOME": "/root"}

    def test_default_path_and_tty(self) -> None:
        env = merge_env([], None, tty=True)
        assert env["PATH"] == DEFAULT_PATH and env["TERM"] == "xterm" and env["HOME"] == "/"

    def test_home_from_user_env_wins(self) -> None:
        assert merge_env([], {"HOME": "/x"}, home="/root")["HOME"] == "/x"

    def test_env_list(self) -> None:
        assert parse_env_list(["A=1", "B", "C"], {"B": "host"}) == {"A": "1", "B": "host"}
        assert parse_env_list(["A=x=y", "E="]) == {"A": "x=y", "E": ""}
        with pytest.raises(ConfigError):
            parse_env_list(["=x"])

    def test_env_file(self, tmp_path: Path) -> None:
        f = tmp_path / "e.env"
        f.write_text("# comment\nA=1\n\nB=two words\nHOSTVAR\n")
        assert parse_env_file(f, {"HOSTVAR": "h"}) == {"A": "1", "B": "two words",
                                                       "HOSTVAR": "h"}
        with pytest.raises(ConfigError, match="cannot read env file"):
            parse_env_file(tmp_path / "missing")


class TestPorts:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("8080:80", [PortMapping("", 8080, 80, "tcp")]),
            ("127.0.0.1:8080:80/tcp", [PortMapping("127.0.0.1", 8080, 80, "tcp")]),
            ("53:53/udp", [PortMapping("", 53, 53, "udp")]),
            ("9000", [PortMapping("", 9000, 9000, "tcp")]),
            ("8000-8001:9000-9001", [PortMapping("", 8000, 9000), PortMapping("", 8001, 9001)]),
        ],
    )
    def test_parse(self, text: str, expected: list[PortMapping]) -> None:
        assert parse_port(text) == expected

    @pytest.mark.parametrize("text", ["x:80", "0:80", "80:70000", "1-3:1-2", "80/sctp"])
    def test_invalid(self, text: str) -> None:
        with pytest.raises(ConfigError):
            parse_port(text)


class TestBuildSpec:
    def test_full(self, rootfs: Path) -> None:
        cfg = Cfg(entrypoint=None, cmd=("sh",), env=("A=1",), working_dir="/srv",
                  user="app", exposed_ports=("80/tcp",), stop_signal="SIGQUIT")
        spec = build_spec(name="web", rootfs=rootfs, image_config=cfg, image="bb",
                          command=["id"], env={"B": "2"})
        assert spec.argv == ("id",)
        assert spec.user == "1000:1000" and spec.cwd == "/srv"
        assert spec.env["HOME"] == "/home/app" and spec.env["HOSTNAME"] == "web"
        assert spec.env["A"] == "1" and spec.env["B"] == "2"
        assert spec.stop_signal == "SIGQUIT" and spec.exposed_ports == ("80/tcp",)

    def test_overrides(self, rootfs: Path) -> None:
        cfg = Cfg(cmd=("sh",), working_dir="/srv", user="app")
        spec = build_spec(name="x", rootfs=rootfs, image_config=cfg, workdir="/tmp", user="0",
                          hostname="hh")
        assert spec.cwd == "/tmp" and spec.user == "0:0" and spec.hostname == "hh"
        assert spec.env["HOME"] == "/root"

    def test_relative_workdir(self, rootfs: Path) -> None:
        with pytest.raises(ConfigError):
            build_spec(name="x", rootfs=rootfs, image_config=Cfg(cmd=("sh",)), workdir="rel")

    def test_roundtrip(self, rootfs: Path) -> None:
        spec = ContainerSpec(
            name="a", rootfs=rootfs, argv=["sh"], env={"A": "1"},
            mounts=[Mount("/h", "/c", True), Mount("/v", "/d", kind="volume", name="vol")],
            ports=[PortMapping("", 1, 2)], hosts=[("10.0.0.1", ["db", "pg"])],
        )
        import json

        again = ContainerSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec
