"""Image commands beyond pull/images/rmi: ``tag``, ``push``, ``commit``, ``diff``, ``history``,
``image prune``, ``image inspect``, the ``image`` command group, and ``images --filter``."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Callable
from typing import Any

from ..humanize import human_ago, human_size

SHORT = 12


def _store(ctx: Any) -> Any:
    from ..image.store import ImageStore

    return ImageStore(ctx.paths.store)


# -- tag ---------------------------------------------------------------------------------------
def configure_tag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def run_tag(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import InvalidReference
    from ..image.reference import parse_reference

    target = parse_reference(args.target)
    if target.digest is not None:
        raise InvalidReference(f"refusing to create a tag with a digest reference: {args.target}")
    _store(ctx).tag(args.source, args.target)
    return 0


# -- push --------------------------------------------------------------------------------------
def configure_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="NAME[:TAG]")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    parser.add_argument("-a", "--all-tags", action="store_true",
                        help="push all tags of the repository")
    parser.add_argument("--platform", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--disable-content-trust", action="store_true", help=argparse.SUPPRESS)


def run_push(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..errors import ConfigError, ImageNotFound
    from ..image.push import push
    from ..image.reference import parse_reference

    explicit = parse_reference(args.image, default_tag=False)
    if args.all_tags:
        if explicit.tag or explicit.digest:
            raise ConfigError("a tag cannot be used with --all-tags/-a.")
        refs = sorted(t for rec in _store(ctx).list_images() for t in rec.repo_tags
                      if parse_reference(t).repository == explicit.repository)
        if not refs:
            raise ImageNotFound(
                f"an image does not exist locally with the tag: {explicit.familiar_name()}"
            )
    else:
        if explicit.tag is None and explicit.digest is None and not args.quiet:
            ctx.out("Using default tag: latest")
        refs = [str(parse_reference(args.image))]
    if not args.quiet:
        ctx.out(f"The push refers to repository [{explicit.familiar_name()}]")
    last: dict[str, str] = {}

    def progress(short: str, status: str) -> None:
        if args.quiet or status.startswith("Pushing ") or last.get(short) == status:
            return
        last[short] = status
        ctx.out(f"{short}: {status}")

    for ref in refs:
        async def main(ref: str = ref) -> Any:
            return await push(ref, paths=ctx.paths, env=ctx.env, progress=progress)

        result = anyio.run(main, backend="asyncio")
        if args.quiet:
            ctx.out(parse_reference(ref).familiar())
        else:
            ctx.out(f"{result.tag}: digest: {result.digest} size: {result.size}")
    return 0


# -- commit / diff -----------------------------------------------------------------------------
def _container(ctx: Any, name: str) -> Any:
    from ..image.commit import Container
    from .containers import _one, _spec_and_root

    spec, _root = _spec_and_root(_one(ctx, name))
    return Container.from_spec(spec)


def configure_commit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("reference", nargs="?", default=None, metavar="REPOSITORY[:TAG]")
    parser.add_argument("-a", "--author", default="", help='author (e.g. "Jane <j@x.org>")')
    parser.add_argument("-c", "--change", action="append", default=[],
                        help="apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, "
                             "LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL)")
    parser.add_argument("-m", "--message", default="", help="commit message")
    parser.add_argument("-p", "--pause", action=argparse.BooleanOptionalAction, default=True,
                        help="(accepted; the container is not paused)")


def run_commit(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..errors import InvalidReference
    from ..image.commit import commit
    from ..image.reference import parse_reference

    if args.reference is not None and parse_reference(args.reference).digest is not None:
        raise InvalidReference(f"cannot commit to a digest reference: {args.reference}")
    container = _container(ctx, args.container)

    async def main() -> Any:
        return await commit(container, args.reference, paths=ctx.paths, changes=args.change,
                            message=args.message, author=args.author)

    rec = anyio.run(main, backend="asyncio")
    ctx.out(rec.config_digest)
    return 0


def configure_diff(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")


def run_diff(args: argparse.Namespace, ctx: Any) -> int:
    from ..image.commit import changes_of, diff_lines

    container = _container(ctx, args.container)
    for line in diff_lines(changes_of(_store(ctx), container)):
        ctx.out(line)
    return 0


# -- history -----------------------------------------------------------------------------------
def configure_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("-H", "--human", action=argparse.BooleanOptionalAction, default=True,
                        help="sizes and dates in human readable format (default true)")
    parser.add_argument("--format", default=None, help="table (default) or json")
    parser.add_argument("--platform", default=None, help=argparse.SUPPRESS)


def history_rows(rec: Any, store: Any) -> list[dict[str, Any]]:
    """Newest first, as docker: the image's ID on the top row, ``<missing>`` below."""
    config = json.loads(store.read_blob(rec.config_digest))
    history = list(config.get("history") or [])
    layers = list(rec.layers)
    if not history:  # an image without history: one row per layer
        history = [{"created": config.get("created")} for _ in layers] or [
            {"created": config.get("created")}]
    rows: list[dict[str, Any]] = []
    li = 0
    for entry in history:
        size = 0
        if not entry.get("empty_layer"):
            if li < len(layers):
                size = int(layers[li].size)
            li += 1
        rows.append({
            "ID": "<missing>",
            "CreatedAt": entry.get("created") or "",
            "CreatedSince": human_ago(entry.get("created")),
            "CreatedBy": entry.get("created_by") or "",
            "Size": size,
            "Comment": entry.get("comment") or "",
        })
    rows.reverse()
    rows[0]["ID"] = rec.config_digest
    return rows


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_history(args: argparse.Namespace, ctx: Any) -> int:
    from ..errors import ConfigError

    store = _store(ctx)
    rec = store.resolve(args.image)
    rows = history_rows(rec, store)

    def image_id(row: dict[str, Any]) -> str:
        ident = str(row["ID"])
        if ident == "<missing>" or args.no_trunc:
            return ident
        return ident.split(":", 1)[1][:SHORT]

    if args.quiet:
        for row in rows:
            ctx.out(image_id(row))
        return 0
    if args.format == "json" or (args.format or "").strip() == "{{json .}}":
        for row in rows:
            ctx.out(json.dumps({**row, "ID": image_id(row), "Size": human_size(row["Size"])},
                               sort_keys=True))
        return 0
    if args.format not in (None, "table"):
        raise ConfigError(f"unsupported --format {args.format!r}: use table or json.")
    table = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for row in rows:
        created_by = " ".join(str(row["CreatedBy"]).split()) if not args.no_trunc \
            else str(row["CreatedBy"])
        table.append([
            image_id(row),
            row["CreatedSince"] if args.human else row["CreatedAt"],
            created_by if args.no_trunc else _ellipsis(created_by, 45),
            human_size(row["Size"]) if args.human else str(row["Size"]),
            row["Comment"],
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        ctx.out("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


# -- images --filter ---------------------------------------------------------------------------
FILTER_KEYS = ("dangling", "reference", "before", "since", "label")


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    from ..errors import ConfigError

    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTER_KEYS:
            raise ConfigError(f"invalid filter {item!r}: use " +
                              ", ".join(f"{k}=…" for k in FILTER_KEYS) + ".")
        out.setdefault(key, []).append(value)
    for value in out.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"invalid filter 'dangling={value}': use true or false.")
    return out


def _created(rec: Any) -> str:
    return str(rec.created or "")


def filter_images(records: list[Any], filters: dict[str, list[str]], store: Any) -> list[Any]:
    """Docker's ``images --filter`` (each key: any of its values; all keys must hold)."""
    from ..image.reference import parse_reference

    checks: list[Callable[[Any], bool]] = []

    def dangling(want: bool) -> Callable[[Any], bool]:
        return lambda r: (not r.repo_tags) == want

    def created(pivot: str, older: bool) -> Callable[[Any], bool]:
        def check(r: Any) -> bool:
            mine = _created(r)
            return bool(mine) and (mine < pivot if older else mine > pivot)
        return check

    def label(key: str, value: str | None) -> Callable[[Any], bool]:
        def check(r: Any) -> bool:
            labels = r.config.labels
            return key in labels and (value is None or labels[key] == value)
        return check

    for value in filters.get("dangling", []):
        checks.append(dangling(value.lower() in ("true", "1")))
    for key, older in (("before", True), ("since", False)):
        for value in filters.get(key, []):
            checks.append(created(_created(store.resolve(value)), older))
    for value in filters.get("label", []):
        k, sep, v = value.partition("=")
        checks.append(label(k, v if sep else None))
    out = [r for r in records if all(check(r) for check in checks)]
    refs = filters.get("reference", [])
    if refs:  # only the matching tags of an image are listed
        import attrs

        def matches(tagged: str) -> bool:
            p = parse_reference(tagged)
            names = (p.familiar_name(), p.familiar(), p.repository, str(p))
            return any(fnmatch.fnmatchcase(n, pat) for pat in refs for n in names)

        out = [attrs.evolve(r, repo_tags=tuple(t for t in r.repo_tags if matches(t)))
               for r in out if any(matches(t) for t in r.repo_tags)]
    return out


# -- image prune -------------------------------------------------------------------------------
def configure_image_prune(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true",
                        help="remove all images not used by a container, not only dangling ones")
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt")
    parser.add_argument("--filter", action="append", default=[], help="label=… (accepted)")


def run_image_prune(args: argparse.Namespace, ctx: Any) -> int:
    store = _store(ctx)
    if not args.force:
        what = ("all images without at least one container associated to them" if args.all
                else "all dangling images")
        ctx.stdout.write(f"WARNING! This will remove {what}.\n"
                         "Are you sure you want to continue? [y/N] ")
        ctx.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    records = store.list_images()
    if args.filter:
        records = filter_images(records, parse_filters(
            [f for f in args.filter if f.startswith("label")]), store)
    from ..build.cache import BuildCache

    # build steps' images are the build cache's (``builder prune`` removes them); a result the
    # cache still refers to leaves the list (hidden, untagged) but stays for the cache
    cached = BuildCache(store).images()
    done: list[str] = []
    reclaimed = 0
    for rec in records:
        if rec.intermediate:
            continue
        if rec.repo_tags and not args.all:
            continue
        if store.rootfs_users(rec.rootfs):
            continue
        if rec.digest in cached:
            done += store.set_intermediate(rec.digest, True)
            done.append(f"deleted: {rec.config_digest}")
            continue
        if any(o.digest != rec.digest and o.config_digest == rec.config_digest
               for o in store.list_images()):
            reclaimed -= rec.size  # the tree stays for the other record
        done += store.forget(rec.digest)
        reclaimed += rec.size
    if done:
        store.gc()
        ctx.out("Deleted Images:")
        for line in done:
            ctx.out(line)
        ctx.out("")
    ctx.out(f"Total reclaimed space: {human_size(max(0, reclaimed))}")
    return 0


# -- image inspect -----------------------------------------------------------------------------
def configure_image_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--format", default=None, help="format with a template")
    parser.add_argument("names", nargs="+", metavar="IMAGE")


def run_image_inspect(args: argparse.Namespace, ctx: Any) -> int:
    from .containers import run_inspect

    args.type = "image"
    args.size = False
    return run_inspect(args, ctx)


__all__ = ["filter_images", "history_rows", "parse_filters"]
