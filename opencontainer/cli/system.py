"""``opencontainer system``: ``service`` serves the Docker Engine API on a Unix socket, so that
the docker CLI, the docker SDKs, docker-compose and testcontainers drive OpenContainer
(``DOCKER_HOST=unix://...``)."""

from __future__ import annotations

import argparse
from typing import Any


def configure_system(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    sub.required = True
    svc = sub.add_parser("service", help="serve the Docker Engine API on a Unix socket",
                         description="Serve the Docker Engine API (1.24-1.45) on a Unix "
                                     "socket, in the foreground.", allow_abbrev=False)
    svc.add_argument("-t", "--time", type=float, default=0.0, metavar="SECONDS",
                     help="end after SECONDS without a request (default 0: never)")
    svc.add_argument("--print-docker-host", action="store_true",
                     help="print the DOCKER_HOST line to export, and exit")
    svc.add_argument("address", nargs="?", default=None, metavar="unix:///PATH.sock",
                     help="where to listen (default $XDG_RUNTIME_DIR/opencontainer/docker.sock)")


def run_system(args: argparse.Namespace, ctx: Any) -> int:
    from ..api.docker.server import parse_address

    path = parse_address(args.address, ctx.env)
    if args.print_docker_host:
        ctx.out(f"export DOCKER_HOST=unix://{path}")
        return 0
    import asyncio

    from ..api.docker.server import serve

    def ready() -> None:
        ctx.err(f"Serving the Docker Engine API on unix://{path} "
                f"(export DOCKER_HOST=unix://{path})")

    asyncio.run(serve(path, ctx.env, idle=max(args.time, 0.0), ready=ready))
    return 0
