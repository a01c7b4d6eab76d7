"""proot capability detection, the proot command line, run.sh."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opencontainer.errors import ProotError
from opencontainer.runtime.proot import (
    ProotCapabilities,
    build_command,
    build_proot_argv,
    check_ports,
    parse_help,
    relayed_ports,
)
from opencontainer.runtime.runscript import hosts_text, render_run_sh, write_run_sh
from opencontainer.runtime.spec import ContainerSpec, Mount, PortMapping, build_spec
from opencontainer.runtime.testing import make_busybox_rootfs

HELP_DIR = Path(__file__).parent / "data" / "proot-help"

OLD = ProotCapabilities(binary="/usr/bin/proot", version="5.1.0", statx=False, change_id=True)
NEW = ProotCapabilities(binary="/x/proot", version="5.4.0", kill_on_exit=True, port_map=True,
                        link2symlink=True, change_id=True, statx=True)
TERMUX = ProotCapabilities(binary="/t/proot", version="5.1.0", kill_on_exit=True,
                           low_port_shift=True, link2symlink=True, sysvipc=True, fix_lstat=True,
                           change_id=True, statx=True)

HELP_OLD = """proot 5.1.0: chroot, mount --bind, and binfmt_misc without privilege/setup.
  -r *path*, --rootfs=*path*
  -0, --root-id
  -i *string*, --change-id=*string*
"""
HELP_NEW = """proot -: chroot, mount --bind, and binfmt_misc without privilege/setup.
  --kill-on-exit
  -i *string*, --change-id=*string*
  -p *string*, --port=*string*
  -l, --link2symlink
"""


def spec(**kw: object) -> ContainerSpec:
    base: dict[str, object] = {"name": "c", "rootfs": "/r", "argv": ["sh", "-c", "echo hi"],
                               "env": {"PATH": "/bin", "A": "b c"}}
    base.update(kw)
    return ContainerSpec(**base)  # type: ignore[arg-type]


class TestParseHelp:
    def test_old(self) -> None:
        info = parse_help(HELP_OLD)
        assert info["version"] == "5.1.0"
        assert not info["kill_on_exit"] and not info["port_map"] and not info["link2symlink"]
        assert info["change_id"]

    def test_new(self) -> None:
        info = parse_help(HELP_NEW)
        assert info["version"] is None
        assert info["kill_on_exit"] and info["port_map"] and info["link2symlink"]


class TestRealHelpTexts:
    """``--help`` of Debian's 5.1.0, upstream 5.4.0 and Termux's fork, as they print it."""

    def info(self, name: str) -> dict[str, object]:
        return parse_help((HELP_DIR / name).read_text())

    def test_debian_510(self) -> None:
        info = self.info("debian-5.1.0.txt")
        assert info["version"] == "5.1.0" and info["change_id"]
        for cap in ("kill_on_exit", "port_map", "low_port_shift", "link2symlink", "sysvipc",
                    "fix_lstat"):
            assert not info[cap], cap

    def test_upstream_540(self) -> None:
        info = self.info("upstream-5.4.0.txt")
        assert info["kill_on_exit"] and info["port_map"] and info["link2symlink"]
        assert not info["low_port_shift"] and not info["sysvipc"] and not info["fix_lstat"]

    def test_termux(self) -> None:
        """Termux's -p takes no argument: not upstream's IN:OUT port map."""
        info = self.info("termux-6c09638.txt")
        assert info["version"] == "5.1.0"
        assert not info["port_map"] and info["low_port_shift"]
        assert info["kill_on_exit"] and info["link2symlink"] and info["sysvipc"]
        assert info["fix_lstat"] and info["change_id"]


class TestArgv:
    def test_old_proot(self) -> None:
        argv = build_proot_argv(spec(ports=[PortMapping("", 8080, 80)]), OLD, "/usr/bin/proot")
        assert argv[:2] == ["/usr/bin/proot", "--rootfs=/r"]
        assert argv[-3:] == ["sh", "-c", "echo hi"]
        for b in ("/proc", "/dev", "/sys"):
            assert argv[argv.index(b) - 1] == "-b"
        assert "-0" in argv and "--kill-on-exit" not in argv and "-p" not in argv
        assert "-k" not in argv and "-R" not in argv
        assert argv[argv.index("-w") + 1] == "/"

    def test_new_proot(self) -> None:
        s = spec(ports=[PortMapping("", 18080, 80), PortMapping("", 9000, 9000)], user="1000:50",
                 cwd="/srv", mounts=[Mount("/h/d", "/data")])
        argv = build_proot_argv(s, NEW, "/x/proot")
        assert "--kill-on-exit" in argv
        assert argv[argv.index("-p") + 1] == "80:18080" and argv.count("-p") == 1
        assert argv[argv.index("-i") + 1] == "1000:50" and "-0" not in argv
        assert "/h/d:/data" in argv and argv[argv.index("-w") + 1] == "/srv"

    def test_termux_proot(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from opencontainer.runtime import proot as proot_mod

        s = spec(ports=[PortMapping("", 18080, 80)])
        monkeypatch.setattr(proot_mod, "host_has_sysvipc", lambda: False)  # as on Android
        argv = build_proot_argv(s, TERMUX, "/t/proot", is_root=False)
        for opt in ("--kill-on-exit", "-L", "--sysvipc"):
            assert opt in argv
        # a kernel with System V IPC needs no emulation
        monkeypatch.setattr(proot_mod, "host_has_sysvipc", lambda: True)
        assert "--sysvipc" not in build_proot_argv(s, TERMUX, "/t/proot", is_root=False)
        i = argv.index("-p")  # argument-less: the next element is no IN:OUT
        assert ":" not in argv[i + 1]
        assert "--link2symlink" not in argv  # hard links work here
        assert "-p" not in build_proot_argv(s, TERMUX, "/t/proot", is_root=True)

    def test_link2symlink_only_where_hard_links_are_refused(self) -> None:
        s = spec(link2symlink=True)
        assert "--link2symlink" in build_proot_argv(s, TERMUX, "/t/proot")
        assert "--link2symlink" in build_proot_argv(s, NEW, "/x/proot")
        assert "--link2symlink" not in build_proot_argv(s, OLD, "/usr/bin/proot")
        assert "--link2symlink" not in build_proot_argv(spec(), NEW, "/x/proot")

    def test_host_has_sysvipc(self, tmp_path: Path) -> None:
        from opencontainer.runtime.proot import host_has_sysvipc

        assert host_has_sysvipc()  # the test machines' kernels have it
        assert not host_has_sysvipc(tmp_path)  # Android's /proc has no sysvipc/

    def test_upstream_gets_no_termux_options(self) -> None:
        argv = build_proot_argv(spec(), NEW, "/x/proot", is_root=False)
        assert "--sysvipc" not in argv and "-L" not in argv and "-p" not in argv

    def test_env_is_explicit(self) -> None:
        cmd = build_command(spec(), NEW, "/x/proot")
        i = cmd.index("-i")
        assert cmd[i - 1].endswith("env") and cmd[i + 1 : i + 3] == ["PATH=/bin", "A=b c"]
        assert not any("seccomp" in c for c in cmd)

    def test_seccomp_wrapper_only_for_old(self) -> None:
        cmd = build_command(spec(), OLD, "/usr/bin/proot", python="/py")
        assert cmd[:3] == ["/py", "-S", "-P"] and cmd[3].endswith("/runtime/seccomp.py")
        assert cmd[4] == "--enosys" and "statx" in cmd[5] and cmd[6] == "--"

    def test_etc_binds(self, tmp_path: Path) -> None:
        for n in ("hosts", "hostname", "resolv.conf"):
            (tmp_path / n).write_text("x")
        argv = build_proot_argv(spec(), OLD, "/usr/bin/proot", tmp_path)
        assert f"{tmp_path}/hosts:/etc/hosts" in argv
        assert f"{tmp_path}/resolv.conf:/etc/resolv.conf" in argv


class TestPorts:
    def test_old_proot_same_port_ok(self) -> None:
        check_ports(spec(ports=[PortMapping("", 8080, 8080)]), OLD, is_root=False)

    def test_old_proot_relay(self) -> None:
        s = spec(ports=[PortMapping("", 18080, 8080)])
        check_ports(s, OLD, is_root=False)
        assert relayed_ports(s, OLD) == [("", 18080, 8080)]
        assert relayed_ports(s, NEW) == []

    def test_old_proot_low_container_port(self) -> None:
        with pytest.raises(ProotError, match=r"proot >= 5\.2"):
            check_ports(spec(ports=[PortMapping("", 18080, 80)]), OLD, is_root=False)

    def test_low_host_port(self) -> None:
        with pytest.raises(ProotError, match="below 1024"):
            check_ports(spec(ports=[PortMapping("", 80, 80)]), NEW, is_root=False)

    def test_new_proot_low_container_port(self) -> None:
        check_ports(spec(ports=[PortMapping("", 18080, 80)]), NEW, is_root=False)

    def test_termux_low_container_port_is_relayed_to_the_shifted_port(self) -> None:
        s = spec(ports=[PortMapping("", 18080, 80), PortMapping("", 9000, 9000),
                        PortMapping("127.0.0.1", 9001, 8080)])
        check_ports(s, TERMUX, is_root=False)
        assert relayed_ports(s, TERMUX, is_root=False) == [("", 18080, 2080),
                                                           ("127.0.0.1", 9001, 8080)]
        # as root, nothing is shifted (and -p is not passed)
        assert relayed_ports(s, TERMUX, is_root=True) == [("", 18080, 80),
                                                          ("127.0.0.1", 9001, 8080)]

    def test_termux_published_on_the_shifted_port_needs_no_relay(self) -> None:
        s = spec(ports=[PortMapping("", 2080, 80)])
        assert relayed_ports(s, TERMUX, is_root=False) == []

    def test_termux_udp(self) -> None:
        check_ports(spec(ports=[PortMapping("", 2053, 53, "udp")]), TERMUX, is_root=False)
        with pytest.raises(ProotError, match="port 2053"):
            check_ports(spec(ports=[PortMapping("", 5353, 53, "udp")]), TERMUX, is_root=False)

    def test_termux_low_host_port_still_refused(self) -> None:
        with pytest.raises(ProotError, match="below 1024"):
            check_ports(spec(ports=[PortMapping("", 80, 80)]), TERMUX, is_root=False)


class TestLink2symlinkSpec:
    def test_default_and_round_trip(self) -> None:
        assert not spec().link2symlink
        s = spec(link2symlink=True)
        assert ContainerSpec.from_dict(json.loads(json.dumps(s.to_dict()))).link2symlink
        old = spec().to_dict()
        del old["link2symlink"]  # a config.json written before the field
        assert not ContainerSpec.from_dict(old).link2symlink

    def test_build_spec_probes_the_container_dir(self, tmp_path: Path) -> None:
        rootfs = make_busybox_rootfs(tmp_path / "c" / "rootfs")
        s = build_spec(name="c", rootfs=rootfs, image_config=None, command=["true"])
        assert not s.link2symlink  # this filesystem makes hard links
        s = build_spec(name="c", rootfs=rootfs, image_config=None, command=["true"],
                       link2symlink=True)
        assert s.link2symlink


class TestRunScript:
    def test_readable(self, tmp_path: Path) -> None:
        s = spec(hostname="web", hosts=[("127.0.0.1", ["db"])], image="busybox")
        text = render_run_sh(s, OLD, "/usr/bin/proot", tmp_path, python="/py")
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "# fake root" in text and "'A=b c'" in text
        last = text.rstrip().splitlines()[-2]
        assert last.startswith("exec /py -S -P /") and "/runtime/seccomp.py --enosys" in last
        assert "(image busybox)" in text

    def test_hosts(self) -> None:
        text = hosts_text(spec(hostname="web", hosts=[("127.0.0.1", ["db", "pg"])]))
        assert "127.0.0.1\tlocalhost web" in text and "127.0.0.1\tdb pg" in text

    def test_write(self, tmp_path: Path) -> None:
        path = write_run_sh(spec(hostname="web", dns=["9.9.9.9"]), NEW, "/x/proot",
                            tmp_path / "run.sh")
        assert path.stat().st_mode & 0o111
        assert (tmp_path / "hostname").read_text() == "web\n"
        assert (tmp_path / "resolv.conf").read_text() == "nameserver 9.9.9.9\n"
        subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.integration
class TestReal:
    def test_detect_and_cache(self, proot: Path, tmp_path: Path) -> None:
        caps = ProotCapabilities.detect(proot, cache_dir=tmp_path)
        assert caps.works, caps.problem
        help_text = subprocess.run([str(proot), "--help"], capture_output=True,
                                   text=True).stdout
        assert caps.kill_on_exit == ("--kill-on-exit" in help_text)
        if "--port" in help_text:  # 5.4.0
            assert caps.port_map and caps.statx
        else:  # Debian's 5.1.0
            assert not caps.port_map and not caps.statx
        assert not caps.low_port_shift and not caps.sysvipc
        cached = json.loads((tmp_path / "proot-caps.json").read_text())
        assert len(cached) == 1
        assert ProotCapabilities.detect(proot, cache_dir=tmp_path) == caps

    def test_detect_termux(self, proot_termux: Path, tmp_path: Path) -> None:
        caps = ProotCapabilities.detect(proot_termux, cache_dir=tmp_path)
        assert caps.works, caps.problem
        assert caps.low_port_shift and not caps.port_map
        assert caps.sysvipc and caps.link2symlink and caps.kill_on_exit and caps.fix_lstat
        assert caps.statx  # Termux's fork translates statx

    def test_termux_options_run(self, proot_termux: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
        """The options we pass to Termux's proot (--sysvipc as on a kernel without System V
        IPC) are accepted, and a low port really moves."""
        from opencontainer.runtime import proot as proot_mod

        monkeypatch.setattr(proot_mod, "host_has_sysvipc", lambda: False)
        caps = ProotCapabilities.detect(proot_termux)
        script = ("import socket; s = socket.socket(); s.bind(('127.0.0.1', 81)); "
                  "print('bound', s.getsockname()[1])")
        s = ContainerSpec(name="t", rootfs=Path("/"),
                          argv=[sys.executable, "-I", "-S", "-c", script],
                          env={"PATH": "/usr/bin:/bin"}, link2symlink=True)
        argv = build_proot_argv(s, caps, proot_termux, is_root=False)
        assert "--sysvipc" in argv and "--link2symlink" in argv and "-p" in argv
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 0, res.stderr
        # proot rewrote the bind: the socket is on 2081 (the guest's getsockname is not undone)
        assert "bound 2081" in res.stdout, res.stdout

    def test_run_sh_by_hand(self, proot: Path, tmp_path: Path) -> None:
        rootfs = make_busybox_rootfs(tmp_path / "rootfs")
        caps = ProotCapabilities.detect(proot)
        script = "echo $A; cat /etc/hostname; env | sort"
        s = ContainerSpec(name="byhand", rootfs=rootfs, argv=["sh", "-c", script],
                          env={"PATH": "/bin", "A": "b c", "HOSTNAME": "byhand", "HOME": "/root"},
                          hostname="byhand")
        path = write_run_sh(s, caps, proot, tmp_path / "c" / "run.sh")
        res = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "SECRET_HOST_VAR": "leak"})
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] == "b c" and lines[1] == "byhand"
        env_keys = {ln.split("=", 1)[0] for ln in lines[2:]}
        assert "SECRET_HOST_VAR" not in env_keys
        assert env_keys <= {"A", "PATH", "HOSTNAME", "HOME", "PWD", "SHLVL"}
