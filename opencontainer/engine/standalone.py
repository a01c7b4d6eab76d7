"""A standalone container (``run``, ``create``) is a project of one container.

``opencontainer run [options] IMAGE [COMMAND]`` becomes a :class:`ProjectModel` of kind
``container`` with one service named after the container, in its own state directory
``paths.containers/<name>/`` (``project.json``, ``lock``, ``supervisor.sock`` and the container's
folder ``<name>/`` with ``state.json``, ``log.jsonl``, ``spec.json``, ``run.sh`` and its root).
From there on it is created, started, supervised, logged, health-checked, restarted and removed
by the engine exactly like a compose service. Named volumes are the user's shared ones
(``paths.data/volumes``), as with ``docker run -v NAME:/path``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from ..errors import ConfigError, ContainerError
from ..paths import Paths, validate_name
from .model import HealthSpec, MountSpec, PortSpec, ProjectModel, ServiceConfig, VolumeSpec
from .restart import RestartPolicy

KIND = "container"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ADJ = _words(
    "admiring agitated amazing angry awesome bold brave busy charming clever cool dazzling "
    "determined eager ecstatic elastic elated elegant epic fervent festive flamboyant focused "
    "friendly gallant gifted goofy gracious happy hardcore heuristic hopeful hungry infallible "
    "inspiring jolly jovial keen kind laughing loving lucid magical modest musing mystifying "
    "naughty nervous nice nifty nostalgic objective optimistic peaceful pedantic pensive "
    "practical priceless quirky quizzical relaxed reverent romantic sad serene sharp silly "
    "sleepy stoic strange stupefied suspicious sweet tender thirsty trusting upbeat vibrant "
    "vigilant vigorous wizardly wonderful xenodochial youthful zealous zen "
)
_NOUN = _words(
    "albattani allen archimedes ardinghelli babbage banach bardeen bartik bassi bell benz "
    "bhabha blackwell bohr booth borg bose brahmagupta brown burnell cannon carson cerf "
    "chandrasekhar curie darwin davinci dijkstra dirac einstein elion engelbart euclid euler "
    "faraday fermat fermi feynman franklin galileo gauss goldberg goodall hamilton hawking "
    "heisenberg hermann hodgkin hopper hypatia jackson jang jennings johnson kalam kapitsa "
    "keller kepler khorana knuth lamarr leakey lovelace lumiere mayer mccarthy meitner mendel "
    "morse newton nobel noether pare pascal pasteur perlman pike poincare ptolemy raman ritchie "
    "rosalind sammet shannon sinoussi stallman swartz tesla thompson torvalds turing "
    "varahamihira wescoff wiles williams wilson wozniak wright yalow yonath "
)


def generate_name(taken: set[str]) -> str:
    """Docker's ``adjective_scientist`` names."""
    for _ in range(100):
        name = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"
        if name not in taken:
            return name
    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}{secrets.randbelow(100)}"


def new_id() -> str:
    return secrets.token_hex(32)


@attrs.frozen(kw_only=True)
class ContainerOptions:
    """``docker create``/``run``'s options, as given (parsed by :func:`service_of`)."""

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
    restart: str = "no"
    health_cmd: str | None = None
    health_interval: float | None = None
    health_timeout: float | None = None
    health_retries: int | None = None
    health_start_period: float | None = None
    no_healthcheck: bool = False
    cwd: Path | None = None
    init: bool = False
    platform: str | None = None
    mounts: tuple[str, ...] = ()  # --mount type=…,source=…,target=…
    tmpfs: tuple[str, ...] = ()
    read_only: bool = False
    expose: tuple[str, ...] = ()
    label_files: tuple[str, ...] = ()
    network: str | None = None
    ulimits: tuple[str, ...] = ()
    shm_size: str | None = None
    devices: tuple[str, ...] = ()
    # accepted, not enforced here (one warning line: see unenforced())
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    security_opt: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    gpus: str | None = None


# the network modes docker knows by name; any other is a network's name
NETWORK_MODES = {"host": "host", "bridge": "bridge", "default": "bridge", "none": "none"}


def unenforced(opts: ContainerOptions) -> list[str]:
    """The given options that proot cannot enforce (no cgroups, no capabilities of its own,
    no network namespace): ``run`` accepts them with one warning, as podman does."""
    given = [("--cap-add", bool(opts.cap_add)), ("--cap-drop", bool(opts.cap_drop)),
             ("--privileged", opts.privileged), ("--security-opt", bool(opts.security_opt)),
             ("--memory", opts.memory is not None), ("--cpus", opts.cpus is not None),
             ("--gpus", opts.gpus is not None),
             ("--network none", NETWORK_MODES.get(opts.network or "") == "none")]
    return [flag for flag, on in given if on]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)


def parse_size(text: str, flag: str) -> int:
    """docker's sizes: ``64m``, ``1g``, ``512k``, ``1024`` (bytes)."""
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"invalid {flag} {text!r}: expected a size such as 64m or 1g.")
    scale = 1024 ** "bkmgt".index((m.group(2) or "b").lower())
    return int(float(m.group(1)) * scale)


def parse_ulimit(text: str) -> str:
    """``NAME=SOFT[:HARD]`` (``-1``: unlimited), checked; the canonical ``NAME=SOFT:HARD``."""
    from ..runtime.proot import ULIMITS

    name, eq, value = text.partition("=")
    if not eq or name not in ULIMITS:
        raise ConfigError(f"invalid --ulimit {text!r}: expected NAME=SOFT[:HARD] with NAME one "
                          f"of {', '.join(ULIMITS)}.")
    soft, _, hard = value.partition(":")
    hard = hard or soft
    for v in (soft, hard):
        if not re.fullmatch(r"-1|\d+", v.strip()):
            raise ConfigError(f"invalid --ulimit {text!r}: limits are numbers (-1: unlimited).")
    if int(hard) != -1 and (int(soft) == -1 or int(soft) > int(hard)):
        raise ConfigError(f"invalid --ulimit {text!r}: the soft limit is above the hard one.")
    return f"{name}={soft.strip()}:{hard.strip()}"


def parse_mount(text: str, cwd: Path | None = None) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`` (docker's keys and
    aliases: src, dst, destination, ro, readonly=true|false)."""
    fields: dict[str, str] = {}
    for part in (p for p in text.split(",") if p):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        fields[key] = value if eq else "true"
    kind = fields.pop("type", "volume")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    ro_text = fields.pop("readonly", fields.pop("ro", "false")).lower()
    if ro_text not in ("true", "false", "1", "0"):
        raise ConfigError(f"invalid --mount {text!r}: readonly is true or false.")
    ro = ro_text in ("true", "1")
    if kind not in ("bind", "volume", "tmpfs"):
        raise ConfigError(f"invalid --mount {text!r}: type is bind, volume or tmpfs.")
    if not target.startswith("/"):
        raise ConfigError(f"invalid --mount {text!r}: target must be an absolute path.")
    if kind == "tmpfs":
        if source:
            raise ConfigError(f"invalid --mount {text!r}: a tmpfs has no source.")
        return MountSpec(type="tmpfs", target=target)
    if kind == "bind":
        if not source:
            raise ConfigError(f"invalid --mount {text!r}: a bind mount needs a source.")
        host = Path(source).expanduser()
        if not host.is_absolute():
            host = (cwd or Path.cwd()) / host
        if not host.exists():  # docker: --mount never creates the host path (-v does)
            raise ConfigError(f"invalid --mount {text!r}: bind source path does not exist: "
                              f"{host.absolute()}.")
        return MountSpec(type="bind", source=str(host.absolute()), target=target,
                         read_only=ro, create_host_path=False)
    if not source:
        return MountSpec(type="anonymous", target=target, read_only=ro)
    validate_name("volume", source)
    return MountSpec(type="volume", source=source, target=target, read_only=ro)


def parse_tmpfs(text: str) -> MountSpec:
    """``--tmpfs /path[:options]`` (the options are accepted; a tmpfs here is a fresh, empty
    folder at every start)."""
    target = text.split(":", 1)[0]
    if not target.startswith("/"):
        raise ConfigError(f"invalid --tmpfs {text!r}: the path must be absolute.")
    return MountSpec(type="tmpfs", target=target)


def parse_device(text: str) -> MountSpec:
    """``--device /dev/HOST[:/dev/CONTAINER[:rwm]]``: the host's /dev is the container's
    already; a device at another path is bound there."""
    parts = text.split(":")
    host = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    if not Path(host).exists():
        raise ConfigError(f"error gathering device information while adding custom device "
                          f"{host!r}: no such file or directory.")
    return MountSpec(type="bind", source=host, target=target, create_host_path=False)


def parse_label_file(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read label file {path}: {exc.strerror}.") from exc
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def expose_ports(items: Sequence[str]) -> tuple[str, ...]:
    """``--expose 80``, ``8000-8002``, ``53/udp``: as ``PORT/PROTO`` (the image's form)."""
    out: list[str] = []
    for item in items:
        port, _, proto = item.partition("/")
        proto = proto or "tcp"
        lo, _, hi = port.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"invalid --expose {item!r}: expected PORT[/PROTO].") from None
        if not (0 < a <= b < 65536) or proto not in ("tcp", "udp"):
            raise ConfigError(f"invalid --expose {item!r}: ports are 1-65535, tcp or udp.")
        out += [f"{p}/{proto}" for p in range(a, b + 1)]
    return tuple(out)


def publish_all(svc: ServiceConfig, exposed: Sequence[str]) -> ServiceConfig:
    """``-P``: every exposed port (the image's and ``--expose``) not published yet, on a free
    host port."""
    import socket

    taken = {(p.target, p.protocol) for p in svc.ports}
    ports = list(svc.ports)
    for item in dict.fromkeys([*exposed, *svc.expose]):
        port, _, proto = item.partition("/")
        key = (int(port), proto or "tcp")
        if key in taken:
            continue
        kind = socket.SOCK_STREAM if key[1] == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("0.0.0.0", 0))
            free = int(s.getsockname()[1])
        ports.append(PortSpec(target=key[0], published=free, protocol=key[1]))
        taken.add(key)
    return attrs.evolve(svc, ports=tuple(ports))


def parse_volume(text: str, cwd: Path | None = None) -> MountSpec:
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
        return MountSpec(type="anonymous", target=target, read_only=ro)
    if src.startswith(("/", ".", "~")):
        host = Path(src).expanduser()
        if not host.is_absolute():
            host = (cwd or Path.cwd()) / host
        return MountSpec(type="bind", source=str(host.absolute()), target=target,
                         read_only=ro)
    validate_name("volume", src)
    return MountSpec(type="volume", source=src, target=target, read_only=ro)


def parse_hosts(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--add-host name:ip`` (also ``name=ip``); ``host-gateway`` is the loopback here."""
    out: list[tuple[str, str]] = []
    for item in items:
        sep = "=" if "=" in item else ":"
        name, _, ip = item.partition(sep)
        if not name or not ip:
            raise ConfigError(f"invalid --add-host {item!r}: expected NAME:IP.")
        out.append((name, ip.strip("[]")))
    return tuple(out)


def _ports(items: Sequence[str]) -> tuple[PortSpec, ...]:
    from ..runtime.spec import parse_port

    out: list[PortSpec] = []
    for item in items:
        for p in parse_port(item):
            out.append(PortSpec(target=p.container_port, published=p.host_port,
                                host_ip=p.host_ip, protocol=p.protocol))
    return tuple(out)


def _healthcheck(opts: ContainerOptions) -> HealthSpec | None:
    if opts.no_healthcheck:
        return HealthSpec(test=("NONE",))
    tuning = (opts.health_interval, opts.health_timeout, opts.health_retries,
              opts.health_start_period)
    if opts.health_cmd is None:
        if any(v is not None for v in tuning):
            raise ConfigError("--health-interval, --health-timeout, --health-retries and "
                              "--health-start-period need --health-cmd (or an image "
                              "healthcheck, which this does not change yet).")
        return None
    for flag, value in (("--health-interval", opts.health_interval),
                        ("--health-timeout", opts.health_timeout),
                        ("--health-start-period", opts.health_start_period)):
        if value is not None and value < 0:
            raise ConfigError(f"{flag} cannot be negative.")
    if opts.health_retries is not None and opts.health_retries < 0:
        raise ConfigError("--health-retries cannot be negative.")
    return HealthSpec(
        test=("CMD-SHELL", opts.health_cmd),
        interval=opts.health_interval or 30.0,
        timeout=opts.health_timeout or 30.0,
        start_period=opts.health_start_period or 0.0,
        retries=opts.health_retries if opts.health_retries else 3,
    )


def service_of(name: str, opts: ContainerOptions, host_env: Mapping[str, str]) -> ServiceConfig:
    """The one service of a standalone container (every option checked here, before any
    image is pulled or file written)."""
    from ..runtime.spec import parse_env_file, parse_env_list

    env: dict[str, str] = {}
    for f in opts.env_files:
        env.update(parse_env_file(Path(f), host_env))
    env.update(parse_env_list(opts.env, host_env))
    # `--label KEY` is KEY="" (docker), not a variable looked up like `-e KEY`
    labels: dict[str, str] = {}
    for f in opts.label_files:
        labels.update(parse_label_file(f))
    labels.update({k: v for k, _, v in (item.partition("=") for item in opts.labels) if k})
    entrypoint: tuple[str, ...] | None = None
    if opts.entrypoint is not None:
        # one executable, as docker's --entrypoint ("" clears the image's)
        entrypoint = (opts.entrypoint,) if opts.entrypoint else ()
    restart = RestartPolicy.parse(opts.restart)
    if opts.auto_remove and restart.name != "no":
        raise ConfigError("conflicting options: cannot combine --restart and --rm.")
    if opts.platform:
        from ..image.platform import Platform

        Platform.parse(opts.platform)
    if opts.memory is not None:
        parse_size(opts.memory, "--memory")
    if opts.cpus is not None:
        try:
            float(opts.cpus)
        except ValueError:
            raise ConfigError(f"invalid --cpus {opts.cpus!r}: expected a number.") from None
    network = opts.network or None
    mode = NETWORK_MODES.get(network or "")
    if network and network.startswith("container:"):
        mode = network
    volumes = [parse_volume(v, opts.cwd) for v in opts.volumes]
    volumes += [parse_mount(m, opts.cwd) for m in opts.mounts]
    volumes += [parse_tmpfs(t) for t in opts.tmpfs]
    volumes += [parse_device(d) for d in opts.devices]
    return ServiceConfig(
        name=name,
        image=opts.image,
        command=tuple(opts.command) or None,
        entrypoint=entrypoint,
        environment=env,
        working_dir=opts.workdir,
        user=opts.user,
        hostname=opts.hostname,
        ports=_ports(opts.ports),
        volumes=tuple(volumes),
        healthcheck=_healthcheck(opts),
        restart=restart,
        stop_signal=opts.stop_signal or "SIGTERM",
        stop_grace_period=opts.stop_timeout if opts.stop_timeout is not None else 10.0,
        container_name=name,
        extra_hosts=parse_hosts(opts.add_hosts),
        tty=opts.tty,
        stdin_open=opts.interactive,
        dns=tuple(opts.dns),
        labels=labels,
        auto_remove=opts.auto_remove,
        init=opts.init,
        platform=opts.platform,
        read_only=opts.read_only,
        network_mode=mode,
        networks=(network,) if network and mode is None else (),
        expose=expose_ports(opts.expose),
        ulimits=tuple(parse_ulimit(u) for u in opts.ulimits),
        shm_size=parse_size(opts.shm_size, "--shm-size") if opts.shm_size else None,
    )


def state_dir(paths: Paths, name: str) -> Path:
    return paths.containers / name


def model_of(paths: Paths, name: str, svc: ServiceConfig, working_dir: Path) -> ProjectModel:
    volumes = {m.source: VolumeSpec(name=m.source, external=True)
               for m in svc.volumes if m.type == "volume"}
    return ProjectModel(name=name, working_dir=str(working_dir), services={name: svc},
                        volumes=volumes, state_dir=str(state_dir(paths, name)), kind=KIND,
                        volumes_dir=str(paths.data / "volumes"))


def taken_names(paths: Paths) -> set[str]:
    try:
        return {d.name for d in paths.containers.iterdir()}
    except FileNotFoundError:
        return set()


def reserve(paths: Paths, name: str | None) -> str:
    """A new standalone container's state directory (its name validated and unique)."""
    paths.containers.mkdir(parents=True, exist_ok=True)
    if name:
        validate_name("container", name)
    else:
        name = generate_name(taken_names(paths))
    try:
        state_dir(paths, name).mkdir(mode=0o755)
    except FileExistsError:
        raise ContainerError(
            f'the container name "{name}" is already in use; remove that container '
            f"('opencontainer rm {name}') or choose another name."
        ) from None
    return name
