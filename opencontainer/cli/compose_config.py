"""``opencontainer config`` (``docker compose config``): parse, resolve and render the model."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ComposeError, ConfigError


def configure_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("services_args", nargs="*", metavar="SERVICE",
                        help="only render these services")
    parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
    parser.add_argument("--services", action="store_true", help="print the service names")
    parser.add_argument("--volumes", action="store_true", help="print the volume names")
    parser.add_argument("--networks", action="store_true", help="print the network names")
    parser.add_argument("--profiles", dest="list_profiles", action="store_true",
                        help="print the profile names")
    parser.add_argument("--images", action="store_true", help="print the image names")
    parser.add_argument("-q", "--quiet", action="store_true", help="only validate")
    parser.add_argument("--no-interpolate", action="store_true",
                        help="do not interpolate environment variables")
    parser.add_argument("-o", "--output", default=None, help="write to FILE")
    parser.add_argument("--variables", action="store_true",
                        help="print the variables used and their defaults")
    parser.add_argument("--hash", default=None, metavar="SERVICE",
                        help="print the config hash of SERVICE ('*' for all)")


def to_yaml(data: Any) -> str:
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    y.width = 4096
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def escape_dollars(data: Any) -> Any:
    """``$`` -> ``$$`` in every string value, so that the output reads back unchanged (by us
    and by docker compose) instead of being interpolated a second time."""
    if isinstance(data, str):
        return data.replace("$", "$$")
    if isinstance(data, dict):
        return {k: escape_dollars(v) for k, v in data.items()}
    if isinstance(data, list):
        return [escape_dollars(v) for v in data]
    return data


def _variables(files: tuple[str, ...]) -> list[tuple[str, bool, str, str]]:
    """(name, required, default, alternate) for each ``${...}`` used in the files."""
    import re

    pat = re.compile(
        r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?+])([^}]*))?\}|\$([_a-zA-Z][_a-zA-Z0-9]*)"
    )
    out: dict[str, tuple[str, bool, str, str]] = {}
    for f in files:
        if f == "-" or not os.path.isfile(f):
            continue
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read().replace("$$", "")
        for m in pat.finditer(text):
            name = m.group(1) or m.group(4)
            op, arg = m.group(2) or "", m.group(3) or ""
            required = "?" in op
            default = arg if "-" in op else ""
            alt = arg if "+" in op else ""
            out.setdefault(name, (name, required, default, alt))
    return [out[k] for k in sorted(out)]


def run_config(args: argparse.Namespace, ctx: Any) -> int:
    from ..compose.cli_options import options_from_args
    from ..compose.loader import load_project

    opts = options_from_args(args, ctx.env, os.getcwd(), interpolate=not args.no_interpolate)
    if args.list_profiles:
        # every profile, whichever are active
        import attrs

        opts = attrs.evolve(opts, profiles=["*"])
    project = load_project(opts)
    lines: list[str] | None = None
    if args.services:
        lines = list(project.service_names)
    elif args.volumes:
        lines = sorted(project.volumes)
    elif args.networks:
        lines = sorted(project.networks)
    elif args.list_profiles:
        profs: set[str] = set()
        for svc in project.services.values():
            profs.update(svc.profiles)
        lines = sorted(profs)
    elif args.images:
        lines = [s.image or f"{project.name}-{s.name}" for s in project.services.values()]
    elif args.hash:
        wanted = list(project.services) if args.hash == "*" else [
            s.strip() for s in args.hash.split(",") if s.strip()]
        lines = []
        for name in wanted:
            if name not in project.services:
                raise ComposeError(f"no such service: {name}")
            lines.append(f"{name} {project.services[name].config_hash()}")
    elif args.variables:
        rows = _variables(project.files)
        lines = ["NAME REQUIRED DEFAULT VALUE ALTERNATE VALUE"]
        lines += [f"{n} {'true' if r else 'false'} {d} {a}".rstrip() for n, r, d, a in rows]
    if args.quiet:
        return 0
    if lines is not None:
        text = "\n".join(lines) + ("\n" if lines else "")
    else:
        data = project.to_dict()
        if not args.no_interpolate:
            data = escape_dollars(data)
        if args.services_args:
            missing = [s for s in args.services_args if s not in project.services]
            if missing:
                raise ComposeError(f"no such service: {missing[0]}")
            from ..compose.graph import with_dependencies

            keep = with_dependencies(project, args.services_args)
            data["services"] = {k: v for k, v in data["services"].items() if k in keep}
        if args.format == "json":
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            text = to_yaml(data)
    if args.output:
        from ..paths import atomic_write

        try:
            atomic_write(Path(args.output), text.encode())
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        return 0
    ctx.stdout.write(text)
    ctx.stdout.flush()
    return 0
