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
    network: str = ""  # --network: "host" shares the host's network
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


def network_mode(value: str) -> str:
    """``--network``: ``host`` (the host's network), else a network of the container's own
    (``bridge``, ``default``, ``private``; Docker's user-defined networks are not made)."""
    v = (value or "").strip().lower()
    if v in ("", "bridge", "default", "private"):
        return ""
    if v == "host":
        return "host"
    raise ConfigError(f"--network {value!r} is not supported; use host or bridge.")


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
    labels = {k: v for k, _, v in (item.partition("=") for item in opts.labels) if k}
    entrypoint: tuple[str, ...] | None = None
    if opts.entrypoint is not None:
        # one executable, as docker's --entrypoint ("" clears the image's)
        entrypoint = (opts.entrypoint,) if opts.entrypoint else ()
    restart = RestartPolicy.parse(opts.restart)
    if opts.auto_remove and restart.name != "no":
        raise ConfigError("conflicting options: cannot combine --restart and --rm.")
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
        volumes=tuple(parse_volume(v, opts.cwd) for v in opts.volumes),
        healthcheck=_healthcheck(opts),
        restart=restart,
        stop_signal=opts.stop_signal or "SIGTERM",
        stop_grace_period=opts.stop_timeout if opts.stop_timeout is not None else 10.0,
        container_name=name,
        extra_hosts=parse_hosts(opts.add_hosts),
        network_mode=network_mode(opts.network),
        tty=opts.tty,
        stdin_open=opts.interactive,
        dns=tuple(opts.dns),
        labels=labels,
        auto_remove=opts.auto_remove,
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
