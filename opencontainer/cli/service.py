"""``opencontainer system service``: serve the Docker Engine API on a Unix socket, so that the
docker CLI, the docker SDKs, docker-compose and testcontainers drive OpenContainer
(``DOCKER_HOST=unix://...``)."""

from __future__ import annotations

import argparse
from typing import Any


def configure_service(svc: argparse.ArgumentParser) -> None:
    svc.add_argument("-t", "--time", type=float, default=0.0, metavar="SECONDS",
                     help="end after SECONDS without a request (default 0: never)")
    svc.add_argument("--print-docker-host", action="store_true",
                     help="print the DOCKER_HOST line to export, and exit")
    svc.add_argument("address", nargs="?", default=None, metavar="unix:///PATH.sock",
                     help="where to listen (default $XDG_RUNTIME_DIR/opencontainer/docker.sock)")


def run_service(args: argparse.Namespace, ctx: Any) -> int:
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
