"""Creating a standalone container: image -> private rootfs + volumes + spec + run.sh.

Everything that can fail for a reason the user can fix (no proot, bad port, name in use, unknown
user, missing image) fails before anything is copied or started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from ..errors import ConfigError, ContainerError, OpenContainerError
from ..image.store import ImageRecord, ImageStore
from ..paths import Paths, proot_binary, remove_tree, validate_name
from .container import Container, ContainerConfig, ContainerStore, new_id, now_iso
from .overlay import Layers
from .proot import ProotCapabilities, check_ports
from .relay import check_port_free
from .rootfs import create_container_root, seed_volume
from .rootfs import resolve_in_rootfs as resolve_in_rootfs  # moved there; still importable here
from .runscript import write_run_sh
from .spec import (
    ContainerSpec,
    Mount,
    PortMapping,
    build_spec,
    image_volumes,
    parse_env_file,
    parse_env_list,
    parse_port,
)

log = structlog.get_logger()


@attrs.frozen
class VolumeSpec:
    kind: str  # "bind" | "volume"
    source: str  # host path (bind) or volume name ("" = anonymous)
    target: str
    read_only: bool = False


def parse_volume(text: str, cwd: Path | None = None) -> VolumeSpec:
    """``-v``: ``/host:/ctr[:ro]``, ``./rel:/ctr``, ``name:/ctr[:rw]``, ``/ctr`` (anonymous)."""
    parts = text.split(":")
    opts = ""
    if len(parts) >= 2 and set(parts[-1].split(",")) <= {"ro", "rw", "z", "Z", "delegated",
                                                          "cached", "consistent"}:
        opts = parts[-1]
        parts = parts[:-1]
    if len(parts) == 1:
        src, target = "", parts[0]
    elif len(parts) == 2:
        src, target = parts
    else:
        raise ConfigError(f"invalid volume {text!r}: expected SOURCE:TARGET[:ro].")
    if not target.startswith("/"):
        raise ConfigError(f"invalid volume {text!r}: the container path must be absolute.")
    ro = "ro" in opts.split(",")
    if not src:
        return VolumeSpec("volume", "", target, ro)
    if src.startswith(("/", ".", "~")):
        host = Path(src).expanduser()
        if not host.is_absolute():
            host = (cwd or Path.cwd()) / host
        return VolumeSpec("bind", str(host.absolute()), target, ro)
    validate_name("volume", src)
    return VolumeSpec("volume", src, target, ro)


def volumes_root(paths: Paths) -> Path:
    return paths.data / "volumes"


def _ensure_target(rootfs: Path | Layers, target: str, is_dir: bool) -> None:
    """A mount point / working directory the container needs, created if missing (in the top
    layer, parents with the image's modes)."""
    layers = Layers.of(rootfs)
    parts, host = layers.resolve(target)
    if host is not None:
        return
    if not parts:
        return
    if is_dir:
        layers.ensure_dir(parts)
    else:
        layers.ensure_dir(parts[:-1])
        layers.top.joinpath(*parts).touch()


def parse_hosts(items: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """``--add-host name:ip`` (also ``name=ip``); ``host-gateway`` is the loopback here."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        sep = "=" if "=" in item else ":"
        name, _, ip = item.partition(sep)
        if not name or not ip:
            raise ConfigError(f"invalid --add-host {item!r}: expected NAME:IP.")
        if ip == "host-gateway":
            ip = "127.0.0.1"
        out.append((ip.strip("[]"), (name,)))
    return out


@attrs.frozen
class CreateOptions:
    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    ports: tuple[str, ...] = ()
    hostname: str | None = None
    add_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    pull: str = "missing"
    stop_signal: str | None = None
    stop_timeout: float | None = None
    labels: tuple[str, ...] = ()
    cwd: Path | None = None


def parse_ports(items: Sequence[str]) -> list[PortMapping]:
    out: list[PortMapping] = []
    for item in items:
        out += parse_port(item)
    return out


def precheck(
    paths: Paths, opts: CreateOptions, env: Mapping[str, str] | None = None
) -> tuple[Path, ProotCapabilities, list[PortMapping]]:
    """What can be checked before pulling or copying: proot, its capabilities, the ports."""
    env = os.environ if env is None else env
    binary = proot_binary(env)
    caps = ProotCapabilities.detect(binary, cache_dir=paths.cache)
    if not caps.works:
        from ..errors import ProotError

        raise ProotError(f"proot at {binary} cannot run containers here: {caps.problem}.")
    ports = parse_ports(opts.ports)
    probe = ContainerSpec(name="probe", rootfs=Path("/"), argv=("x",), ports=tuple(ports))
    check_ports(probe, caps)
    if opts.name:
        validate_name("container", opts.name)
    return binary, caps, ports


def _local_image(paths: Paths, ref: str, policy: str) -> ImageRecord | None:
    """The unpacked local image when ``policy`` would not pull it (``ensure_image``'s rule for
    missing/never), without importing the registry client; None = ask ``ensure_image``."""
    if policy.replace("-", "_") not in ("missing", "if_not_present", "never"):
        return None
    try:
        rec = ImageStore(paths.store).resolve(ref)
    except OpenContainerError:
        return None
    return rec if rec.rootfs.is_dir() else None


async def create_container(
    paths: Paths, opts: CreateOptions, env: Mapping[str, str] | None = None,
    progress: Any = None,
) -> Container:
    env = os.environ if env is None else env
    binary, caps, ports = precheck(paths, opts, env)
    user_env: dict[str, str] = {}
    for f in opts.env_files:
        user_env.update(parse_env_file(Path(f), env))
    user_env.update(parse_env_list(opts.env, env))
    vol_specs = [parse_volume(v, opts.cwd) for v in opts.volumes]
    # `--label KEY` is KEY="" (docker), not a variable looked up like `-e KEY`
    labels = {k: v for k, _, v in (item.partition("=") for item in opts.labels) if k}

    rec = _local_image(paths, opts.image, opts.pull)
    if rec is None:
        from ..image.pull import ensure_image  # the registry client: only when pulling

        kwargs: dict[str, Any] = {}
        if progress is not None:
            kwargs["progress"] = progress
        rec = await ensure_image(opts.image, paths=paths, policy=opts.pull, **kwargs)

    store = ContainerStore(paths.containers)
    name, d = store.reserve(opts.name)
    try:
        layout = await create_container_root(rec.rootfs, d, paths.cache, env,
                                             store=ImageStore(paths.store))
        rootfs = d / "rootfs"
        layers = layout.layers() if layout else Layers.of(rootfs)
        mounts: list[Mount] = []
        anonymous: list[str] = []
        covered = {v.target.rstrip("/") or "/" for v in vol_specs}
        all_vols = list(vol_specs) + [
            VolumeSpec("volume", "", t) for t in image_volumes(rec.config)
            if (t.rstrip("/") or "/") not in covered
        ]
        for v in all_vols:
            if v.kind == "bind":
                src = Path(v.source)
                if not src.exists():
                    src.mkdir(parents=True, exist_ok=True)  # docker -v creates it
                _ensure_target(layers, v.target, src.is_dir())
                mounts.append(Mount(str(src), v.target, v.read_only, "bind"))
            else:
                vname = v.source or new_id()
                vdir = volumes_root(paths) / vname
                vdir.mkdir(parents=True, exist_ok=True)
                # the image's content, as Docker copies it (before the mount point exists
                # in an overlay's upper layer, where it would hide the image's directory)
                seed_volume(vdir, rec.rootfs, v.target)
                _ensure_target(layers, v.target, True)
                if not v.source:
                    anonymous.append(str(vdir))
                mounts.append(Mount(str(vdir), v.target, v.read_only, "volume",
                                    v.source or vname))
        spec = build_spec(
            name=name, rootfs=rootfs, image_config=rec.config, image=opts.image,
            entrypoint=opts.entrypoint, command=list(opts.command) or None, env=user_env,
            workdir=opts.workdir, user=opts.user, mounts=mounts, ports=ports,
            hostname=opts.hostname, hosts=parse_hosts(opts.add_hosts), dns=opts.dns,
            tty=opts.tty, stdin_open=opts.interactive, stop_signal=opts.stop_signal,
            stop_timeout=opts.stop_timeout if opts.stop_timeout is not None else 10.0,
            labels={**dict(rec.config.labels), **labels}, overlay=layout,
        )
        _ensure_target(layers, spec.cwd, True)
        config = ContainerConfig(
            id=new_id(), name=name, image=opts.image, image_id=rec.id, created=now_iso(),
            spec=spec, proot=str(binary), auto_remove=opts.auto_remove,
            anonymous_volumes=tuple(anonymous), command=spec.argv,
            attach_stdin=opts.interactive,
        )
        c = store.save_config(d, config)
        write_run_sh(spec, caps, binary, c.run_sh)
    except BaseException:
        remove_tree(d)
        raise
    log.debug("container created", name=name, id=config.id)
    return c


def check_command(spec: ContainerSpec) -> None:
    """Docker's exit 127 / 126 before starting: the command must exist and be executable."""
    if not spec.argv:
        raise ContainerError("no command specified.")
    cmd = spec.argv[0]
    rootfs = spec.layers()
    if "/" in cmd:
        base = spec.cwd if not cmd.startswith("/") else "/"
        candidates = [resolve_in_rootfs(rootfs, os.path.join(base, cmd))]
    else:
        path = spec.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [resolve_in_rootfs(rootfs, os.path.join(d or "/", cmd))
                      for d in path.split(":")]
    found = [c for c in candidates if c.is_file()]
    if not found:
        where = "in $PATH" if "/" not in cmd else "in the container"
        raise ContainerError(
            f'exec: "{cmd}": executable file not found {where}.', exit_code=127
        )
    if not any(os.access(c, os.X_OK) for c in found):
        raise ContainerError(f'exec: "{cmd}": permission denied.', exit_code=126)


def prepare_start(c: Container, paths: Paths, env: Mapping[str, str] | None = None) -> \
        ProotCapabilities:
    """Before each start: proot still there, run.sh current, published ports free."""
    env = os.environ if env is None else env
    binary = Path(c.config.proot)
    if not binary.exists():
        binary = proot_binary(env)
    caps = ProotCapabilities.detect(binary, cache_dir=paths.cache)
    spec = c.config.spec
    check_ports(spec, caps)
    for p in spec.ports:
        if p.protocol == "tcp":
            check_port_free(p.host_ip, p.host_port)
    if not c.rootfs.is_dir():
        raise ContainerError(f"the root filesystem of container {c.name} is missing.")
    if spec.overlay is not None and not Path(spec.overlay.lower).is_dir():
        raise ContainerError(
            f"the image {spec.image or c.config.image} of container {c.name} is no longer in "
            "the image store: remove the container and create it again.")
    check_command(spec)
    write_run_sh(spec, caps, binary, c.run_sh)
    return caps
