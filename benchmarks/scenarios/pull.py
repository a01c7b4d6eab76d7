"""Scenario 1: pull + unpack of the multi-layer Debian image into a cold store.

- ours: ``opencontainer pull HOST/library/postgres:15`` (the Debian service stand-in) with a
  fresh OPENCONTAINER_HOME;
- skopeo+umoci: ``skopeo copy docker://... oci:DIR:tag`` + ``umoci unpack --rootless``;
- udocker: ``udocker pull`` + ``udocker create`` with a fresh UDOCKER_DIR.
"""

from __future__ import annotations

import shutil

from ..context import PROOT_51, BenchContext, rmtree
from ..core import Metrics, NotAvailable, RowSpec, Side, timed
from ..ours import oc, require_cli, run_cmd
from .base import Plan

SCENARIO = "1"
TITLE = "pull + unpack"


def plan(ctx: BenchContext) -> Plan:
    ref = ctx.ref("multi")
    image = ctx.image("multi")
    size_mb = image.size / 1e6
    repo_tag = ctx.repo_tag("multi")
    dirs = {"ours": ctx.workdir / "s1-ours", "skopeo": ctx.workdir / "s1-skopeo",
            "udocker": ctx.workdir / "s1-udocker"}

    def fresh(key: str) -> None:
        ctx.fresh_dir(dirs[key].name)

    def ours() -> Metrics:
        require_cli("pull")
        env = ctx.oc_env(dirs["ours"] / "home")
        return {"t": timed(lambda: oc("pull", ref, env=env))}

    def skopeo() -> Metrics:
        if not shutil.which("skopeo") or not shutil.which("umoci"):
            raise NotAvailable("skopeo/umoci not installed")
        d = dirs["skopeo"]
        env = ctx.oc_env(d)

        def work() -> None:
            run_cmd(["skopeo", "copy", "--quiet", f"docker://{ref}", f"oci:{d}/oci:latest",
                     "--src-tls-verify=false"], env, what="skopeo copy")
            run_cmd(["umoci", "unpack", "--rootless", "--image", f"{d}/oci:latest",
                     str(d / "bundle")], env, what="umoci unpack")

        return {"t": timed(work)}

    def udocker() -> Metrics:
        u = ctx.udocker()
        env = u.env(dirs["udocker"] / "udocker", PROOT_51, ctx.registry_url, ctx.oc_env(
            dirs["udocker"]))

        def work() -> None:
            run_cmd(u.argv("pull", repo_tag), env, what="udocker pull")
            run_cmd(u.argv("create", "--name=s1", repo_tag), env, what="udocker create")

        return {"t": timed(work)}

    sides = [
        Side("ours", ours, prepare=lambda: fresh("ours"), cleanup=lambda: rmtree(dirs["ours"])),
        Side("skopeo+umoci", skopeo, prepare=lambda: fresh("skopeo"),
             cleanup=lambda: rmtree(dirs["skopeo"])),
        Side("udocker", udocker, prepare=lambda: fresh("udocker"),
             cleanup=lambda: rmtree(dirs["udocker"])),
    ]
    label = f"pull+unpack {size_mb:.0f} MB {len(image.layers)}-layer image (cold)"
    rows = [
        RowSpec(SCENARIO, label, ("ours", "t"), ("skopeo+umoci", "t"), "skopeo+umoci"),
        RowSpec(SCENARIO, label, ("ours", "t"), ("udocker", "t"), "udocker pull+create"),
    ]
    notes = [f"1: image {ref} (Debian service stand-in): {size_mb:.1f} MB compressed, "
             f"{len(image.layers)} layers"]
    return Plan(sides, rows, notes)
