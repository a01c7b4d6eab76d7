"""``compose build`` and the builds ``up``/``create``/``run`` do (``--build``, ``--no-build``,
and what is missing), from the services' ``build:`` sections."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BuildError, ComposeError, ImageNotFound


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in value or ():
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def image_of(project: Any, svc: Any) -> str:
    from ..engine.adapter import built_image_name

    return str(svc.image or built_image_name(project.name, svc.name))


def build_options(project: Any, svc: Any, env: Mapping[str, str], *, no_cache: bool = False,
                  pull: bool = False) -> Any:
    """The service's ``build:`` as :class:`~opencontainer.build.executor.BuildOptions`."""
    from ..build.executor import BuildOptions

    spec = dict(svc.build or {})
    base = Path(project.working_dir or ".")
    context = Path(str(spec.get("context") or base))
    if not context.is_absolute():
        context = base / context
    if "://" in str(spec.get("context") or "") or str(spec.get("context", "")).startswith(
            "git@"):
        raise ComposeError(f"service {svc.name}: a remote build context "
                           f"({spec['context']}) is not supported; clone it and use a path.")
    dockerfile = None
    if spec.get("dockerfile"):
        dockerfile = Path(str(spec["dockerfile"]))
        if not dockerfile.is_absolute():
            dockerfile = context / dockerfile
    args: dict[str, str] = {}
    for k, v in dict(spec.get("args") or {}).items():
        if v is None:
            if k in env:
                args[str(k)] = env[k]
        else:
            args[str(k)] = str(v)
    platforms = list(spec.get("platforms") or ())
    tags = [image_of(project, svc), *[str(t) for t in spec.get("tags") or ()]]
    return BuildOptions(
        context=context, dockerfile=dockerfile,
        text=str(spec["dockerfile_inline"]) if spec.get("dockerfile_inline") else None,
        tags=tuple(dict.fromkeys(tags)), build_args=args,
        target=str(spec["target"]) if spec.get("target") else None,
        no_cache=no_cache or bool(spec.get("no_cache")), pull=pull or bool(spec.get("pull")),
        labels=_labels(spec.get("labels")),
        platform=str(platforms[0]) if platforms else (svc.platform or None))


def _missing(ctx: Any, ref: str) -> bool:
    from ..image.store import ImageStore

    try:
        ImageStore(ctx.paths.store).resolve(ref)
    except ImageNotFound:
        return True
    return False


def build_services(project: Any, names: Sequence[str], ctx: Any, *, force: bool = False,
                   no_build: bool = False, no_cache: bool = False, pull: bool = False,
                   quiet: bool = False) -> list[str]:
    """Build the services among ``names`` that have ``build:`` (all with ``force``, else the
    ones whose image is missing); the images built."""
    import anyio

    from ..build.executor import Builder, Progress, stream_writer

    every = {**project.disabled_services, **project.services}
    built: list[str] = []
    for name in names:
        svc = every.get(name)
        if svc is None or not svc.build:
            continue
        ref = image_of(project, svc)
        if not force and not _missing(ctx, ref):
            continue
        if no_build:
            raise ImageNotFound(f"service {name} has no image {ref} and --no-build forbids "
                                "building it.")
        opts = build_options(project, svc, ctx.env, no_cache=no_cache, pull=pull)
        progress = Progress(None if quiet else stream_writer(ctx.stderr))
        builder = Builder(ctx.paths, ctx.env, opts, progress)
        try:  # a missing or broken Dockerfile: one error line, nothing else
            builder.load()
        except BuildError as exc:
            where = f"{project.files[0]}: " if getattr(project, "files", None) else ""
            raise BuildError(f"{where}service {name}: {exc}") from None
        if not quiet:
            ctx.err(f"[+] Building {name} ({ref})")

        async def main(builder: Builder = builder) -> Any:
            return await builder.build()

        anyio.run(main, backend="asyncio")
        if not quiet:
            ctx.err(f" ✔ Service {name}  Built")
        built.append(ref)
    return built


def configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    parser.add_argument("--pull", action="store_true", help="always pull the FROM images")
    parser.add_argument("-q", "--quiet", action="store_true", help="no build output")
    parser.add_argument("--build-arg", action="append", default=[],
                        help="set a build-time variable for the services (KEY=VALUE)")
    parser.add_argument("services", nargs="*", metavar="SERVICE")


def run_build(args: argparse.Namespace, ctx: Any) -> int:
    import attrs

    from .compose import load_compose

    project = load_compose(args, ctx)
    names = project.check_runnable(list(args.services) or None, deps=False, need_image=False)
    if args.build_arg:
        extra: dict[str, str] = {}
        for item in args.build_arg:
            k, eq, v = item.partition("=")
            if eq:
                extra[k] = v
            elif k in ctx.env:
                extra[k] = ctx.env[k]
        services = {}
        for n, svc in project.services.items():
            if svc.build:
                b = dict(svc.build)
                b["args"] = {**dict(b.get("args") or {}), **extra}
                svc = attrs.evolve(svc, build=b)
            services[n] = svc
        project = attrs.evolve(project, services=services)
    build_services(project, names, ctx, force=True, no_cache=args.no_cache, pull=args.pull,
                   quiet=args.quiet)
    return 0
