"""A new volume is filled with the image's content at the mount point -- found inside the
image's tree, never by following the image's symlinks onto the host's files.

The hostile image has ``/x -> <host dir>`` (absolute) and ``/y -> ../../…/<host dir>``; a
volume at ``/x/sub`` or ``/y/sub`` used to get a copy of the host's ``<host dir>/sub``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opencontainer.compose.loader import LoadOptions, load_project
from opencontainer.engine.engine import to_model
from opencontainer.engine.model import ProjectModel
from opencontainer.engine.state import ProjectState
from opencontainer.engine.volumes import resolve_mounts
from opencontainer.runtime.overlay import Layers
from opencontainer.runtime.rootfs import resolve_in_rootfs, seed_volume
from tests.fixtures.images import HOSTILE_SEED, hostile_entries

SECRET = "the user's private key\n"

COMPOSE = """
services:
  s:
    image: {image}
    command: [sleep, "600"]
    volumes: ["abs:/x/sub", "rel:/y/sub", "dots:/../../{dots}/sub", "fair:/z/sub"]
volumes:
  abs: {{}}
  rel: {{}}
  dots: {{}}
  fair: {{}}
"""


def host_secret(tmp_path: Path) -> Path:
    """A host directory ``<tmp>/home-me`` with ``sub/id_rsa`` (what must never be copied)."""
    home = tmp_path / "home-me"
    (home / "sub").mkdir(parents=True)
    (home / "sub" / "id_rsa").write_text(SECRET)
    return home


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, p.read_bytes() if p.is_file() else None)
    return out


def hostile_tree(root: Path, host_dir: Path) -> Path:
    """The hostile image's links and seed, written as a plain tree (no busybox)."""
    root.mkdir(parents=True)
    (root / "x").symlink_to(host_dir)
    (root / "y").symlink_to("../" * 40 + str(host_dir).lstrip("/"))
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "sub" / "seed").write_text(HOSTILE_SEED)
    (root / "z").symlink_to("/real")
    return root


def load(proj: Path, image: str, dots: str) -> ProjectModel:
    proj.mkdir(exist_ok=True)
    (proj / "compose.yaml").write_text(COMPOSE.format(image=image, dots=dots))
    project = load_project(LoadOptions(files=(str(proj / "compose.yaml"),),
                                       env={"HOME": str(proj)}))
    return to_model(project, {})


def test_resolve_in_rootfs_keeps_absolute_and_relative_links_inside(tmp_path: Path) -> None:
    host = host_secret(tmp_path)
    root = hostile_tree(tmp_path / "image", host)
    inside = root.joinpath(*host.parts[1:])
    assert resolve_in_rootfs(root, "/x/sub") == inside / "sub"
    assert resolve_in_rootfs(root, "/y/sub") == inside / "sub"
    assert resolve_in_rootfs(root, "/z/sub") == root / "real" / "sub"
    # an overlay root: the image tree is the lower layer
    layers = Layers((tmp_path / "upper", root))
    (tmp_path / "upper").mkdir()
    assert resolve_in_rootfs(layers, "/x/sub") == tmp_path / "upper" / inside.relative_to(root) \
        / "sub"


def test_seeding_never_copies_host_files(tmp_path: Path) -> None:
    host = host_secret(tmp_path)
    before = snapshot(host)
    root = hostile_tree(tmp_path / "image", host)
    dots = "/../../.." + str(host)
    for target in ("/x/sub", "/y/sub", dots + "/sub", "/x", "/y"):
        vol = tmp_path / "vol" / target.replace("/", "_")
        vol.mkdir(parents=True)
        assert not seed_volume(vol, root, target)
        assert list(vol.iterdir()) == [], target
    fair = tmp_path / "vol" / "fair"
    fair.mkdir()
    assert seed_volume(fair, root, "/z/sub")  # a link inside the image is followed inside
    assert (fair / "seed").read_text() == HOSTILE_SEED
    assert snapshot(host) == before


def test_seeding_skips_special_files_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "image"
    (root / "data").mkdir(parents=True)
    (root / "data" / "f").write_text("f\n")
    os.mkfifo(root / "data" / "fifo")  # would block a plain copy forever
    (root / "data" / "link").symlink_to("/etc/shadow")  # copied as a link, not followed
    (root / "loop").symlink_to("/loop")
    vol = tmp_path / "vol"
    vol.mkdir()
    assert seed_volume(vol, root, "/data")
    assert sorted(p.name for p in vol.iterdir()) == ["f", "link"]
    assert os.readlink(vol / "link") == "/etc/shadow"
    loop = tmp_path / "loopvol"
    loop.mkdir()
    assert not seed_volume(loop, root, "/loop/x")


def test_compose_named_volumes_are_seeded_inside_the_image(tmp_path: Path) -> None:
    host = host_secret(tmp_path)
    before = snapshot(host)
    root = hostile_tree(tmp_path / "image", host)
    m = load(tmp_path / "proj", "hostile", "../.." + str(host))
    state = ProjectState(tmp_path / "proj" / ".containers")
    mounts = {h.name: h for h in resolve_mounts(m, m.services["s"].volumes, state, "proj-s-1",
                                                 root)}
    for name in ("abs", "rel", "dots"):
        assert list(mounts[name].source.iterdir()) == [], name
    assert (mounts["fair"].source / "seed").read_text() == HOSTILE_SEED
    assert snapshot(host) == before


@pytest.mark.integration
def test_up_with_a_hostile_image_leaves_host_files_alone(  # type: ignore[no-untyped-def]
        oc, oc_env, proot_54: Path, registry, tmp_path: Path) -> None:
    from tests.fixtures.publish import push_custom_image
    from tests.fixtures.push import RegistryClient

    host = host_secret(tmp_path)
    before = snapshot(host)
    info = push_custom_image(RegistryClient(registry.url), registry.host, tmp_path / "build",
                             "oc-test/hostile", "v1", [hostile_entries(str(host))],
                             {"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    proj = tmp_path / "proj"
    load(proj, info.reference, "../.." + str(host))  # writes compose.yaml
    env = {"OPENCONTAINER_PROOT": str(proot_54), "OPENCONTAINER_DISABLE_PLUGINS": "1"}
    try:
        r = oc("up", cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        vols = proj / ".containers" / "volumes"
        for name in ("abs", "rel", "dots"):
            assert (vols / name).is_dir() and list((vols / name).iterdir()) == [], name
        assert (vols / "fair" / "seed").read_text() == HOSTILE_SEED
        r = oc("compose", "exec", "-T", "s", "cat", "/z/sub/seed", cwd=proj, env=env)
        assert r.stdout == HOSTILE_SEED, r.stderr
        r = oc("compose", "exec", "-T", "s", "ls", "-A", "/x/sub", cwd=proj, env=env)
        assert r.returncode == 0 and "id_rsa" not in r.stdout, r.stderr
        # a standalone container's volumes (seeded before its mount points are made)
        r = oc("create", "--name", "lone", "-v", "abs2:/x/sub", "-v", "fair2:/z/sub",
               info.reference, cwd=proj, env=env)
        assert r.returncode == 0, r.stderr
        standalone = Path(oc_env["OPENCONTAINER_HOME"]) / "data" / "volumes"
        assert list((standalone / "abs2").iterdir()) == []
        assert (standalone / "fair2" / "seed").read_text() == HOSTILE_SEED
    finally:
        oc("down", "-t", "1", cwd=proj, env=env, timeout=60)
        oc("rm", "-f", "lone", env=env)
    assert snapshot(host) == before


def test_hostile_image_entries_point_out() -> None:
    entries = {e.path: e for e in hostile_entries("/home/me")}
    assert entries["x"].target == "/home/me"
    assert entries["y"].target.endswith("/home/me") and entries["y"].target.startswith("../")
    assert entries["z"].target == "/real"
