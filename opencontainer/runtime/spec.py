"""What to run: the container spec, and Docker's rules for turning an image + options into one.

A :class:`ContainerSpec` is plain data (frozen attrs), fully resolved: ``argv`` is the final
command, ``env`` the complete environment the container sees (nothing is inherited from the
host), ``user`` is numeric ``"uid:gid"``. It round-trips through JSON (``to_dict``/``from_dict``)
so it can live in the container's ``config.json``.

Docker's rules implemented here:

- command: ``--entrypoint`` replaces the image Entrypoint *and* resets the image Cmd; trailing
  arguments replace Cmd (:func:`resolve_command`);
- environment: image Env < ``--env-file`` < ``-e``; ``PATH`` defaults to Docker's, ``HOSTNAME`` is
  the container hostname, ``HOME`` comes from the user's passwd entry (else ``/``), ``TERM=xterm``
  with a TTY (:func:`merge_env`);
- user: ``name``, ``uid``, ``uid:gid``, ``name:group``, ``uid:group`` looked up in the container's
  own ``/etc/passwd`` and ``/etc/group`` (:func:`resolve_user`);
- image Volumes become anonymous volumes, ExposedPorts are kept for ``inspect``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from ..errors import ConfigError, ContainerError
from .overlay import Layers, OverlayLayout

INIT_PATH = "/sbin/docker-init"  # where --init's reaper is bound, as docker's
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageConfigLike(Protocol):
    """The parts of ``opencontainer.image.store.ImageConfig`` the runtime reads."""

    @property
    def entrypoint(self) -> Sequence[str] | None: ...
    @property
    def cmd(self) -> Sequence[str] | None: ...
    @property
    def env(self) -> Sequence[str]: ...
    @property
    def working_dir(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...


@attrs.frozen
class Mount:
    """A bind of a host path (file or directory) onto ``target`` inside the container."""

    source: str
    target: str
    read_only: bool = False
    kind: str = "bind"  # "bind" | "volume" (named or anonymous, source is the volume folder)
    name: str | None = None  # volume name for kind="volume"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class PortMapping:
    """``-p [host_ip:]host_port:container_port[/protocol]``."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        return f"{ip}:{self.host_port}->{self.container_port}/{self.protocol}"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _tuple(x: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(x)


def _dict(x: Mapping[str, str]) -> dict[str, str]:
    return dict(x)


def _hosts(x: Iterable[tuple[str, Iterable[str]]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((str(ip), tuple(names)) for ip, names in x)


@attrs.frozen
class ContainerSpec:
    """Everything needed to start one container, resolved."""

    name: str
    rootfs: Path = attrs.field(converter=Path)
    argv: tuple[str, ...] = attrs.field(converter=_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_dict, hash=False)
    cwd: str = "/"
    user: str = "0:0"
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=_tuple)
    ports: tuple[PortMapping, ...] = attrs.field(default=(), converter=_tuple)
    hostname: str = ""
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = attrs.field(default=(), converter=_hosts)
    dns: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    tty: bool = False
    stdin_open: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    init: bool = False
    image: str = ""
    exposed_ports: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_dict, hash=False)
    # an overlayfs root (upper/work beside ``rootfs``, the image tree as lower), or None: a copy
    overlay: OverlayLayout | None = None
    # the container's filesystem refuses hard links (Android): proot --link2symlink when it can
    link2symlink: bool = False
    # "proot" or "native" (see runtime/backend.py); native: the id mapping (runtime/idmap.py)
    backend: str = "proot"
    backend_reason: str = ""  # why this backend (runtime/backend.py decide), for inspect
    idmap: str = ""
    qemu: str | None = None  # a foreign-architecture image: proot -q with this qemu-user
    read_only: bool = False  # the root read-only (an overlay root is mounted read-only)
    ulimits: tuple[str, ...] = attrs.field(default=(), converter=_tuple)  # NAME=SOFT:HARD
    shm_size: int | None = None  # a private /dev/shm (a tmpfs of this size where we can)

    @property
    def full_argv(self) -> tuple[str, ...]:
        """The command as proot runs it: behind the init (``--init``) when there is one."""
        return (INIT_PATH, "-s", "--", *self.argv) if self.init else self.argv
    # the pid file of the project's network holder (runtime/netns.py): the container joins
    # that network namespace; "" = the host's network
    netns: str = ""

    @property
    def uid(self) -> int:
        return int(self.user.split(":", 1)[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":", 1)[1])

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=True)
        d["rootfs"] = str(self.rootfs)
        d["argv"] = list(self.argv)
        d["hosts"] = [[ip, list(names)] for ip, names in self.hosts]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContainerSpec:
        known = {a.name for a in attrs.fields(cls)}
        data = {k: v for k, v in d.items() if k in known}
        data["mounts"] = tuple(Mount(**m) for m in d.get("mounts", ()))
        data["ports"] = tuple(PortMapping(**p) for p in d.get("ports", ()))
        data["hosts"] = tuple((ip, tuple(n)) for ip, n in d.get("hosts", ()))
        data["overlay"] = OverlayLayout.from_dict(d.get("overlay"))
        return cls(**data)

    def layers(self) -> Layers:
        """The container's tree as the host reads it (upper over lower, or the copy)."""
        return self.overlay.layers() if self.overlay else Layers.of(self.rootfs)


# -- command ---------------------------------------------------------------------------------


def resolve_command(
    image_config: ImageConfigLike | None,
    entrypoint: str | Sequence[str] | None = None,
    command: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Docker's Entrypoint/Cmd rules.

    ``entrypoint``: ``None`` keeps the image's; a string is one executable (``""`` clears it,
    as ``--entrypoint ""``); a sequence replaces it. Setting it resets the image Cmd.
    ``command``: ``None`` or empty keeps the (possibly reset) Cmd; otherwise replaces it.
    """
    image_ep = tuple(image_config.entrypoint or ()) if image_config else ()
    image_cmd = tuple(image_config.cmd or ()) if image_config else ()
    if entrypoint is None:
        ep, cmd = image_ep, image_cmd
    else:
        ep = ((entrypoint,) if entrypoint else ()) if isinstance(entrypoint, str) else tuple(
            entrypoint
        )
        cmd = ()
    if command:
        cmd = tuple(command)
    argv = ep + cmd
    if not argv:
        raise ContainerError(
            "no command specified: the image has no Entrypoint or Cmd, so give one after the "
            "image name."
        )
    return argv


# -- users -----------------------------------------------------------------------------------


@attrs.frozen
class ResolvedUser:
    uid: int
    gid: int
    name: str | None
    home: str

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


def _read_table(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _etc(root: Layers, name: str) -> Path | None:
    # the container's own file; symlinks are followed inside the container's tree only
    try:
        return root.resolve(f"/etc/{name}")[1]
    except ContainerError:
        return None


def resolve_user(rootfs: Path | Layers, user: str | None) -> ResolvedUser:
    """``user`` as Docker accepts it, resolved against the container's passwd and group
    (``rootfs``: the tree, or its :class:`~.overlay.Layers`)."""
    root = Layers.of(rootfs)
    passwd_file, group_file = _etc(root, "passwd"), _etc(root, "group")
    passwd = _read_table(passwd_file) if passwd_file is not None else []
    groups = _read_table(group_file) if group_file is not None else []
    if not user:
        user = "0"
    uname, _, gpart = user.partition(":")
    entry: list[str] | None = None
    if uname.isdigit():
        uid = int(uname)
        entry = next((r for r in passwd if len(r) >= 4 and r[2] == uname), None)
    else:
        entry = next((r for r in passwd if r and r[0] == uname and len(r) >= 4), None)
        if entry is None:
            raise ContainerError(
                f"unable to find user {uname}: no matching entries in the container's /etc/passwd."
            )
        uid = int(entry[2]) if entry[2].isdigit() else 0
    if gpart:
        if gpart.isdigit():
            gid = int(gpart)
        else:
            g = next((r for r in groups if r and r[0] == gpart and len(r) >= 3), None)
            if g is None or not g[2].isdigit():
                raise ContainerError(
                    f"unable to find group {gpart}: no matching entries in the container's "
                    "/etc/group."
                )
            gid = int(g[2])
    elif entry is not None and entry[3].isdigit():
        gid = int(entry[3])
    else:
        gid = 0 if uid == 0 else uid
    home = entry[5] if entry is not None and len(entry) >= 6 and entry[5] else "/"
    name = entry[0] if entry is not None else None
    return ResolvedUser(uid=uid, gid=gid, name=name, home=home)


# -- environment -----------------------------------------------------------------------------


def parse_env_list(
    items: Iterable[str], host_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``-e K=V`` / ``-e K`` (take K from the host environment; dropped when unset there)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise ConfigError(f"invalid environment variable {item!r}: the name is empty.")
        if sep:
            out[key] = value
        elif host_env is not None and key in host_env:
            out[key] = host_env[key]
    return out


def parse_env_file(path: Path, host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Docker's ``--env-file``: ``K=V`` lines, ``#`` comments, no quote processing."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}.") from exc
    lines = [ln.strip() for ln in text.splitlines()]
    return parse_env_list((ln for ln in lines if ln and not ln.startswith("#")), host_env)


def merge_env(
    image_env: Iterable[str],
    user_env: Mapping[str, str] | None = None,
    *,
    hostname: str = "",
    home: str = "/",
    tty: bool = False,
) -> dict[str, str]:
    """The container's full environment, in Docker's precedence."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    if hostname:
        env["HOSTNAME"] = hostname
    if tty:
        env["TERM"] = "xterm"
    env.update(parse_env_list(image_env))
    env.update(user_env or {})
    env.setdefault("HOME", home or "/")
    return env


# -- ports -----------------------------------------------------------------------------------


def parse_port(text: str) -> list[PortMapping]:
    """``[ip:]host:container[/proto]``, ``container`` alone (same host port) or ranges ``a-b``."""
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"invalid port {text!r}: the protocol must be tcp or udp.")
    parts = spec.rsplit(":", 2)
    if len(parts) == 1:
        ip, host, cont = "", parts[0], parts[0]
    elif len(parts) == 2:
        ip, host, cont = "", parts[0], parts[1]
    else:
        ip, host, cont = parts
    ip = ip.strip("[]")
    if not host:
        host = cont

    def _range(s: str) -> list[int]:
        lo, _, hi = s.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"invalid port {text!r}: {s!r} is not a port number.") from None
        if not (0 < a <= b < 65536):
            raise ConfigError(f"invalid port {text!r}: ports are 1-65535.")
        return list(range(a, b + 1))

    hosts, conts = _range(host), _range(cont)
    if len(hosts) != len(conts):
        raise ConfigError(f"invalid port {text!r}: the host and container ranges differ in size.")
    return [PortMapping(ip, h, c, proto) for h, c in zip(hosts, conts, strict=True)]


# -- the whole thing -------------------------------------------------------------------------


def build_spec(
    *,
    name: str,
    rootfs: Path,
    image_config: ImageConfigLike | None,
    image: str = "",
    entrypoint: str | Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    mounts: Sequence[Mount] = (),
    ports: Sequence[PortMapping] = (),
    hostname: str | None = None,
    hosts: Sequence[tuple[str, Sequence[str]]] = (),
    dns: Sequence[str] = (),
    tty: bool = False,
    stdin_open: bool = False,
    stop_signal: str | None = None,
    stop_timeout: float = 10.0,
    init: bool = False,
    labels: Mapping[str, str] | None = None,
    overlay: OverlayLayout | None = None,
    link2symlink: bool | None = None,
) -> ContainerSpec:
    """Image config + run options -> a resolved :class:`ContainerSpec` (Docker's rules).

    ``link2symlink``: None = whether the container directory (``rootfs``'s parent) refuses
    hard links, tried there (see :func:`~opencontainer.paths.hardlinks_work`)."""
    argv = resolve_command(image_config, entrypoint, command)
    u = resolve_user(overlay.layers() if overlay else rootfs,
                     user if user else (image_config.user if image_config else None))
    hn = hostname or name[:63]
    cwd = workdir or (image_config.working_dir if image_config else None) or "/"
    if not cwd.startswith("/"):
        raise ConfigError(f"the working directory {cwd!r} must be an absolute path.")
    image_env = tuple(image_config.env) if image_config else ()
    full_env = merge_env(image_env, env, hostname=hn, home=u.home, tty=tty)
    sig = stop_signal or (getattr(image_config, "stop_signal", None) if image_config else None)
    exposed = tuple(getattr(image_config, "exposed_ports", ()) or ()) if image_config else ()
    return ContainerSpec(
        name=name,
        rootfs=rootfs,
        argv=argv,
        env=full_env,
        cwd=cwd,
        user=u.spec,
        mounts=tuple(mounts),
        ports=tuple(ports),
        hostname=hn,
        hosts=tuple((ip, tuple(n)) for ip, n in hosts),
        dns=tuple(dns),
        tty=tty,
        stdin_open=stdin_open,
        stop_signal=sig or "SIGTERM",
        stop_timeout=stop_timeout,
        init=init,
        image=image,
        exposed_ports=exposed,
        labels=dict(labels or {}),
        overlay=overlay,
        link2symlink=_refuses_hardlinks(Path(rootfs).parent) if link2symlink is None
        else link2symlink,
    )


def _refuses_hardlinks(directory: Path) -> bool:
    from ..paths import hardlinks_work

    try:
        return directory.is_dir() and not hardlinks_work(directory)
    except OSError:  # no file can be made there at all: nothing to tell about links
        return False


def image_volumes(image_config: object) -> tuple[str, ...]:
    """The image's ``Volumes`` (paths that get an anonymous volume unless mounted over)."""
    return tuple(getattr(image_config, "volumes", ()) or ())
