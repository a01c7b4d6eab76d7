"""``version`` and ``info``: docker's two views of the client and the (daemonless) engine.

Both are cheap: no engine, no probe that is not cached already; the proot version comes from
the capabilities cache that ``doctor`` and every container start fill (the first command on a
machine fills it), the image count from the store's ``refs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from .._version import __version__
from .gotemplate import Struct

# Go's names for machines (docker's OS/Arch)
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv8l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
           "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}


def _goarch() -> str:
    machine = platform.machine()
    return _GOARCH.get(machine.lower(), machine)


def _python() -> str:
    return platform.python_version()


def _proot(ctx: Any) -> tuple[str | None, str | None, str | None]:
    """(binary, version, problem): from the capabilities cache, without running proot, once
    ``doctor``, a container start or an earlier ``version``/``info`` has filled it."""
    from ..errors import ProotError
    from ..paths import proot_binary

    try:
        binary = proot_binary(ctx.env)
    except ProotError as exc:
        return None, None, str(exc)
    try:
        st = binary.stat()
        cached = json.loads((ctx.paths.cache / "proot-caps.json").read_text())
    except (OSError, ValueError):
        cached = {}
    prefix = f"{binary.absolute()}|{st.st_size}|{st.st_mtime_ns}|"
    for key, caps in (cached.items() if isinstance(cached, dict) else ()):
        if key.startswith(prefix) and isinstance(caps, dict):
            return str(binary), caps.get("version"), None
    # not probed yet: probe once (~0.5 s), as doctor and the first container start do; the
    # answer is cached for every later command
    from ..runtime.proot import ProotCapabilities

    try:
        caps = ProotCapabilities.detect(binary, cache_dir=ctx.paths.cache)
    except ProotError as exc:
        return str(binary), None, str(exc)
    return str(binary), caps.version, None if caps.works else caps.problem


# -- version ------------------------------------------------------------------------------------
def configure_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None,
                        help="format the output with a Go template, or 'json'")


def version_data(ctx: Any) -> Struct:
    binary, proot_version, problem = _proot(ctx)
    arch, kernel = _goarch(), platform.release()
    details = Struct(Path=binary or "") if not problem else Struct(Path="", Error=problem)
    return Struct(
        Client=Struct(Platform=Struct(Name="OpenContainer"), Version=__version__,
                      PythonVersion=_python(), Os="linux", Arch=arch, Context="default"),
        Server=Struct(
            Platform=Struct(Name="OpenContainer Engine (daemonless)"),
            Components=[
                Struct(Name="Engine", Version=__version__,
                       Details=Struct(PythonVersion=_python(), Os="linux", Arch=arch,
                                      KernelVersion=kernel, Experimental="false")),
                Struct(Name="proot", Version=proot_version or "unknown", Details=details),
            ],
            Version=__version__, PythonVersion=_python(), Os="linux", Arch=arch,
            KernelVersion=kernel, ProotVersion=proot_version or "unknown"),
    )


def run_version(args: argparse.Namespace, ctx: Any) -> int:
    data = version_data(ctx)
    if args.format:
        from .format import render_one

        ctx.stdout.write(render_one(args.format, data, type_name="VersionInfo"))
        ctx.stdout.flush()
        return 0
    c, s = data["Client"], data["Server"]
    engine, proot = s["Components"]
    lines = [
        f"Client: {c['Platform']['Name']}",
        f" Version:           {c['Version']}",
        f" Python version:    {c['PythonVersion']}",
        f" OS/Arch:           {c['Os']}/{c['Arch']}",
        f" Context:           {c['Context']}",
        "",
        f"Server: {s['Platform']['Name']}",
        " Engine:",
        f"  Version:          {engine['Version']}",
        f"  Python version:   {engine['Details']['PythonVersion']}",
        f"  OS/Arch:          {s['Os']}/{s['Arch']}",
        f"  Kernel:           {s['KernelVersion']}",
        f"  Experimental:     {engine['Details']['Experimental']}",
        " proot:",
        f"  Version:          {proot['Version']}",
    ]
    if proot["Details"].get("Error"):
        lines.append(f"  Error:            {proot['Details']['Error']}")
    else:
        lines.append(f"  Path:             {proot['Details']['Path']}")
    ctx.out("\n".join(lines))
    return 0


# -- info ---------------------------------------------------------------------------------------
def configure_info(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None,
                        help="format the output with a Go template, or 'json'")


def _os_name() -> str:
    if "ANDROID_ROOT" in os.environ or os.path.exists("/system/build.prop"):
        return "Android"
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return m.group(1) if m else platform.system()


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def bytes_size(n: float) -> str:
    """docker's ``units.BytesSize``: binary units, 4 significant digits (``23.47GiB``)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return f"{n:.4g}{units[i]}"


def _image_count(ctx: Any) -> int:
    try:
        data = json.loads((ctx.paths.store / "refs.json").read_text())
    except (OSError, ValueError):
        return 0
    images = data.get("images") if isinstance(data, dict) else None
    return len(images) if isinstance(images, dict) else 0


def _container_counts(ctx: Any) -> tuple[int, int, int]:
    """(running, paused, stopped) over every container of this user, as ``ps -a`` lists."""
    from .ps import _entries

    running = paused = stopped = 0
    for e in _entries(ctx):
        status = e.summary.status
        if status == "paused":
            paused += 1
        elif status in ("running", "restarting", "starting", "stopping"):
            running += 1
        else:
            stopped += 1
    return running, paused, stopped


def info_data(ctx: Any) -> Struct:
    from .doctor import _rootfs_mode

    running, paused, stopped = _container_counts(ctx)
    binary, proot_version, problem = _proot(ctx)
    rootfs = _rootfs_mode(ctx)
    paths = ctx.paths
    warnings = [problem] if problem else []
    if not rootfs["overlay"]:
        warnings.append(f"container roots are copies of their image: {rootfs['detail']}")
    return Struct(
        Containers=running + paused + stopped, ContainersRunning=running,
        ContainersPaused=paused, ContainersStopped=stopped,
        Images=_image_count(ctx),
        Driver="overlay" if rootfs["overlay"] else "copy",
        DriverStatus=[["Root filesystems", str(rootfs["detail"])]],
        Runtimes={"proot": Struct(path=binary or "")}, DefaultRuntime="proot",
        ProotVersion=proot_version or "unknown",
        KernelVersion=platform.release(), OperatingSystem=_os_name(), OSType="linux",
        Architecture=platform.machine(), NCPU=os.cpu_count() or 1, MemTotal=_mem_total(),
        Name=platform.node(), ServerVersion=__version__, PythonVersion=_python(),
        DockerRootDir=str(paths.data), ContainersDir=str(paths.containers),
        CacheDir=str(paths.cache), Debug=bool(ctx.verbose), Warnings=warnings,
        ClientInfo=Struct(Version=__version__, Context="default", Debug=bool(ctx.verbose)),
    )


def run_info(args: argparse.Namespace, ctx: Any) -> int:
    data = info_data(ctx)
    if args.format:
        from .format import render_one

        ctx.stdout.write(render_one(args.format, data, type_name="info"))
        ctx.stdout.flush()
        return 0
    d = data
    lines = [
        "Client:",
        f" Version:    {d['ClientInfo']['Version']}",
        f" Context:    {d['ClientInfo']['Context']}",
        f" Debug Mode: {str(d['Debug']).lower()}",
        "",
        "Server:",
        f" Containers: {d['Containers']}",
        f"  Running: {d['ContainersRunning']}",
        f"  Paused: {d['ContainersPaused']}",
        f"  Stopped: {d['ContainersStopped']}",
        f" Images: {d['Images']}",
        f" Server Version: {d['ServerVersion']}",
        f" Storage Driver: {d['Driver']}",
        *(f"  {k}: {v}" for k, v in d["DriverStatus"]),
        " Runtimes: proot",
        " Default Runtime: proot",
        f" proot Version: {d['ProotVersion']}",
        f" proot Path: {d['Runtimes']['proot']['path'] or 'not found'}",
        f" Kernel Version: {d['KernelVersion']}",
        f" Operating System: {d['OperatingSystem']}",
        f" OSType: {d['OSType']}",
        f" Architecture: {d['Architecture']}",
        f" CPUs: {d['NCPU']}",
        f" Total Memory: {bytes_size(d['MemTotal'])}",
        f" Name: {d['Name']}",
        f" Docker Root Dir: {d['DockerRootDir']}",
        f" Debug Mode: {str(d['Debug']).lower()}",
    ]
    ctx.out("\n".join(lines))
    for w in d["Warnings"]:
        ctx.err(f"WARNING: {w}")
    return 0
