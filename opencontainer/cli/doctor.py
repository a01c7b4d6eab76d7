"""``opencontainer doctor``: what this machine offers, and what to do about each gap."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

NEWER_PROOT = (
    "install proot >= 5.2 (Debian 13 / Ubuntu 24.04 ship 5.4.0, or build "
    "https://github.com/proot-me/proot) and point OPENCONTAINER_PROOT at it"
)

# a child process tries what an overlay root needs first: a user namespace of its own
_USERNS_PROBE = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.unshare(0x10000000) != 0:\n"  # CLONE_NEWUSER
    "    import os; sys.exit(os.strerror(ctypes.get_errno()))\n"
)


def configure_doctor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _free_space(path: Path) -> int | None:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _userns() -> tuple[bool, str]:
    try:
        max_ns = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        max_ns = -1
    if max_ns == 0:
        return False, "disabled (user.max_user_namespaces = 0)"
    try:
        if Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
            return False, "disabled for normal users (kernel.unprivileged_userns_clone = 0)"
    except OSError:
        pass
    try:
        res = subprocess.run([sys.executable, "-S", "-c", _USERNS_PROBE], capture_output=True,
                             timeout=20, check=False, env={}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unknown (the probe did not run: {exc})"
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        return False, "not available (unshare(CLONE_NEWUSER): " + (
            why[-1] if why else f"exit {res.returncode}") + ")"
    return True, "available (not needed: proot works without them)"


def _hardlinks(store: Path) -> dict[str, Any]:
    """Whether the store's filesystem makes hard links (Android refuses them)."""
    from ..paths import hardlinks_work

    try:
        store.mkdir(parents=True, exist_ok=True)
        refused = not hardlinks_work(store)
    except OSError as exc:
        return {"path": str(store), "allowed": None, "detail": f"unknown ({exc.strerror})"}
    return {"path": str(store), "allowed": not refused,
            "detail": "refused" if refused else "allowed"}


def ports_text(caps: dict[str, Any]) -> str:
    """How published ports work with these capabilities, in a few words."""
    if caps.get("port_map"):
        return "mapped by proot (-p IN:OUT)"
    if caps.get("low_port_shift"):
        return "ports < 1024 shifted by +2000 (Termux -p); others as they are, relayed"
    return "no mapping: relayed, container ports < 1024 need root"


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text())
    except (OSError, ValueError):
        return None


def collect(ctx: Any) -> dict[str, Any]:
    from ..errors import ProotError
    from ..paths import proot_binary
    from ..runtime.proot import ProotCapabilities

    report: dict[str, Any] = {"proot": None, "problems": [], "hints": []}
    try:
        binary = proot_binary(ctx.env)
    except ProotError as exc:
        report["problems"].append(str(exc))
        binary = None
    if binary is not None:
        try:
            caps = ProotCapabilities.detect(binary, cache_dir=ctx.paths.cache)
        except ProotError as exc:
            report["problems"].append(str(exc))
        else:
            report["proot"] = caps.to_dict()
            if not caps.works:
                report["problems"].append(
                    f"proot at {binary} cannot run programs here: {caps.problem}; ptrace may be "
                    "forbidden (seccomp/AppArmor policy, or kernel.yama.ptrace_scope = 3)."
                )
            if caps.low_port_shift and not caps.port_map:
                report["hints"].append(
                    "Termux's proot: a container port below 1024 is bound 2000 higher on the "
                    "host (80 is 2080), and published ports are relayed to it (nothing to do)."
                )
            elif not caps.port_map:
                report["hints"].append(
                    "no port mapping (-p): published ports use a relay, and container ports "
                    f"below 1024 cannot be published as a normal user; {NEWER_PROOT}."
                )
            if not caps.kill_on_exit:
                report["hints"].append(
                    "no --kill-on-exit: opencontainer ends a container's leftover processes "
                    "itself when its main process exits (nothing to do)."
                )
            if not caps.statx:
                report["hints"].append(
                    "statx is not translated: opencontainer makes it fall back with a seccomp "
                    "filter (nothing to do; proot >= 5.2 translates it)."
                )
    scope = _ptrace_scope()
    report["ptrace_scope"] = scope
    if scope == 3:
        report["problems"].append(
            "kernel.yama.ptrace_scope is 3: no process may trace another, so proot cannot work; "
            "ask the administrator to set it to 0, 1 or 2."
        )
    ok, text = _userns()
    report["user_namespaces"] = {"available": ok, "detail": text}
    paths = ctx.paths
    report["store"] = {"path": str(paths.store), "free_bytes": _free_space(paths.store)}
    report["hardlinks"] = _hardlinks(paths.store)
    if report["hardlinks"]["allowed"] is False:
        caps_now = report["proot"] or {}
        if caps_now.get("link2symlink"):
            report["hints"].append(
                f"the filesystem of {paths.store} refuses hard links (as Android does): "
                "containers run with proot --link2symlink, which makes symlinks instead."
            )
        else:
            report["hints"].append(
                f"the filesystem of {paths.store} refuses hard links (as Android does) and this "
                "proot has no --link2symlink: programs that make hard links fail in containers; "
                "use Termux's proot or proot >= 5.2."
            )
    report["containers"] = str(paths.containers)
    report["processes"] = PROCESS_COST
    report["rootfs"] = _rootfs_mode(ctx)
    report["runtime"] = _runtime(ctx, ok)
    report["network"] = _network(ctx, ok)
    if report["network"]["model"] == "host":
        report["hints"].append(
            "containers share the host's network (" + report["network"]["reason"] + "): "
            "their ports can collide with the host's and other stacks'; with user namespaces, "
            "slirp4netns (or pasta) and a usable /dev/net/tun each stack gets its own.")
    free = report["store"]["free_bytes"]
    if not report["rootfs"]["overlay"]:
        report["hints"].append(
            "container roots are copies of their image (" + str(report["rootfs"]["detail"])
            + "): creating a container copies the whole image; with unprivileged user "
            "namespaces and Linux >= 5.11 they are copy-on-write overlays instead."
        )
    if free is not None and free < 2 * 1024**3:
        report["hints"].append(
            f"only {free / 1024**3:.1f} GB free for images and containers at {paths.store}; "
            "free some space or set OPENCONTAINER_HOME."
        )
    return report


def _runtime(ctx: Any, userns: bool) -> dict[str, Any]:
    """Which backend new containers get here (OPENCONTAINER_RUNTIME), and the id mapping
    the native one would use."""
    from ..errors import ContainerError
    from ..runtime import backend, idmap

    try:
        mode = backend.mode_from_env(ctx.env)
        imode = idmap.mode_from_env(ctx.env)
    except ContainerError as exc:
        return {"mode": "?", "backend": "proot", "native": False, "detail": str(exc)}
    possible, why = backend.native_possible("", ctx.env, userns=userns)
    chosen = "native" if mode != "proot" and possible else "proot"
    sub = idmap.subordinate_range() if imode != "single" else None
    ids = ("subordinate ids " + f"{sub.uid_start}+{sub.count}" if sub is not None else
           "single id (fake root through seccomp)")
    if mode == "proot":
        detail = "OPENCONTAINER_RUNTIME=proot" + (
            "" if not possible else "; native is possible here (OPENCONTAINER_RUNTIME=auto)")
    elif possible:
        detail = (f"native for images of this machine's architecture ({ids}), else proot"
                  + ("" if mode == "native" else
                     "; proot also for a container port below 1024 in the host's network, "
                     "--init, --ulimit, --read-only or --shm-size (inspect: RuntimeReason)"))
    else:
        detail = f"proot: native is not possible here ({why})"
    return {"mode": mode, "backend": chosen, "native": possible, "idmap": ids,
            "detail": detail}
def _network(ctx: Any, userns: bool) -> dict[str, Any]:
    """Which network model projects get here (engine/network.py choose_network), and why."""
    from ..engine.network import choose_network
    from ..errors import OpenContainerError

    try:
        choice = choose_network(ctx.env, userns=userns)
    except OpenContainerError as exc:
        return {"model": "host", "reason": str(exc), "forwarder": ""}
    return {"model": choice.model, "reason": choice.reason, "forwarder": choice.forwarder}


def _rootfs_mode(ctx: Any) -> dict[str, Any]:
    """How new containers get their root filesystem here: overlay or copy, and why."""
    from ..errors import ContainerError
    from ..runtime import overlay

    paths = ctx.paths
    try:
        mode = overlay.mode_from_env(ctx.env)
    except ContainerError as exc:
        return {"mode": "copy", "overlay": False, "detail": str(exc)}
    if mode == "copy":
        return {"mode": "copy", "overlay": False, "detail": "OPENCONTAINER_ROOTFS=copy"}
    lower = paths.store / "rootfs"
    upper = paths.containers
    for p in (lower, upper):
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return {"mode": "copy", "overlay": False, "detail": str(exc)}
    ok, why = overlay.overlay_supported(lower, upper, paths.cache)
    if ok:
        return {"mode": "overlay", "overlay": True,
                "detail": "copy-on-write overlayfs in a user namespace"}
    return {"mode": "copy", "overlay": False, "detail": f"no overlay: {why}"}


# What a running stack costs in processes (Android 12+ kills "phantom" processes beyond 32
# across all apps): relays, health-check scheduling, logs and restarts live in the supervisor;
# nsexec and the seccomp wrapper exec proot rather than staying around. Measured by
# tests/test_stack_busybox.py::test_process_cost_of_a_five_service_stack (11 for 5 services).
PROCESS_COST = {
    "per_stack": 1,
    "per_container": 1,
    "per_health_probe": 2,
    "text": "1 supervisor per stack + 1 proot per container + the container's own processes "
            "(+2 while a health probe runs; +3 per stack with a private network: the network "
            "holder, its namespace process, slirp4netns); a 5-service stack of single-process "
            "services on the shared network is 11",
}


def _gb(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1024**3:.1f} GB free"


def run_doctor(args: argparse.Namespace, ctx: Any) -> int:
    report = collect(ctx)
    if args.format == "json":
        ctx.out(json.dumps(report, indent=2))
        return 1 if report["problems"] else 0
    yn = {True: "yes", False: "no"}
    caps = report["proot"]
    if caps:
        ctx.out(f"proot:             {caps['binary']} (version {caps['version'] or 'unknown'})")
        ctx.out(f"  runs programs:   {yn[caps['works']]}")
        ctx.out(f"  --kill-on-exit:  {yn[caps['kill_on_exit']]}")
        ctx.out(f"  ports:           {ports_text(caps)}")
        ctx.out(f"  statx:           {'translated' if caps['statx'] else 'not translated'}")
        ctx.out(f"  --link2symlink:  {yn[caps['link2symlink']]}")
        ctx.out(f"  --sysvipc:       {yn[caps['sysvipc']]}")
        ctx.out(f"  -L (lstat size): {yn[caps['fix_lstat']]}")
    else:
        ctx.out("proot:             not found")
    ns = report["user_namespaces"]
    ctx.out(f"user namespaces:   {ns['detail']}")
    if report["ptrace_scope"] is not None:
        ctx.out(f"ptrace_scope:      {report['ptrace_scope']}")
    ctx.out(f"image store:       {report['store']['path']} ({_gb(report['store']['free_bytes'])})")
    ctx.out(f"hard links:        {report['hardlinks']['detail']} (in the image store)")
    ctx.out(f"containers:        {report['containers']}")
    ctx.out(f"container roots:   {report['rootfs']['mode']} ({report['rootfs']['detail']})")
    ctx.out(f"runtime:           {report['runtime']['backend']} "
            f"({report['runtime']['detail']})")
    net = report["network"]
    ctx.out(f"network:           {net['model']} ({net['reason']})")
    ctx.out(f"processes:         {report['processes']['text']}")
    if os.geteuid() == 0:
        ctx.out("note:              running as root; opencontainer is meant for normal users")
    for p in report["problems"]:
        ctx.out(f"PROBLEM: {p}")
    for h in report["hints"]:
        ctx.out(f"hint: {h}")
    if not report["problems"]:
        ctx.out("Everything needed to run containers is here.")
    return 1 if report["problems"] else 0
