"""Scenario 1: pull + unpack of the multi-layer Debian image into a cold store.

- ours: ``opencontainer pull HOST/library/postgres:15`` (the Debian service stand-in) with a
  fresh OPENCONTAINER_HOME;
- ours pull+create: ``opencontainer pull`` + ``opencontainer create --name s1 REF true``, timed
  together, fresh OPENCONTAINER_HOME (the same work as udocker's side);
- skopeo+umoci: ``skopeo copy docker://... oci:DIR:tag`` + ``umoci unpack --rootless``;
- udocker: ``udocker pull`` + ``udocker create`` with a fresh UDOCKER_DIR;
- proot-distro: ``proot-distro install --allow-insecure HOST/library/postgres:15`` with fresh
  XDG_DATA_HOME and XDG_CACHE_HOME (no cached layers): download (digest-checked), extraction
  of every layer into the container's rootfs, its /etc fix-ups; proot is not run
  (``PD_PROOT_BIN`` is Debian's 5.1.0 like ours).

Each side has its own directory, made empty before each round and moved into the trash after
it (deleted at the run's end), so every round starts from a cold store.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from ..context import PROOT_51, BenchContext
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
    dirs = {"ours": ctx.workdir / "s1-ours", "ours-create": ctx.workdir / "s1-ours-create",
            "skopeo": ctx.workdir / "s1-skopeo", "udocker": ctx.workdir / "s1-udocker",
            "proot-distro": ctx.workdir / "s1-proot-distro"}

    def fresh(key: str) -> None:
        ctx.fresh_dir(dirs[key].name)

    def ours() -> Metrics:
        require_cli("pull")
        env = ctx.oc_env(dirs["ours"] / "home")
        return {"t": timed(lambda: oc("pull", ref, env=env))}

    def ours_create() -> Metrics:
        require_cli("pull", "create")
        env = ctx.oc_env(dirs["ours-create"] / "home")

        def work() -> None:
            oc("pull", ref, env=env)
            oc("create", "--name", "s1", ref, "true", env=env)

        return {"t": timed(work)}

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

    def proot_distro() -> Metrics:
        pd = ctx.proot_distro()
        d = dirs["proot-distro"]
        env = pd.env(d, PROOT_51, ctx.oc_env(d))
        argv = pd.argv("install", "--allow-insecure", ref)
        return {"t": timed(lambda: run_cmd(argv, env, what="proot-distro install"))}

    def side(name: str, key: str, measure: Callable[[], Metrics]) -> Side:
        return Side(name, measure, prepare=lambda: fresh(key),
                    cleanup=lambda: ctx.discard(dirs[key]))

    sides = [
        side("ours", "ours", ours),
        side("skopeo+umoci", "skopeo", skopeo),
        side("udocker", "udocker", udocker),
        side("ours pull+create", "ours-create", ours_create),
        side("proot-distro", "proot-distro", proot_distro),
    ]
    image_text = f"{size_mb:.0f} MB {len(image.layers)}-layer image (cold)"
    label = f"pull+unpack {image_text}"
    rows = [
        RowSpec(SCENARIO, label, ("ours", "t"), ("skopeo+umoci", "t"), "skopeo+umoci"),
        RowSpec(SCENARIO, label, ("ours", "t"), ("udocker", "t"), "udocker pull+create"),
        RowSpec(SCENARIO, f"pull+create {image_text}, ours vs udocker pull+create",
                ("ours pull+create", "t"), ("udocker", "t"), "udocker pull+create"),
        RowSpec(SCENARIO, f"pull+create {image_text}, ours vs proot-distro install",
                ("ours pull+create", "t"), ("proot-distro", "t"), "proot-distro install"),
    ]
    notes = [f"1: image {ref} (Debian service stand-in): {size_mb:.1f} MB compressed, "
             f"{len(image.layers)} layers",
             "1: proot-distro install = download + extraction into the container's rootfs "
             "(no proot run); fresh XDG_DATA_HOME and XDG_CACHE_HOME each round"]
    return Plan(sides, rows, notes, teardown=lambda: ctx.discard(*dirs.values()))
