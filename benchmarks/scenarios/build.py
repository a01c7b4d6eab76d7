"""Scenario 9: Dockerfile build — cold (``--no-cache``) and a no-change rebuild, ours vs
``proot-distro build`` of the same Dockerfile and context.

- the Dockerfile: ``FROM HOST/library/busybox:latest``, ARG/ENV/WORKDIR, COPY of a small source
  tree, three RUN steps (files written, a loop, a listing), a second COPY, LABEL and CMD;
- the base image is in each side's store before timing: ours ``pull``s it; proot-distro is
  given it through its local cache (``install --allow-insecure HOST/library/busybox:latest``
  once, which leaves the manifest and layer blobs in ``$XDG_CACHE_HOME/proot-distro``; its
  ``build`` refuses plain-HTTP registries for FROM, and a cached image is used offline);
- cold: ``build --no-cache -t bench/app:1 CTX`` (every step runs; the base image is cached);
- rebuild: the same build with the cache, after an untimed one that fills it: nothing changed,
  so every step is reused;
- both run RUN steps with Debian's proot 5.1.0 (``OPENCONTAINER_PROOT`` / ``PD_PROOT_BIN``).

Targets (issue 16): ours <= 0.75x proot-distro cold; ours' rebuild <= 0.5 s.
"""

from __future__ import annotations

from pathlib import Path

from ..context import PROOT_51, BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import module_missing, oc, run_cmd
from .base import Plan

SCENARIO = "9"
TAG = "bench/app:1"
COLD_RATIO = 0.75
REBUILD_S = 0.5

DOCKERFILE = """\
FROM {base}
ARG GREETING=hello
ENV APP_HOME=/app LANG=C.UTF-8
WORKDIR /app
COPY src/ ./src/
RUN mkdir -p /app/out && for f in src/*.txt; do wc -c "$f" >> /app/out/sizes; done
RUN i=0; while [ $i -lt 50 ]; do echo "$GREETING $i" > /app/out/line$i; i=$((i+1)); done
RUN ls -la /app/out > /app/out/listing && cat /app/out/sizes > /dev/null
COPY config.ini /etc/app/config.ini
LABEL org.example.bench=build
CMD ["sh", "-c", "cat /app/out/listing"]
"""


def make_context(root: Path, base: str) -> Path:
    """The build context: the Dockerfile, 40 small source files and a config file."""
    ctx = root / "ctx"
    (ctx / "src").mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    for i in range(40):
        (ctx / "src" / f"file{i:02d}.txt").write_text(f"source file {i}\n" * (i + 1))
    (ctx / "config.ini").write_text("[app]\nname = bench\n")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    return ctx


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    home = ctx.workdir / "s9-ours-home"
    env = ctx.oc_env(home, PROOT_51)
    pdir = ctx.workdir / "s9-proot-distro"
    build_ctx = make_context(ctx.workdir / "s9-context", ref)

    setup: dict[str, Exception | None] = {"ours": None, "proot-distro": None}
    reason = module_missing("opencontainer.cli.build", "run_build")
    if reason:
        setup["ours"] = NotAvailable(reason)
    else:
        try:
            oc("pull", ref, env=env)
        except (SideFailed, NotAvailable) as exc:
            setup["ours"] = exc
    try:
        pd = ctx.proot_distro()
        penv = pd.env(pdir, PROOT_51, ctx.oc_env(pdir))
        # fills its local cache with the base image (manifest + layers): build uses it offline
        run_cmd(pd.argv("install", "--allow-insecure", ref), penv, what="proot-distro install")
    except (SideFailed, NotAvailable) as exc:
        setup["proot-distro"] = exc

    def ours() -> Metrics:
        if setup["ours"] is not None:
            raise setup["ours"]
        build = ("build", "-q", "-t", TAG, str(build_ctx))
        cold = timed(lambda: oc(build[0], "--no-cache", *build[1:], env=env))
        oc(*build, env=env)  # fills the cache, whatever --no-cache left in it
        rebuild = timed(lambda: oc(*build, env=env))
        return {"cold": cold, "rebuild": rebuild}

    def proot_distro() -> Metrics:
        if setup["proot-distro"] is not None:
            raise setup["proot-distro"]
        argv = pd.argv("build", "-q", "-t", TAG, str(build_ctx))
        cold_argv = pd.argv("build", "--no-cache", "-q", "-t", TAG, str(build_ctx))
        cold = timed(lambda: run_cmd(cold_argv, penv, what="proot-distro build --no-cache"))
        run_cmd(argv, penv, what="proot-distro build")
        rebuild = timed(lambda: run_cmd(argv, penv, what="proot-distro build"))
        return {"cold": cold, "rebuild": rebuild}

    sides = [Side("ours", ours), Side("proot-distro", proot_distro)]
    rows = [
        RowSpec(SCENARIO, "build, cold (--no-cache; base image cached)", ("ours", "cold"),
                ("proot-distro", "cold"), "proot-distro build --no-cache",
                target_max=COLD_RATIO, target_ratio=True),
        RowSpec(SCENARIO, "build, no-change rebuild (every step cached)", ("ours", "rebuild"),
                ("proot-distro", "rebuild"), "proot-distro build (cached)",
                target_max=REBUILD_S),
    ]
    notes = ["9: proot-distro gets the base image from its local cache (installed once before "
             "timing; its build refuses plain-HTTP registries for FROM); both sides run RUN "
             "steps with proot 5.1.0; cold = --no-cache on both sides"]
    return Plan(sides, rows, notes, teardown=lambda: ctx.discard(home, pdir))
