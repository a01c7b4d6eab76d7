"""How containers are created, started and probed: the seam between engine and runtime.

:class:`ProotRunner` is the real one (image store + rootfs copy + ``run.sh`` + proot).
:class:`ShellRunner` runs a service's ``shell_script`` (or command) with ``/bin/sh`` on the host:
the supervisor's tests use it (DESIGN §8: a runtime that runs /bin/sh scripts, not mocks), and
embedders can use it for host processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Self

import anyio
import attrs

from ..errors import ContainerError
from ..logs import logger
from ..paths import Paths, atomic_write
from ..runtime import procfs
from ..runtime.process import DEVNULL, ContainerProcess
from .health import ProbeResult, from_image
from .model import HealthSpec, ProjectModel, ServiceConfig, as_dict
from .state import ProjectState
from .volumes import resolve_mounts

log = logger()


@attrs.frozen(kw_only=True)
class Attachment:
    """A terminal (or pipes) attached to a container: ``run`` and ``start -a`` in the
    foreground. ``stdout``/``stderr`` receive its output as it comes (besides the log);
    ``stdin`` is a file descriptor given to it (``-i``); with ``tty`` the container has a pty
    (of ``winsize``) and ``stdin`` is copied to it."""

    stdout: BinaryIO | None = None
    stderr: BinaryIO | None = None
    stdin: int | None = None
    winsize: tuple[int, int] | None = None


class SupervisedProcess(ContainerProcess):
    """The runtime's :class:`ContainerProcess` as the supervisor holds it (+ ``pid_start``)."""

    pid_start: int | None = None  # tells our pid from a reused one (state.json, leftovers)

    @classmethod
    async def spawn(cls, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
                    stdin: int | None = DEVNULL, tty: bool = False,
                    winsize: tuple[int, int] | None = None, zygotes: Any = None) -> Self:
        """Start ``argv`` in a new session (stdout/stderr piped, or a pty with ``tty``);
        through a started step of ``zygotes`` (a ZygotePool) when it has one for it."""
        proc: ContainerProcess | None = None
        if zygotes is not None and not tty and stdin == DEVNULL:
            started = zygotes.take(argv)
            if started is not None:
                from .zygotes import launch

                if await launch(started, argv, env, cwd):
                    proc = cls(started)
        if proc is None:
            proc = await cls.start(list(argv), env=env, cwd=cwd, stdin=stdin, tty=tty,
                                   winsize=winsize)
        assert isinstance(proc, cls)
        proc.pid_start = procfs.start_time(proc.pid)
        return proc

    def main_pid(self) -> int:
        """The container's main process (proot's tracee), else the pid we started."""
        return self.tracee_pid or self.pid


class HostProcess(SupervisedProcess):
    """A plain host process (:class:`ShellRunner`): no proot, it is its own main process, so
    signals go to it and the container ends with it (Docker's rules, as for a tracee)."""

    @property
    def tracee_pid(self) -> int | None:
        return self.pid


class NativeProcess(SupervisedProcess):
    """A container of the native backend: run.sh execs native.py, whose child is the
    container's pid 1 (in a PID namespace of its own: that tells it from the short-lived
    newuidmap helper native.py forks first). No ptrace: pid 1 is found by namespace."""

    @property
    def tracee_pid(self) -> int | None:
        if self._tracee is None and self._exit is None:
            kids = procfs.in_new_pid_namespace(self.pid)
            if kids:
                self._tracee = min(kids)
        return self._tracee

    async def wait(self, *, sweep: bool = False) -> int:
        """As :meth:`ContainerProcess.wait`, without the look through the machine's /proc
        for leftovers of the session when native.py ended by itself (~3 ms, more on a busy
        machine): every process of the container is in its PID namespace, which the kernel
        empties when pid 1 ends, and native.py waits for pid 1. Still swept when native.py
        was killed or the container was signalled."""
        return await super().wait(sweep=sweep)

    def signal(self, sig: int | str) -> None:
        """Deliver ``sig`` to pid 1 (native.py reports its real exit status, so no guess
        about fatal signals is needed; pid 1 without a handler ignores TERM and INT, as in
        Docker)."""
        from ..runtime.process import parse_signal

        signo = parse_signal(sig)
        target = self.tracee_pid
        if target is not None and procfs.alive(target):
            self._signalled = signo
            procfs.kill_quietly(target, signo)
        elif self.process.returncode is None:
            procfs.kill_quietly(self.pid, signo)


@attrs.frozen(kw_only=True)
class ContainerContext:
    project: ProjectModel
    service: ServiceConfig
    name: str
    number: int
    state: ProjectState
    port_map: Mapping[int, int] = attrs.field(factory=dict, converter=as_dict, hash=False)
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    one_off: bool = False
    netns: str = ""  # the project's network holder pid file ("" = the host's network)
    dns: tuple[str, ...] = ()  # resolvers when the service has none and the host's won't do

    @property
    def dir(self) -> Path:
        return self.state.container_dir(self.name)


def compose_labels(ctx: ContainerContext) -> dict[str, str]:
    """The labels docker compose puts on a service's containers (none on a standalone
    container's)."""
    if ctx.project.standalone:
        return {}
    return {
        "com.docker.compose.project": ctx.project.name,
        "com.docker.compose.service": ctx.service.name,
        "com.docker.compose.container-number": str(ctx.number),
        "com.docker.compose.oneoff": "True" if ctx.one_off else "False",
        "com.docker.compose.project.working_dir": ctx.project.working_dir,
        "com.docker.compose.project.config_files": ",".join(ctx.project.compose_files),
        "com.docker.compose.config-hash": ctx.service.config_hash(),
    }


@attrs.frozen(kw_only=True)
class Created:
    image: str
    command: tuple[str, ...]
    healthcheck: HealthSpec | None  # the service's, else the image's


class Runner(Protocol):
    async def create(self, ctx: ContainerContext, *, fresh: bool) -> Created: ...
    async def start(self, ctx: ContainerContext,
                    attach: Attachment | None = None) -> SupervisedProcess: ...
    async def probe(self, ctx: ContainerContext, argv: Sequence[str],
                    timeout: float) -> ProbeResult: ...
    async def remove(self, ctx: ContainerContext) -> None: ...


def _stdio(ctx: ContainerContext, attach: Attachment | None) -> dict[str, Any]:
    """How a container's process gets its stdio: a pty for ``tty``; the attached stdin for
    ``stdin_open`` (``-i``) when attached without a pty; /dev/null otherwise."""
    if ctx.service.tty:
        return {"tty": True, "winsize": attach.winsize if attach else None}
    if attach is not None and ctx.service.stdin_open and attach.stdin is not None:
        return {"stdin": attach.stdin}
    return {}


async def run_probe(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
                    timeout: float) -> ProbeResult:
    """Run a probe command; over ``timeout`` it is killed and fails with exit code -1."""
    start = time.time()
    proc = await anyio.open_process(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, cwd=str(cwd), env=dict(env), start_new_session=True,
    )
    chunks: list[bytes] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for chunk in proc.stdout:
            if sum(len(c) for c in chunks) < 8192:
                chunks.append(chunk)

    code: int | None = None
    try:
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                code = await proc.wait()
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            await proc.aclose()
    out = b"".join(chunks).decode("utf-8", "replace")
    if code is None:
        return ProbeResult(start=start, end=time.time(), exit_code=-1,
                           output=f"Health check exceeded timeout ({timeout:g}s)")
    return ProbeResult(start=start, end=time.time(), exit_code=code, output=out)


def host_env() -> dict[str, str]:
    """The environment of host-side commands (run.sh, exec and probe wrappers): a few of
    ours, and PYTHONPATH so that ``python -S -m opencontainer.runtime.nsexec`` finds us."""
    from ..runtime.overlay import helper_env

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = helper_env({})["PYTHONPATH"]
    return env


@attrs.define
class ShellRunner:
    """Runs ``service.shell_script`` with ``/bin/sh -c`` on the host, in the container folder.

    The script sees the service environment plus ``CONTAINER_NAME``, ``SERVICE``,
    ``CONTAINER_NUMBER`` and ``CONTAINER_DIR``.
    """

    def _env(self, ctx: ContainerContext) -> dict[str, str]:
        return {
            **host_env(),
            **ctx.service.environment,
            "CONTAINER_NAME": ctx.name,
            "SERVICE": ctx.service.name,
            "CONTAINER_NUMBER": str(ctx.number),
            "CONTAINER_DIR": str(ctx.dir),
        }

    def _argv(self, svc: ServiceConfig) -> tuple[str, ...]:
        if svc.shell_script is not None:
            return ("/bin/sh", "-c", svc.shell_script)
        return (*(svc.entrypoint or ()), *(svc.command or ())) or ("/bin/true",)

    async def create(self, ctx: ContainerContext, *, fresh: bool) -> Created:
        if fresh and ctx.dir.exists():
            shutil.rmtree(ctx.dir / "work", ignore_errors=True)
        (ctx.dir / "work").mkdir(parents=True, exist_ok=True)
        resolve_mounts(ctx.project, ctx.service.volumes, ctx.state, ctx.name, None)
        return Created(image=ctx.service.image or "sh", command=self._argv(ctx.service),
                       healthcheck=ctx.service.healthcheck)

    async def start(self, ctx: ContainerContext,
                    attach: Attachment | None = None) -> SupervisedProcess:
        (ctx.dir / "work").mkdir(parents=True, exist_ok=True)
        return await HostProcess.spawn(self._argv(ctx.service), env=self._env(ctx),
                                       cwd=ctx.dir / "work", **_stdio(ctx, attach))

    async def probe(self, ctx: ContainerContext, argv: Sequence[str],
                    timeout: float) -> ProbeResult:
        return await run_probe(argv, env=self._env(ctx), cwd=ctx.dir / "work", timeout=timeout)

    async def remove(self, ctx: ContainerContext) -> None:
        shutil.rmtree(ctx.dir, ignore_errors=True)


INIT_CANDIDATES = ("docker-init", "tini-static")


def init_binary(env: Mapping[str, str]) -> Path:
    """``--init``'s reaper: a static tini (``$OPENCONTAINER_INIT``, docker's ``docker-init``,
    or Debian's ``tini-static``), bound into the container at /sbin/docker-init. Static, so
    that it runs in any image (musl, glibc or none at all)."""
    if env.get("OPENCONTAINER_INIT"):
        path = Path(env["OPENCONTAINER_INIT"])
        if path.is_file():
            return path
        raise ContainerError(f"OPENCONTAINER_INIT names {path}, which is not a file.")
    search = os.pathsep.join([env.get("PATH", ""), "/usr/bin", "/usr/libexec/docker",
                              "/usr/local/bin"])
    for name in INIT_CANDIDATES:
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    raise ContainerError("--init needs a static tini on this host: install it ('apt install "
                         "tini' brings tini-static) or set OPENCONTAINER_INIT to one.")


# an image's architecture -> qemu-user's name for it
_QEMU_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386",
              "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
              "mips64le": "mips64el"}


def qemu_for(arch: str, caps: Any, env: Mapping[str, str], image: str) -> str | None:
    """The qemu-user binary that runs an image of ``arch`` here (None: the host's own
    architecture, or unknown). A foreign one needs proot >= 5.4 (``proot -q``): qemu under
    proot 5.1.0 is ten times slower, so it is refused there."""
    from ..image.platform import Platform

    host = Platform.host().architecture
    if not arch or arch == host or (host == "amd64" and arch == "386"):
        return None
    version = tuple(int(x) for x in re.findall(r"\d+", caps.version or "0")[:2])
    if version < (5, 4):
        raise ContainerError(
            f"the image {image} is for {arch}, which runs through qemu-user only with proot "
            f">= 5.4 (this proot is {caps.version or 'of unknown version'}); set "
            "OPENCONTAINER_PROOT to a newer proot.")
    name = _QEMU_ARCH.get(arch, arch)
    search = os.pathsep.join([env.get("PATH", ""), "/usr/bin", "/usr/local/bin"])
    for candidate in (f"qemu-{name}-static", f"qemu-{name}"):
        found = shutil.which(candidate, path=search)
        if found:
            return found
    raise ContainerError(f"the image {image} is for {arch}: install qemu-user-static (qemu-"
                         f"{name}-static) to run it here.")


def _is_platform(rec: Any, platform: str) -> bool:
    from ..image.platform import Platform

    wanted = Platform.parse(platform)
    arch = getattr(rec.config, "architecture", "") or ""
    return not arch or arch == wanted.architecture


def check_ulimits(items: Sequence[str]) -> None:
    """A normal user cannot raise a hard limit: say so before the container starts."""
    import resource

    for item in items:
        name, _, value = item.partition("=")
        const = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if const is None:
            continue
        hard = value.partition(":")[2] or value.partition(":")[0]
        unlimited = hard.strip() in ("-1", "unlimited")
        want = resource.RLIM_INFINITY if unlimited else int(hard)
        have = resource.getrlimit(const)[1]
        if have != resource.RLIM_INFINITY and (want == resource.RLIM_INFINITY or want > have):
            raise ContainerError(f"--ulimit {item}: the hard limit is above this user's "
                                 f"({have}), which only root can raise.")


@attrs.define
class ProotRunner:
    """Real containers: image rootfs copy, generated ``run.sh``, proot."""

    paths: Paths
    pull_policy: str = "missing"
    env: Mapping[str, str] = attrs.field(factory=lambda: dict(os.environ))
    bus: Any = None
    # the image record to use instead of resolving each service's image (a build step's:
    # its config, and its work tree, which the caller puts at the container's rootfs)
    image: Any = None
    _caps: Any = None
    _binary: Path | None = None
    _userns: tuple[float, bool] | None = None  # (when, answer) of the last probe
    # a long-lived owner (the engine service) that deletes removed containers' files in the
    # background: a removal then only renames the container's folder out of the way
    defer_delete: Callable[[Path], None] | None = None
    # the engine service's started steps (engine/zygotes.py): a container whose process
    # begins with one of our Python steps starts without that interpreter's start-up
    zygotes: Any = None

    def userns_works(self) -> bool:
        """Can user namespaces be made (runtime/overlay.py ``userns_works``, ~3-5 ms a
        probe)? One answer serves every question asked within a second: the engine's
        network and backend choices and the overlay root's re-check of one ``run``, which
        asked three times before; a long-lived supervisor still notices them going away."""
        now = time.monotonic()
        if self._userns is None or now - self._userns[0] > 1.0:
            from ..runtime.overlay import userns_works

            self._userns = (now, userns_works())
        return self._userns[1]

    def share_probes(self, other: ProotRunner, *, userns_for: float = 1.0) -> None:
        """Take what ``other`` found out (proot's capabilities and binary, when it uses the
        same proot and cache; its user namespace probe, as fresh when not older than
        ``userns_for`` seconds): the engine service's runners, one per request, ask once."""
        same = other.paths.cache == self.paths.cache and all(
            other.env.get(k) == self.env.get(k) for k in ("OPENCONTAINER_PROOT", "PATH",
                                                          "PREFIX"))
        if same and other._caps is not None:
            self._caps, self._binary = other._caps, other._binary
        if other._userns is not None and time.monotonic() - other._userns[0] <= userns_for:
            self._userns = (time.monotonic(), other._userns[1])

    def refresh_userns(self) -> None:
        """Probe user namespaces again now (the engine service: after a request, off the
        start path of the next)."""
        from ..runtime.overlay import userns_works

        self._userns = (time.monotonic(), userns_works())

    def caps(self) -> Any:
        if self._caps is None:
            from ..paths import proot_binary
            from ..runtime.proot import ProotCapabilities

            self._binary = proot_binary(self.env)
            self._caps = ProotCapabilities.detect(self._binary, self.paths.cache)
        return self._caps

    @property
    def binary(self) -> Path:
        self.caps()
        assert self._binary is not None
        return self._binary

    async def _image(self, ref: str, platform: str | None = None) -> Any:
        from ..image.policy import local_image
        from ..image.store import ImageStore

        rec = local_image(ref, ImageStore(self.paths.store), self.pull_policy)
        if rec is not None and (not platform or _is_platform(rec, platform)):
            return rec  # the puller (aiohttp: ~150 ms of imports) only to pull
        try:
            from ..image.pull import ensure_image
        except ImportError:  # the image puller is not there: use what the store has
            return ImageStore(self.paths.store).resolve(ref)
        rec = await ensure_image(ref, paths=self.paths, policy=self.pull_policy, bus=self.bus)
        if platform and self.pull_policy != "never" and not _is_platform(rec, platform):
            # the local image is of another platform: pull the one asked for, as docker does
            rec = await ensure_image(ref, paths=self.paths, policy="always", bus=self.bus,
                                     platform=platform)
        return rec

    def _extras(self, ctx: ContainerContext, rec: Any, layout: Any) -> dict[str, Any]:
        """What ``--init``, ``--platform``, ``--read-only``, ``--ulimit`` and ``--shm-size``
        add to the spec (each checked here: one sentence when this host cannot)."""
        svc = ctx.service
        out: dict[str, Any] = {"read_only": svc.read_only, "ulimits": svc.ulimits,
                               "shm_size": svc.shm_size, "init": svc.init}
        out["qemu"] = qemu_for(getattr(rec.config, "architecture", ""), self.caps(),
                               self.env, svc.image)
        if svc.ulimits:
            check_ulimits(svc.ulimits)
        if svc.shm_size:
            (ctx.dir / "shm").mkdir(exist_ok=True)
        if svc.read_only and layout is None:
            log.warning("read-only root not enforced", container=ctx.name)
        return out

    async def create(self, ctx: ContainerContext, *, fresh: bool) -> Created:
        from ..runtime.runscript import write_run_sh
        from ..runtime.spec import Mount, PortMapping, build_spec

        svc = ctx.service
        rec = self.image if self.image is not None else await self._image(svc.image,
                                                                          svc.platform)
        from ..image.store import ImageStore
        from ..runtime.overlay import OverlayLayout

        store = ImageStore(self.paths.store)
        rootfs = ctx.dir / "rootfs"
        old = self._old_overlay(ctx.dir)
        if rootfs.exists() and (fresh or (old is not None and old.lower != str(
                Path(rec.rootfs).absolute()))):
            from ..runtime.rootfs import remove_rootfs

            await remove_rootfs(rootfs, store, old.lower if old else None)
            old = None
        layout: OverlayLayout | None = old
        if not rootfs.exists():
            from ..runtime.rootfs import create_container_root

            layout = await create_container_root(Path(rec.rootfs), ctx.dir, self.paths.cache,
                                                 self.env, store=store,
                                                 userns=self.userns_works,
                                                 durable=not svc.auto_remove)
        mounts = resolve_mounts(ctx.project, svc.volumes, ctx.state, ctx.name, Path(rec.rootfs))
        extras = self._extras(ctx, rec, layout)
        if svc.init:
            from ..runtime.spec import INIT_PATH
            from .volumes import HostMount

            mounts.append(HostMount(source=init_binary(self.env), target=INIT_PATH))
        # the image's own VOLUMEs become anonymous volumes unless mounted over
        taken = {m.target for m in mounts}
        for target in getattr(rec.config, "volumes", ()) or ():
            if target not in taken:
                from .model import MountSpec

                mounts += resolve_mounts(ctx.project, (MountSpec(type="anonymous",
                                         target=target),), ctx.state, ctx.name, Path(rec.rootfs))
        spec = build_spec(
            name=ctx.name,
            rootfs=rootfs,
            image_config=rec.config,
            image=svc.image,
            entrypoint=svc.entrypoint,
            command=svc.command,
            env=svc.environment,
            workdir=svc.working_dir,
            user=svc.user,
            mounts=[Mount(source=str(m.source), target=m.target, read_only=m.read_only,
                          kind=m.kind, name=m.name) for m in mounts],
            ports=[PortMapping("", host, cont) for cont, host in sorted(ctx.port_map.items())],
            hostname=svc.hostname or ctx.name,
            hosts=ctx.hosts,
            dns=svc.dns or ctx.dns,
            tty=svc.tty,
            stdin_open=svc.stdin_open,
            stop_signal=svc.stop_signal,
            stop_timeout=svc.stop_grace_period,
            labels={**dict(getattr(rec.config, "labels", None) or {}), **svc.labels,
                    **compose_labels(ctx)},
            overlay=layout,
        )
        spec = attrs.evolve(spec, **extras)
        if ctx.netns:
            spec = attrs.evolve(spec, netns=ctx.netns)
        from ..runtime.create import ensure_target

        tree = layout.layers() if layout is not None else rootfs
        for m in mounts:  # mount points and the working directory, as docker creates them
            ensure_target(tree, m.target, m.source.is_dir())
        ensure_target(tree, spec.cwd, True)
        spec = self._with_backend(spec, str(getattr(rec.config, "architecture", "") or ""),
                                  self._proot_needs(ctx, spec))
        # a --rm container's files live as long as it runs: atomic for readers, not fsynced
        durable = not svc.auto_remove
        if spec.backend == "native":
            from ..runtime.backend import write_native_run_sh

            write_native_run_sh(spec, ctx.dir / "run.sh", durable=durable)
        else:
            write_run_sh(spec, self.caps(), self.binary, ctx.dir / "run.sh", durable=durable)
        atomic_write(ctx.dir / "spec.json", json.dumps(spec.to_dict(), indent=1),
                     durable=durable)
        hc = svc.healthcheck or from_image(getattr(rec.config, "healthcheck", None))
        return Created(image=svc.image, command=tuple(spec.argv), healthcheck=hc)

    @staticmethod
    def _proot_needs(ctx: ContainerContext, spec: Any) -> list[str]:
        """What the container asks for that only proot gives (runtime/backend.py)."""
        from ..runtime import backend

        svc = ctx.service
        # a private network namespace (ctx.netns, where there is one) binds any port
        host_ports: list[int | str] = [] if getattr(ctx, "netns", "") else [
            *(p.target for p in svc.ports), *svc.expose, *spec.exposed_ports]
        return backend.proot_needs(
            host_ports=host_ports, port_map=bool(ctx.port_map), init=spec.init,
            ulimits=spec.ulimits, read_only=spec.read_only, shm_size=spec.shm_size,
            tty=svc.tty)

    def _with_backend(self, spec: Any, image_arch: str, needs: Sequence[str] = ()) -> Any:
        """``spec`` with the backend (and, native, the id mapping) chosen for it here, and
        why."""
        from ..runtime import backend, idmap

        # an overlay root was just checked to work in a user namespace: no second probe
        userns = True if spec.overlay is not None else None
        chosen, why = backend.decide(image_arch, self.env, userns=userns, needs=needs)
        if chosen != "native":
            return attrs.evolve(spec, backend="proot", backend_reason=why)
        ids = idmap.choose(spec.uid, spec.gid, self.env)
        if idmap.is_single(ids) and spec.uid == 0 and backend.mode_from_env(self.env) == "auto":
            # one mapped id fakes set*id with seccomp but getuid() stays 0: entry points that
            # re-exec themselves after gosu while "id -u" is 0 (postgres, redis) would loop;
            # proot's fake root emulates the id change
            return attrs.evolve(spec, backend="proot", backend_reason=(
                "a root image with a single mapped id (no subordinate ids): proot emulates "
                "the entry points' switch to another user"))
        return attrs.evolve(spec, backend="native", idmap=ids, backend_reason=why)

    def _old_overlay(self, cdir: Path) -> Any:
        """The overlay layout of the container already in ``cdir`` (None: none, or a copy)."""
        try:
            return self._spec(cdir).overlay
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _spec(self, cdir: Path) -> Any:
        from ..runtime.spec import ContainerSpec

        return ContainerSpec.from_dict(json.loads((cdir / "spec.json").read_text()))

    async def start(self, ctx: ContainerContext,
                    attach: Attachment | None = None) -> SupervisedProcess:
        from ..runtime.create import check_command

        try:
            spec = self._spec(ctx.dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ContainerError(f"the container {ctx.name} has no usable spec.json; remove "
                                 "it and create it again.") from exc
        if not spec.rootfs.is_dir():
            raise ContainerError(f"the root filesystem of container {ctx.name} is missing.")
        if spec.overlay is not None and not Path(spec.overlay.lower).is_dir():
            raise ContainerError(
                f"the image {spec.image} of container {ctx.name} is no longer in the image "
                "store: remove the container and create it again.")
        check_command(spec)  # docker's 127/126 before anything starts
        if spec.backend == "native":
            # what run.sh execs, without a shell in front (run.sh stays the reproduction)
            from ..runtime.backend import build_native_command

            return await NativeProcess.spawn(build_native_command(spec, ctx.dir),
                                             env=host_env(), cwd=ctx.dir, zygotes=self.zygotes,
                                             **_stdio(ctx, attach))
        from ..runtime.proot import env_prefix

        argv, env, stdio = self.run_command(spec, ctx.dir), host_env(), _stdio(ctx, attach)
        lead = env_prefix(spec)
        if (not stdio.get("tty") and argv[:len(lead)] == lead
                and Path(argv[len(lead)]).is_absolute()):
            # proot started with exactly the container's environment, as ``env -i`` would
            # start it: one exec fewer (~1-3 ms; run.sh keeps the env line)
            argv, env = argv[len(lead):], dict(spec.env)
        return await SupervisedProcess.spawn(argv, env=env, cwd=ctx.dir, zygotes=self.zygotes,
                                             **stdio)

    def run_command(self, spec: Any, cdir: Path) -> list[str]:
        """What ``run.sh`` execs, from the same spec (``runtime.proot.build_command``, which
        ``render_run_sh`` writes out): started directly, without a shell in front (~3 ms).
        run.sh stays the by-hand reproduction of exactly this command."""
        from ..runtime.proot import build_command

        return build_command(spec, self.caps(), self.binary, cdir)

    def exec_command(self, cdir: Path, argv: Sequence[str], *,
                     env: Mapping[str, str] | None = None, workdir: str | None = None,
                     user: str | None = None) -> list[str]:
        """The command that runs ``argv`` inside the container in ``cdir`` (a second proot,
        like exec)."""
        from ..runtime.proot import build_command

        spec = self._spec(cdir)
        changes: dict[str, Any] = {"argv": tuple(argv), "init": False}
        if env:
            changes["env"] = {**spec.env, **env}
        if workdir:
            changes["cwd"] = workdir
        if user:
            from ..runtime.spec import resolve_user

            changes["user"] = resolve_user(spec.layers(), user).spec
        spec = attrs.evolve(spec, **changes)
        if spec.backend == "native":
            from ..runtime.backend import build_native_command

            return build_native_command(spec, cdir, join=True)
        caps = attrs.evolve(self.caps(), kill_on_exit=False)
        return build_command(spec, caps, self.binary, cdir, join=True)

    async def probe(self, ctx: ContainerContext, argv: Sequence[str],
                    timeout: float) -> ProbeResult:
        return await run_probe(self.exec_command(ctx.dir, argv), env=host_env(), cwd=ctx.dir,
                               timeout=timeout)

    def _trash(self, cdir: Path, overlay: Any) -> bool:
        """Move the container's folder into ``data/trash`` (one rename: the container is
        gone for every reader) and leave its deletion to :attr:`defer_delete`; False when
        the rename cannot be done (another filesystem: a compose project's folder)."""
        from ..image.store import ImageStore

        trash = self.paths.data / "trash"
        dest = trash / f"{cdir.name}-{os.urandom(6).hex()}"
        try:
            trash.mkdir(parents=True, exist_ok=True)
            os.rename(cdir, dest)
        except OSError:
            return False
        if overlay is not None:  # the image tree is no longer used by it
            with contextlib.suppress(OSError):
                ImageStore(self.paths.store).remove_rootfs_user(Path(overlay.lower), cdir)
        assert self.defer_delete is not None
        self.defer_delete(dest)
        return True

    async def remove(self, ctx: ContainerContext) -> None:
        from ..image.store import ImageStore
        from ..runtime.rootfs import remove_rootfs

        rootfs = ctx.dir / "rootfs"
        old = self._old_overlay(ctx.dir)
        if self.defer_delete is not None and self._trash(ctx.dir, old):
            return
        if rootfs.exists():
            await remove_rootfs(rootfs, ImageStore(self.paths.store), old.lower if old else None)
        from ..paths import remove_tree

        # anonymous volumes of a native container may hold files of subordinate uids
        await anyio.to_thread.run_sync(lambda: remove_tree(ctx.dir, ignore_errors=True))
