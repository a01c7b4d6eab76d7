"""Image commands: pull, images, rmi, login, logout, load, save, import.

Each command is ``configure_<name>(parser)`` + ``run_<name>(args, ctx) -> int``. Heavy imports
(aiohttp, the image package) happen inside the runners.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..humanize import human_ago, human_size

SHORT = 12


# -- helpers -----------------------------------------------------------------------------------




def _store(ctx: Any) -> Any:
    from ..image.store import ImageStore

    return ImageStore(ctx.paths.store)


class PullProgress:
    """Docker-like per-layer progress: redrawn in place on a TTY, plain lines otherwise."""

    def __init__(self, ctx: Any, ref: Any, *, tty: bool) -> None:
        self.ctx = ctx
        self.ref = ref
        self.tty = tty
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.downloaded = False
        self.drawn = 0
        self.last_draw = 0.0

    def _short(self, digest: str) -> str:
        return digest.split(":", 1)[-1][:SHORT]

    def _set(self, digest: str, text: str, *, plain: bool = True) -> None:
        if digest not in self.lines:
            self.order.append(digest)
        changed = self.lines.get(digest) != text
        self.lines[digest] = text
        if self.tty:
            self._redraw()
        elif plain and changed:
            self.ctx.out(f"{self._short(digest)}: {text}")

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1 and self.drawn == len(self.order):
            return
        self.last_draw = now
        out = self.ctx.stdout
        if self.drawn:
            out.write(f"\x1b[{self.drawn}A")
        for digest in self.order:
            out.write(f"\x1b[2K{self._short(digest)}: {self.lines[digest]}\n")
        self.drawn = len(self.order)
        out.flush()

    def __call__(self, event: Any) -> None:
        from ..engine.events import LayerDone, LayerProgress, PullStarted

        if isinstance(event, PullStarted):
            return
        if isinstance(event, LayerProgress):
            if event.phase == "extracting":
                self._set(event.digest, "Pull complete")
            elif event.done == 0:
                self._set(event.digest, "Pulling fs layer")
            else:
                bar = f"{human_size(event.done)}/{human_size(event.total)}"
                self._set(event.digest, f"Downloading  {bar}", plain=False)
        elif isinstance(event, LayerDone):
            if event.cached:
                self._set(event.digest, "Already exists")
            else:
                self.downloaded = True
                self._set(event.digest, "Download complete")

    def finish(self) -> None:
        if self.tty and self.order:
            self._redraw(force=True)


# -- pull --------------------------------------------------------------------------------------
def configure_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    parser.add_argument("--platform", default=None, help="os/arch[/variant], e.g. linux/arm64")
    parser.add_argument("-a", "--all-tags", action="store_true", help=argparse.SUPPRESS)


def run_pull(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..image.pull import pull
    from ..image.reference import parse_reference

    ref = parse_reference(args.image)
    explicit = parse_reference(args.image, default_tag=False)
    if not args.quiet:
        if explicit.tag is None and explicit.digest is None:
            ctx.out("Using default tag: latest")
        ctx.out(f"{ref.reference}: Pulling from {ref.familiar_name()}")
    tty = bool(getattr(ctx.stdout, "isatty", lambda: False)()) and not args.quiet
    progress = PullProgress(ctx, ref, tty=tty)

    async def main() -> Any:
        return await pull(
            args.image, paths=ctx.paths, platform=args.platform, env=ctx.env,
            quiet=args.quiet, progress=None if args.quiet else progress,
        )

    rec = anyio.run(main, backend="asyncio")
    progress.finish()
    if args.quiet:
        ctx.out(str(ref))
        return 0
    ctx.out(f"Digest: {rec.index_digest or rec.digest}")
    if progress.downloaded:
        ctx.out(f"Status: Downloaded newer image for {ref.familiar()}")
    else:
        ctx.out(f"Status: Image is up to date for {ref.familiar()}")
    ctx.out(str(ref))
    return 0


# -- images ------------------------------------------------------------------------------------
def configure_images(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repository", nargs="?", default=None, metavar="REPOSITORY[:TAG]")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("-a", "--all", action="store_true",
                        help="show all images (by default build intermediates are hidden)")
    parser.add_argument("--digests", action="store_true", help="show digests")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("--format", default="table",
                        help="table (default), json, 'table TEMPLATE' or a Go template")
    parser.add_argument("-f", "--filter", action="append", default=[],
                        help="dangling=true|false, reference=PATTERN, before=IMAGE, "
                             "since=IMAGE, label=KEY[=VALUE]")


def _rows(records: list[Any], want: str | None) -> list[dict[str, Any]]:
    from ..image.reference import parse_reference

    rows = []
    for rec in records:
        names = rec.repo_tags or (None,)
        for tagged in names:
            if tagged:
                r = parse_reference(tagged)
                repo, tag = r.familiar_name(), r.tag or "<none>"
            else:
                first = rec.repo_digests[0] if rec.repo_digests else None
                repo = parse_reference(first).familiar_name() if first else "<none>"
                tag = "<none>"
            if want is not None:
                w = parse_reference(want, default_tag=False)
                if repo != w.familiar_name() or (w.tag and w.tag != tag):
                    continue
            digest = rec.index_digest or rec.digest
            rows.append(
                {
                    "Containers": "N/A",
                    "CreatedAt": rec.created or "",
                    "CreatedSince": human_ago(rec.created),
                    "Digest": digest,
                    "ID": rec.config_digest,
                    "Repository": repo,
                    "Tag": tag,
                    "Size": human_size(rec.size),
                    "VirtualSize": human_size(rec.size),
                }
            )
    return rows


def run_images(args: argparse.Namespace, ctx: Any) -> int:
    store = _store(ctx)
    records = [r for r in store.list_images() if args.all or not r.intermediate]
    if args.filter:
        from .image_ops import filter_images, parse_filters

        records = filter_images(records, parse_filters(args.filter), store)
    rows = _rows(records, args.repository)
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            short = row["ID"] if args.no_trunc else row["ID"].split(":", 1)[1][:SHORT]
            if short not in seen:
                seen.append(short)
                ctx.out(short)
        return 0
    from .format import render

    if args.format != "json" and not args.no_trunc:  # json rows keep the full ID
        for row in rows:
            row["ID"] = row["ID"].split(":", 1)[1][:SHORT]
    table = "{{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if args.digests else "") + \
        "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    ctx.stdout.write(render(args.format, rows, table=table, headers=IMAGE_HEADERS,
                            type_name="ImageContext"))
    ctx.stdout.flush()
    return 0


IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}


# -- rmi ---------------------------------------------------------------------------------------
def configure_rmi(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-f", "--force", action="store_true", help="remove all tags of the image")
    parser.add_argument("--no-prune", action="store_true", help=argparse.SUPPRESS)


def run_rmi(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ImageError, ImageNotFound

    store = _store(ctx)
    failed = 0
    for name in args.images:
        try:
            for line in store.remove(name, force=args.force):
                ctx.out(line)
        except ImageNotFound:
            ctx.err(f"Error: No such image: {name}")
            failed += 1
        except ImageError as exc:  # e.g. a container still uses the image: go on with the rest
            ctx.err(f"Error: {exc}")
            failed += 1
    return 1 if failed else 0


# -- login / logout ----------------------------------------------------------------------------
def configure_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", nargs="?", default=None, metavar="SERVER")
    parser.add_argument("-u", "--username", default=None)
    parser.add_argument("-p", "--password", default=None)
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )


def _server_host(server: str | None) -> str:
    if not server:
        return "docker.io"
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def run_login(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..errors import ConfigError
    from ..image.auth import Authenticator, Credentials, DockerConfig
    from ..image.registries_conf import DOCKER_HUB_ENDPOINT, Endpoint
    from ..image.registries_conf import load as load_conf
    from ..image.registry import check_login

    host = _server_host(args.server)
    username = args.username
    password = args.password
    if args.password_stdin:
        if args.password:
            raise ConfigError("--password and --password-stdin cannot be used together.")
        if not username:
            raise ConfigError("--password-stdin needs --username.")
        password = sys.stdin.read().rstrip("\r\n")
    interactive = sys.stdin.isatty()
    if not username:
        if not interactive:
            raise ConfigError("no username given: use -u USER (and --password-stdin).")
        username = input("Username: ").strip()
    if password is None:
        if not interactive:
            raise ConfigError("no password given: use -p or --password-stdin.")
        import getpass

        password = getpass.getpass("Password: ")
    elif args.password:
        ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not username or not password:
        raise ConfigError("a username and a password are needed to log in.")
    creds = Credentials(username, password)
    real_host = DOCKER_HUB_ENDPOINT if host == "docker.io" else host
    conf = load_conf(ctx.env)
    insecure = any(
        e.insecure and (e.prefix == host or e.location == host) for e in conf.registries
    )
    endpoint = Endpoint(host=real_host, repository="", insecure=insecure)
    auth = Authenticator(None, {real_host: creds})
    anyio.run(check_login, endpoint, auth, backend="asyncio")
    config = DockerConfig.from_env(ctx.env)
    config.store(host, creds)
    ctx.out("Login Succeeded")
    return 0


def configure_logout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", nargs="?", default=None, metavar="SERVER")


def run_logout(args: argparse.Namespace, ctx: Any) -> int:
    from ..image.auth import DockerConfig

    host = _server_host(args.server)
    config = DockerConfig.from_env(ctx.env)
    if config.erase(host):
        ctx.out(f"Removing login credentials for {host}")
    else:
        ctx.out(f"Not logged in to {host}")
    return 0


# -- load / save / import ----------------------------------------------------------------------
def configure_load(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", default=None, help="tar archive (default: stdin)")
    parser.add_argument("-q", "--quiet", action="store_true")


def run_load(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..image.archive import load

    source: Path | None = Path(args.input) if args.input else None

    async def main() -> list[Any]:
        return await load(source, paths=ctx.paths)

    for rec, tag in anyio.run(main, backend="asyncio"):
        if tag:
            ctx.out(f"Loaded image: {tag}")
        else:
            ctx.out(f"Loaded image ID: {rec.config_digest}")
    return 0


def configure_save(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", default=None, help="write to a file, not stdout")
    parser.add_argument("--format", choices=["docker", "oci"], default="docker")


def run_save(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ConfigError
    from ..image.archive import save

    if args.output is None and ctx.stdout.isatty():
        raise ConfigError("refusing to write an archive to a terminal: use -o FILE.")
    if args.output:
        save(args.images, Path(args.output), paths=ctx.paths, fmt=args.format)
    else:
        out = getattr(ctx.stdout, "buffer", None) or sys.stdout.buffer
        save(args.images, out, paths=ctx.paths, fmt=args.format)
    return 0


def configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE|-")
    parser.add_argument("reference", nargs="?", default=None, metavar="REPOSITORY[:TAG]")
    parser.add_argument("-c", "--change", action="append", default=[],
                        help="Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, ...")
    parser.add_argument("-m", "--message", default="", help="commit message")
    parser.add_argument("--platform", default=None)


def run_import(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..image.archive import import_rootfs

    source = None if args.file == "-" else Path(args.file)

    async def main() -> Any:
        return await import_rootfs(
            source, args.reference, paths=ctx.paths, changes=args.change,
            message=args.message, platform=args.platform,
        )

    rec = anyio.run(main, backend="asyncio")
    ctx.out(rec.config_digest)
    return 0


# -- inspect (used by cli/containers.py) -------------------------------------------------------
def image_inspect_dict(rec: Any) -> dict[str, Any]:
    """Docker-like ``docker image inspect`` JSON for an :class:`ImageRecord`."""
    from ..image.reference import parse_reference

    cfg = rec.config
    return {
        "Id": rec.config_digest,
        "RepoTags": [parse_reference(t).familiar() for t in rec.repo_tags],
        "RepoDigests": [parse_reference(d).familiar() for d in rec.repo_digests],
        "Parent": "",
        "Comment": "",
        "Created": rec.created or "",
        "Config": {
            "Env": list(cfg.env),
            "Cmd": list(cfg.cmd) if cfg.cmd is not None else None,
            "Entrypoint": list(cfg.entrypoint) if cfg.entrypoint is not None else None,
            "WorkingDir": cfg.working_dir,
            "User": cfg.user,
            "ExposedPorts": {p: {} for p in cfg.exposed_ports} or None,
            "Volumes": {v: {} for v in cfg.volumes} or None,
            "Labels": dict(cfg.labels) or None,
            "StopSignal": cfg.stop_signal,
            "Healthcheck": cfg.healthcheck,
        },
        "Architecture": cfg.architecture,
        "Variant": cfg.variant,
        "Os": cfg.os,
        "Size": rec.size,
        "RootFS": {"Type": "layers", "Layers": list(cfg.diff_ids)},
        "Metadata": {"LastTagTime": datetime.fromtimestamp(rec.pulled_at, UTC).isoformat()
                     if rec.pulled_at else ""},
        "GraphDriver": {"Name": "opencontainer", "Data": {"RootFS": str(rec.rootfs)}},
    }


__all__ = ["image_inspect_dict"]
