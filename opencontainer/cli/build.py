"""``build`` (docker build / buildx build) and ``builder prune``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def _pairs(items: list[str], flag: str, env: dict[str, str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise ConfigError(f"invalid {flag} {item!r}: KEY=VALUE expected.")
        if not eq:
            if env is None:
                value = ""
            elif key in env:
                value = env[key]
            else:
                continue  # docker: a --build-arg KEY not in the environment is left out
        out[key] = value
    return out


def configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("context", metavar="PATH", help="the build context (a directory)")
    parser.add_argument("-t", "--tag", action="append", default=[],
                        help="name and optionally a tag (name:tag), repeatable")
    parser.add_argument("-f", "--file", default=None,
                        help="the Dockerfile (default: PATH/Dockerfile; - reads stdin)")
    parser.add_argument("--build-arg", action="append", default=[],
                        help="set a build-time variable KEY=VALUE (repeatable)")
    parser.add_argument("--target", default=None, help="the build stage to build")
    parser.add_argument("--platform", default=None, help="the target platform (os/arch)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    parser.add_argument("--pull", action="store_true",
                        help="always pull the FROM images again")
    parser.add_argument("--label", action="append", default=[],
                        help="set a label on the image KEY=VALUE (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no build output; print the image ID on success")
    parser.add_argument("--progress", default="auto", choices=["auto", "plain", "tty", "quiet",
                                                              "rawjson"],
                        help="progress output (plain is what is written in every case)")
    parser.add_argument("--iidfile", default=None, help="write the image ID to this file")
    parser.add_argument("-o", "--output", default=None,
                        help="type=oci,dest=FILE: also write the image as an OCI archive")
    parser.add_argument("--load", action="store_true", help="(accepted: the default)")
    parser.add_argument("--network", default=None, help="(accepted: host networking)")


def options_from(args: argparse.Namespace, ctx: Any, text: str | None, *,
                 filter_here: bool = True) -> Any:
    from ..build.executor import BuildOptions

    context = Path(args.context)
    dockerfile = None
    if args.file and args.file != "-":
        dockerfile = Path(args.file)
        if not dockerfile.is_absolute():
            dockerfile = Path.cwd() / dockerfile
    return BuildOptions(
        context=context.absolute(), dockerfile=dockerfile, text=text, tags=tuple(args.tag),
        build_args=_pairs(args.build_arg, "--build-arg", ctx.env), target=args.target,
        no_cache=args.no_cache, pull=args.pull, labels=_pairs(args.label, "--label"),
        platform=args.platform, quiet=args.quiet, filter_here=filter_here)


def _output(spec: str | None) -> tuple[str, Path] | None:
    if not spec:
        return None
    fields = dict(part.partition("=")[::2] for part in spec.split(","))
    kind = fields.get("type", "")
    if kind not in ("oci", "docker", "tar") or not fields.get("dest"):
        raise ConfigError(f"unsupported --output {spec!r}: type=oci|docker,dest=FILE is what "
                          "is supported.")
    return kind, Path(fields["dest"])


def run_build(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    if args.context == "-":
        raise ConfigError("a build context from stdin is not supported: give a directory.")
    text = sys.stdin.read() if args.file == "-" else None
    output = _output(args.output)
    rec, progress = anyio.run(build_image, args, ctx, text, backend="asyncio")
    if output is not None:
        _save(ctx, rec, *output)
    return finish(args, ctx, rec, progress)


def for_service(args: argparse.Namespace, cwd: str) -> bool:
    """Whether the engine service builds this (cli/engined.py), with the client's relative
    paths made absolute from its working directory ``cwd``: not with the Dockerfile or the
    context on stdin, nor with ``-o`` (written by a command of its own)."""
    if args.context == "-" or args.file == "-" or args.output:
        return False

    def fix(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(cwd, p)

    args.context = fix(args.context)
    if args.file:
        args.file = fix(args.file)
    if args.iidfile:
        args.iidfile = fix(args.iidfile)
    return True


async def build_image(args: argparse.Namespace, ctx: Any, text: str | None, *,
                      filter_here: bool = True, zygotes: Any = None) -> Any:
    """The build itself: (the image record, the progress writer). ``filter_here``: see
    BuildOptions (False in the engine service, which goes on to start containers);
    ``zygotes``: the service's started steps for the RUN steps (engine/zygotes.py)."""
    from ..build.executor import Progress, build, stream_writer

    opts = options_from(args, ctx, text, filter_here=filter_here)
    quiet = args.quiet or args.progress == "quiet"
    progress = Progress(None if quiet else stream_writer(ctx.stderr))
    return await build(ctx.paths, ctx.env, opts, progress=progress, zygotes=zygotes), progress


def finish(args: argparse.Namespace, ctx: Any, rec: Any, progress: Any) -> int:
    """What ``build`` prints and writes once the image is made."""
    from ..build.executor import write_iidfile

    quiet = args.quiet or args.progress == "quiet"
    if args.iidfile:
        write_iidfile(Path(args.iidfile), rec)
    if quiet:
        ctx.out(rec.config_digest)
    else:
        progress.step("exporting to image")
        progress.line(f"#{progress.n} writing image {rec.config_digest} done")
        for tag in args.tag:
            from ..image.reference import parse_reference

            progress.line(f"#{progress.n} naming to {parse_reference(tag)} done")
        progress.line(f"#{progress.n} DONE 0.0s")
    return 0


def _save(ctx: Any, rec: Any, kind: str, dest: Path) -> None:
    """``-o type=oci|docker,dest=FILE``: the image as ``save`` writes it."""
    from . import images

    parser = argparse.ArgumentParser(allow_abbrev=False)
    images.configure_save(parser)
    fmt = "oci" if kind == "oci" else "docker"
    images.run_save(parser.parse_args(["-o", str(dest), "--format", fmt, rec.config_digest]),
                    ctx)


# -- builder -----------------------------------------------------------------------------------
def configure_builder(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    p = sub.add_parser("prune", help="Remove build cache", allow_abbrev=False)
    p.add_argument("-a", "--all", action="store_true", help="(every entry is removed anyway)")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="(accepted)")


def run_builder(args: argparse.Namespace, ctx: Any) -> int:
    from ..build.cache import BuildCache
    from ..humanize import human_size
    from ..image.store import ImageStore

    if args.subcommand != "prune":
        ctx.out("Usage:  opencontainer builder prune [-a] [-f]")
        return 0 if args.subcommand is None else 2
    if not args.force:
        from .volumes import confirm

        if not confirm(ctx, "WARNING! This will remove all dangling build cache."):
            return 0
    count, reclaimed = BuildCache(ImageStore(ctx.paths.store)).prune()
    ctx.out(f"Deleted build cache objects: {count}")
    ctx.out(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
