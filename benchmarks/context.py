"""What every scenario gets: a work dir, the running registry, pushed images, tools, env."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import structlog

from tests.fixtures.registry import RegistryProcess

from . import images
from .core import NotAvailable
from .proot_distro import ProotDistro, ensure_proot_distro
from .trash import Trash, rmtree
from .udocker import Udocker, ensure_udocker

log = structlog.get_logger()

REPO_ROOT = Path(__file__).resolve().parent.parent
PROOT_51 = Path("/usr/bin/proot")
#: the unprivileged user the native backend's sides run as when the harness runs as root
DEFAULT_BENCH_USER = "ocuser"


def bench_user() -> str | None:
    """Who runs the sides that need an unprivileged user (the native backend: user namespaces
    with the user's subordinate ids): ``OPENCONTAINER_BENCH_USER`` (default ``ocuser``) when
    the harness runs as root; None (the harness's own user) otherwise."""
    if os.geteuid() != 0:
        return None
    return os.environ.get("OPENCONTAINER_BENCH_USER") or DEFAULT_BENCH_USER


def as_user(argv: list[str], user: str | None) -> list[str]:
    """``argv`` run as ``user`` (``runuser -u USER --``, which keeps the environment but
    HOME, SHELL, USER and LOGNAME); unchanged for None."""
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def proot_54() -> Path | None:
    """proot 5.4.0: ``OPENCONTAINER_BENCH_PROOT54``, else the test fixtures' cached build
    (``<test cache>/proot-5.4.0/proot``, built from Debian's source package on first use)."""
    named = os.environ.get("OPENCONTAINER_BENCH_PROOT54")
    if named:
        return Path(named)
    cache = images.fixture_cache()
    for base in (cache.root, cache.fallback):  # already built: no need to import the builder
        if base is not None and (base / "proot-5.4.0" / ".complete").exists():
            return base / "proot-5.4.0" / "proot"
    try:
        from tests.fixtures.proot import CACHE_KEY, build_proot_54

        entry = cache.get_or_build(CACHE_KEY, build_proot_54)
    except Exception as exc:  # cannot build here: the 5.4.0 sides report n/a
        log.warning("bench.proot54_unavailable", error=str(exc)[:200])
        return None
    binary = entry / "proot"
    return binary if binary.is_file() else None


def compile_bytecode() -> str:
    """Byte-compile our package first, as ``pip install`` does (the peers' venvs come from
    pip, so theirs are compiled): with ``PYTHONDONTWRITEBYTECODE`` set, or after a checkout,
    every command of ours would otherwise compile ~30 modules from source (~45 ms a run
    here). Returns a note for the results."""
    import compileall

    ok = compileall.compile_dir(str(REPO_ROOT / "opencontainer"), quiet=2)
    return ("bytecode: opencontainer/ byte-compiled before timing" if ok else
            "bytecode: compiling opencontainer/ failed (unwritable checkout?): ours may pay "
            "for compiling from source in every command")


def shared_dir() -> Path:
    return Path(os.environ.get("OPENCONTAINER_SHARED") or (REPO_ROOT.parent / "shared"))


def tool_version(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False,
                             env=env)
    except (OSError, subprocess.SubprocessError):
        return "missing"
    return version_line(out.stdout + out.stderr)


def version_line(text: str) -> str:
    """The first line of a ``--version`` output that says "version" (udocker prints an
    ``Info: creating repo`` line first), else its first line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in lines:
        if "version" in line.lower():
            return line
    lines = [ln for ln in lines if not ln.startswith(("Info:", "Warning:"))] or lines
    return lines[0] if lines else "unknown"


@attrs.define
class BenchContext:
    """Shared by all scenarios of one run. Images are pushed on first use."""

    workdir: Path
    quick: bool
    repeat: int
    cache: Path
    trash: Trash = attrs.field(init=False)
    _registry: RegistryProcess | None = None
    _pushed: dict[str, images.PushedImage] = attrs.Factory(dict)
    _udocker: Udocker | NotAvailable | None = None
    _proot_distro: ProotDistro | NotAvailable | None = None

    @trash.default
    def _trash(self) -> Trash:
        return Trash(self.workdir / ".trash")

    @property
    def registry_host(self) -> str:
        """``127.0.0.1:PORT`` of this run's registry (started on first use)."""
        if self._registry is None:
            registry = RegistryProcess(self.workdir / "registry")
            registry.start()
            self._registry = registry
        return f"127.0.0.1:{self._registry.port}"

    def close(self) -> None:
        if self._registry is not None:
            self._registry.stop()
            self._registry = None

    @property
    def registry_url(self) -> str:
        return f"http://{self.registry_host}"

    def image(self, name: str) -> images.PushedImage:
        """Image ``busybox`` or ``multi`` (the Debian service image), pushed on first use."""
        if name not in self._pushed:
            if name == "busybox":
                self._pushed[name] = images.push_busybox(self.registry_host)
            elif name == "multi":
                self._pushed[name] = images.push_service(self.registry_host, self.workdir)
            else:
                raise KeyError(name)
        return self._pushed[name]

    def ref(self, name: str) -> str:
        """``HOST/repo:tag`` of image ``name`` on this run's registry."""
        return self.image(name).reference

    def repo_tag(self, name: str) -> str:
        """``repo:tag`` without the host (for udocker, which takes the registry separately)."""
        return self.ref(name).split("/", 1)[1]

    def unpacked(self, name: str) -> Path:
        """An umoci-unpacked rootfs of image ``name`` (made once per run)."""
        return images.unpack(self.ref(name), self.workdir / "unpacked" / name)

    def udocker(self) -> Udocker:
        if self._udocker is None:
            try:
                self._udocker = ensure_udocker(self.cache)
            except NotAvailable as exc:
                self._udocker = exc
        if isinstance(self._udocker, NotAvailable):
            raise self._udocker
        return self._udocker

    def peers_tried(self) -> set[str]:
        """The PyPI peers this run has asked for (installed or found missing)."""
        tried = {"udocker": self._udocker, "proot-distro": self._proot_distro}
        return {name for name, peer in tried.items() if peer is not None}

    def proot_distro(self) -> ProotDistro:
        """The proot-distro peer (installed on first use); raises NotAvailable without it."""
        if self._proot_distro is None:
            try:
                self._proot_distro = ensure_proot_distro(self.cache)
            except NotAvailable as exc:
                self._proot_distro = exc
        if isinstance(self._proot_distro, NotAvailable):
            raise self._proot_distro
        return self._proot_distro

    def user_dir(self, name: str) -> Path:
        """``workdir/name`` for the sides that run as :func:`bench_user`: owned by that user
        (and the work dir made traversable for it) when the harness runs as root. Raises
        NotAvailable when that user does not exist."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        user = bench_user()
        if user is not None:
            import pwd

            try:
                entry = pwd.getpwnam(user)
            except KeyError as exc:
                raise NotAvailable(f"no user {user} to run the native backend as (set "
                                   "OPENCONTAINER_BENCH_USER)") from exc
            self.workdir.chmod(0o711)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def user_env(self, home: Path, runtime: str) -> dict[str, str]:
        """:meth:`oc_env` for a side of ``OPENCONTAINER_RUNTIME=runtime`` run as
        :func:`bench_user`: without root's per-user directories (XDG_*, TMPDIR)."""
        env = self.oc_env(home)
        if bench_user() is not None:
            for key in [k for k in env if k.startswith("XDG_") or k == "TMPDIR"]:
                del env[key]
        env["OPENCONTAINER_RUNTIME"] = runtime
        return env

    def fresh_dir(self, name: str) -> Path:
        """An empty directory ``workdir/name`` (an old one is moved into the trash first)."""
        path = self.workdir / name
        self.trash.discard(path)
        path.mkdir(parents=True)
        return path

    def discard(self, *paths: Path) -> None:
        """Move ``paths`` out of the way; they are deleted at the run's end (see trash.py)."""
        for path in paths:
            self.trash.discard(path)

    def oc_env(self, home: Path, proot: Path | None = None) -> dict[str, str]:
        """Environment for our CLI with its own ``OPENCONTAINER_HOME``, on the proot backend."""
        env = dict(os.environ)
        env["OPENCONTAINER_HOME"] = str(home)
        env["PYTHONPATH"] = str(REPO_ROOT) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
        if proot is not None:
            env["OPENCONTAINER_PROOT"] = str(proot)
        # the proot backend, whatever the default: the native sides say so (user_env)
        env["OPENCONTAINER_RUNTIME"] = "proot"
        return env


@contextmanager
def bench_context(repeat: int, quick: bool, keep: bool = False) -> Iterator[BenchContext]:
    """A temp work dir (the registry starts on first use); stop it and clean up afterwards.

    The trash (trees discarded during the run) is emptied at the end even with ``keep``."""
    base = Path(os.environ.get("OPENCONTAINER_BENCH_WORKDIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="oc-bench-", dir=base))
    cache = Path(os.environ.get("OPENCONTAINER_BENCH_CACHE") or (Path.home() / ".cache" /
                                                                 "opencontainer-bench"))
    ctx = BenchContext(workdir=workdir, quick=quick, repeat=repeat, cache=cache)
    try:
        yield ctx
    finally:
        ctx.close()
        ctx.trash.empty()
        if not keep:
            rmtree(workdir)
        else:
            log.info("bench.kept_workdir", path=str(workdir))
