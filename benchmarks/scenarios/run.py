"""Scenario 3: ``run --rm busybox true`` round trip (create + start + wait + remove).

- ours: ``opencontainer run --rm HOST/library/busybox:latest true`` (image cached);
- udocker: ``udocker run --rm --nobanner library/busybox:latest /bin/true`` (same work: a new
  container from the cached image, run, removed), both on Debian's proot 5.1.0;
- proot-distro: ``proot-distro login busybox -- /bin/true`` in a container installed once
  before timing (``install --allow-insecure HOST/library/busybox:latest``), ``PD_PROOT_BIN`` =
  the same proot 5.1.0. Less work than ours: no container is made or removed per run.

- ours, native backend: the same ``opencontainer run --rm`` with ``OPENCONTAINER_RUNTIME=native``
  (user, mount, UTS and PID namespaces, no proot), as an unprivileged user: the harness's own
  user, or ``OPENCONTAINER_BENCH_USER`` (default ``ocuser``, switched to by the forked child,
  not ``runuser``: see ours.user_switch) when it runs as root, because the native backend maps
  the user's subordinate ids.

Targets: ours (proot) <= 1.0x proot-distro login (issue 12); ours native <= 0.8x proot-distro
login (issue 13).
"""

from __future__ import annotations

from ..context import PROOT_51, BenchContext, bench_user
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import module_missing, oc, oc_as, run_cmd
from .base import Plan

SCENARIO = "3"
PD_NAME = "busybox"  # proot-distro names the container after the image


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("busybox")
    repo_tag = ctx.repo_tag("busybox")
    home = ctx.workdir / "s3-ours-home"
    env = ctx.oc_env(home, PROOT_51)
    udir = ctx.workdir / "s3-udocker"
    pdir = ctx.workdir / "s3-proot-distro"

    user = bench_user()
    setup: dict[str, Exception | None] = {"ours": None, "udocker": None, "proot-distro": None,
                                          "native": None}
    nenv: dict[str, str] = {}
    reason = module_missing("opencontainer.cli.containers", "run_run")
    if reason:
        setup["ours"] = setup["native"] = NotAvailable(reason)
    else:
        try:
            oc("pull", ref, env=env)
        except (SideFailed, NotAvailable) as exc:
            setup["ours"] = exc
        try:
            nenv = ctx.user_env(ctx.user_dir("s3-native-home"), "native")
            oc_as(user, "pull", ref, env=nenv)
        except (SideFailed, NotAvailable) as exc:
            setup["native"] = exc
    try:
        u = ctx.udocker()
        uenv = u.env(udir / "udocker", PROOT_51, ctx.registry_url, ctx.oc_env(udir))
        run_cmd(u.argv("pull", repo_tag), uenv, what="udocker pull")
    except (SideFailed, NotAvailable) as exc:
        setup["udocker"] = exc
    try:
        pd = ctx.proot_distro()
        penv = pd.env(pdir, PROOT_51, ctx.oc_env(pdir))
        run_cmd(pd.argv("install", "--allow-insecure", ref), penv, what="proot-distro install")
    except (SideFailed, NotAvailable) as exc:
        setup["proot-distro"] = exc

    def ours() -> Metrics:
        if setup["ours"] is not None:
            raise setup["ours"]
        return {"t": timed(lambda: oc("run", "--rm", ref, "true", env=env))}

    def native() -> Metrics:
        if setup["native"] is not None:
            raise setup["native"]
        return {"t": timed(lambda: oc_as(user, "run", "--rm", ref, "true", env=nenv))}

    def udocker() -> Metrics:
        if setup["udocker"] is not None:
            raise setup["udocker"]
        argv = u.argv("run", "--rm", "--nobanner", repo_tag, "/bin/true")
        return {"t": timed(lambda: run_cmd(argv, uenv, what="udocker run"))}

    def proot_distro() -> Metrics:
        if setup["proot-distro"] is not None:
            raise setup["proot-distro"]
        argv = pd.argv("login", PD_NAME, "--", "/bin/true")
        return {"t": timed(lambda: run_cmd(argv, penv, what="proot-distro login"))}

    sides = [Side("ours", ours), Side("native", native), Side("udocker", udocker),
             Side("proot-distro", proot_distro)]
    rows = [
        RowSpec(SCENARIO, "run --rm busybox true", ("ours", "t"), ("udocker", "t"),
                "udocker run --rm"),
        RowSpec(SCENARIO, "run --rm busybox true", ("ours", "t"), ("proot-distro", "t"),
                "proot-distro login (installed)", target_max=1.0, target_ratio=True),
        RowSpec(SCENARIO, "run --rm busybox true, native backend", ("native", "t"),
                ("proot-distro", "t"), "proot-distro login (installed)", target_max=0.8,
                target_ratio=True),
        RowSpec(SCENARIO, "run --rm busybox true, native backend", ("native", "t"),
                ("ours", "t"), "ours, proot 5.1.0"),
    ]
    notes = ["3: proot-distro login busybox -- /bin/true runs in a container installed before "
             "timing (no create/remove per run); proot 5.1.0 (PD_PROOT_BIN) like ours",
             "3: native backend as " + (f"user {user}" if user else "this user")]
    return Plan(sides, rows, notes, teardown=lambda: ctx.discard(home, udir, pdir,
                                                           ctx.workdir / "s3-native-home"))
