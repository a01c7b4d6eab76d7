"""Scenario 2: a container's root filesystem from a cached (already pulled) image.

- ours: ``opencontainer create --name X IMAGE`` (image already in the store); when the CLI
  command does not exist yet but ``runtime.rootfs.create_rootfs`` does, that function on the
  same unpacked tree the ``cp -a`` side copies;
- ``cp -a`` of the unpacked image tree (the floor: a plain recursive copy);
- ``udocker create`` from its already-pulled image.

After each round a side's new tree is moved into the trash (deleted at the run's end) instead
of being removed: ours by renaming ``$OPENCONTAINER_HOME/data/containers/<name>`` (all that
``opencontainer rm -f`` would delete), udocker by renaming ``containers/<uuid>`` and dropping
its name link (what ``udocker rm`` does to its bookkeeping).
"""

from __future__ import annotations

import importlib

import anyio

from ..context import PROOT_51, BenchContext
from ..core import Metrics, NotAvailable, RowSpec, Side, SideFailed, timed
from ..ours import container_dir, module_missing, oc, run_cmd
from ..udocker import discard_container
from .base import Plan

SCENARIO = "2"


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("multi")
    repo_tag = ctx.repo_tag("multi")
    src = ctx.unpacked("multi")
    home = ctx.workdir / "s2-ours-home"
    env = ctx.oc_env(home)
    udir = ctx.workdir / "s2-udocker"
    notes: list[str] = []
    counter = {"ours": 0, "udocker": 0}

    # untimed set-up: the image in our store and in udocker's
    ours_mode: str | Exception
    if module_missing("opencontainer.cli.containers", "run_create") is None:
        try:
            oc("pull", ref, env=env)
            ours_mode = "cli"
        except (SideFailed, NotAvailable) as exc:
            ours_mode = exc
    else:
        ours_mode = "api"
    udocker_setup: Exception | None = None
    try:
        u = ctx.udocker()
        uenv = u.env(udir / "udocker", PROOT_51, ctx.registry_url, ctx.oc_env(udir))
        run_cmd(u.argv("pull", repo_tag), uenv, what="udocker pull")
    except (SideFailed, NotAvailable) as exc:
        udocker_setup = exc

    def ours() -> Metrics:
        counter["ours"] += 1
        name = f"bench-c{counter['ours']}"
        if isinstance(ours_mode, Exception):
            raise ours_mode
        if ours_mode == "cli":
            return {"t": timed(lambda: oc("create", "--name", name, ref, "true", env=env))}
        reason = module_missing("opencontainer.runtime.rootfs", "create_rootfs")
        if reason:
            raise NotAvailable(reason)
        create_rootfs = importlib.import_module("opencontainer.runtime.rootfs").create_rootfs
        dest = ctx.workdir / "s2-api" / name

        def work() -> None:
            anyio.run(create_rootfs, src, dest, backend="asyncio")

        return {"t": timed(work)}

    def ours_cleanup() -> None:
        ctx.discard(container_dir(home, f"bench-c{counter['ours']}"), ctx.workdir / "s2-api")

    cp_dest = ctx.workdir / "s2-cp" / "rootfs"

    def cp() -> Metrics:
        cp_dest.parent.mkdir(parents=True, exist_ok=True)
        return {"t": timed(lambda: run_cmd(["cp", "-a", str(src), str(cp_dest)], env,
                                           what="cp -a"))}

    def cp_cleanup() -> None:
        ctx.discard(cp_dest)

    def udocker() -> Metrics:
        if udocker_setup is not None:
            raise udocker_setup
        counter["udocker"] += 1
        name = f"s2c{counter['udocker']}"
        return {"t": timed(lambda: run_cmd(u.argv("create", f"--name={name}", repo_tag), uenv,
                                           what="udocker create"))}

    def udocker_cleanup() -> None:
        discard_container(udir / "udocker", f"s2c{counter['udocker']}", ctx.discard)

    if ours_mode == "api":
        notes.append("2: 'opencontainer create' missing; ours = runtime.rootfs.create_rootfs")
    sides = [
        Side("ours", ours, cleanup=ours_cleanup),
        Side("cp -a", cp, cleanup=cp_cleanup),
        Side("udocker", udocker, cleanup=udocker_cleanup),
    ]
    label = "create container from cached image"
    rows = [
        RowSpec(SCENARIO, label, ("ours", "t"), ("cp -a", "t"), "cp -a of unpacked tree"),
        RowSpec(SCENARIO, label, ("ours", "t"), ("udocker", "t"), "udocker create"),
    ]
    return Plan(sides, rows, notes, teardown=lambda: ctx.discard(home, udir, cp_dest.parent))
