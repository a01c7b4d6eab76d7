"""Scenario 3: ``run --rm busybox true`` round trip (create + start + wait + remove).

- ours: ``opencontainer run --rm HOST/library/busybox:latest true`` (image cached);
- udocker: ``udocker run --rm --nobanner library/busybox:latest /bin/true`` (same work: a new
  container from the cached image, run, removed), both on Debian's proot 5.1.0.
"""

from __future__ import annotations

from ..context import PROOT_51, BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import module_missing, oc, run_cmd
from .base import Plan

SCENARIO = "3"


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    repo_tag = ctx.repo_tag("busybox")
    home = ctx.workdir / "s3-ours-home"
    env = ctx.oc_env(home, PROOT_51)
    udir = ctx.workdir / "s3-udocker"

    setup: dict[str, Exception | None] = {"ours": None, "udocker": None}
    reason = module_missing("opencontainer.cli.containers", "run_run")
    if reason:
        setup["ours"] = NotAvailable(reason)
    else:
        try:
            oc("pull", ref, env=env)
        except (SideFailed, NotAvailable) as exc:
            setup["ours"] = exc
    try:
        u = ctx.udocker()
        uenv = u.env(udir / "udocker", PROOT_51, ctx.registry_url, ctx.oc_env(udir))
        run_cmd(u.argv("pull", repo_tag), uenv, what="udocker pull")
    except (SideFailed, NotAvailable) as exc:
        setup["udocker"] = exc

    def ours() -> Metrics:
        if setup["ours"] is not None:
            raise setup["ours"]
        return {"t": timed(lambda: oc("run", "--rm", ref, "true", env=env))}

    def udocker() -> Metrics:
        if setup["udocker"] is not None:
            raise setup["udocker"]
        argv = u.argv("run", "--rm", "--nobanner", repo_tag, "/bin/true")
        return {"t": timed(lambda: run_cmd(argv, uenv, what="udocker run"))}

    sides = [Side("ours", ours), Side("udocker", udocker)]
    rows = [RowSpec(SCENARIO, "run --rm busybox true", ("ours", "t"), ("udocker", "t"),
                    "udocker run --rm")]
    return Plan(sides, rows, [], teardown=lambda: ctx.discard(home, udir))
