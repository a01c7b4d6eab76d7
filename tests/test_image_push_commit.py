"""tag, push, commit, diff, history, image prune/ls/inspect and images --filter through the real
CLI, against the real registry fixtures (plain, basic auth, token auth) and proot."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0, r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def skopeo_inspect(ref: str, creds: str | None = None) -> dict[str, Any]:
    argv = ["skopeo", "inspect", "--tls-verify=false"]
    if creds:
        argv += ["--creds", creds]
    out = subprocess.run([*argv, f"docker://{ref}"], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def image_json(oc: Any, ref: str) -> dict[str, Any]:
    return dict(json.loads(ok(oc("image", "inspect", ref)))[0])


def rootfs_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def test_tag_filters_history_prune(oc: Any, test_images: Any, tmp_path: Path) -> None:
    ok(oc("pull", "-q", "busybox"))
    ok(oc("tag", "busybox", "mine/bb:1"))
    assert oc("tag", "nope:1", "x:1").returncode == 1
    rows = [json.loads(x) for x in ok(oc("image", "ls", "--format", "json")).splitlines()]
    assert {(r["Repository"], r["Tag"]) for r in rows} == {("busybox", "latest"),
                                                           ("mine/bb", "1")}
    assert len({r["ID"] for r in rows}) == 1

    # two imports a second apart; the second takes x:1 from the first, which becomes dangling
    tar = rootfs_tar(tmp_path / "a.tar", {"hello": b"hi\n"})
    first = ok(oc("import", "-c", "LABEL tier=one", str(tar), "x:1")).strip()
    time.sleep(1.1)
    tar2 = rootfs_tar(tmp_path / "b.tar", {"hello": b"hi again\n"})
    ok(oc("import", "-c", "LABEL tier=two", str(tar2), "x:1"))

    def listed(*filters: str) -> set[str]:
        argv = ["images", "--format", "json"]
        for f in filters:
            argv += ["--filter", f]
        return {f'{r["Repository"]}:{r["Tag"]}'
                for r in map(json.loads, ok(oc(*argv)).splitlines())}

    assert listed("dangling=true") == {"x:<none>"}
    assert listed("dangling=false") == {"busybox:latest", "mine/bb:1", "x:1"}
    assert listed("reference=mine/*") == {"mine/bb:1"}
    assert listed("reference=busybox") == {"busybox:latest"}
    assert listed("label=io.opencontainer.test") == {"busybox:latest", "mine/bb:1"}
    assert listed("label=tier=two") == {"x:1"}
    assert listed("since=busybox", "dangling=false") == {"x:1"}
    assert "busybox:latest" in listed("before=x:1")
    assert "x:1" not in listed("before=x:1")
    assert oc("images", "--filter", "colour=red").returncode == 125 or \
        "invalid filter" in one_error_line(oc("images", "--filter", "colour=red"))

    hist = ok(oc("history", "x:1")).splitlines()
    assert hist[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert "opencontainer import" in hist[1]
    ids = ok(oc("history", "-q", "busybox")).split()
    assert ids[0] == image_json(oc, "busybox")["Id"].split(":")[1][:12]
    assert ok(oc("history", "-q", "--no-trunc", "busybox")).split()[0].startswith("sha256:")

    # prune: without -f nothing happens unless confirmed; -f removes the dangling one only
    r = oc("image", "prune", input="n\n")
    assert "WARNING! This will remove all dangling images." in ok(r)
    assert listed("dangling=true") == {"x:<none>"}
    out = ok(oc("image", "prune", "-f"))
    assert "Deleted Images:" in out and f"deleted: {first}" in out
    assert "Total reclaimed space:" in out
    assert listed("dangling=true") == set()
    assert listed() == {"busybox:latest", "mine/bb:1", "x:1"}
    ok(oc("image", "rm", "mine/bb:1"))
    assert listed() == {"busybox:latest", "x:1"}
    out = ok(oc("image", "prune", "-a", "-f"))
    assert listed() == set()


def test_push_then_pull_back(oc: Any, test_images: Any, registry: Any) -> None:
    src = f"{registry.host}/library/busybox:latest"
    ok(oc("pull", "-q", src))
    dest = f"{registry.host}/pushed/bb:v1"
    ok(oc("tag", src, dest))
    out = ok(oc("push", dest))
    lines = out.splitlines()
    assert lines[0] == f"The push refers to repository [{registry.host}/pushed/bb]"
    # the layer came from library/busybox on the same registry: mounted, not uploaded
    assert any(ln.endswith(": Mounted from library/busybox") for ln in lines), out
    digest = test_images["busybox"].digest
    assert lines[-1].startswith(f"v1: digest: {digest} size: "), out
    info = skopeo_inspect(dest)
    assert info["Digest"] == digest
    assert info["Labels"]["io.opencontainer.test"] == "busybox"
    # again: everything is there already
    assert "Layer already exists" in ok(oc("push", dest))
    # the image now knows where it was pushed
    assert f"{registry.host}/pushed/bb@{digest}" in image_json(oc, dest)["RepoDigests"]
    # pulled back under its new name into an empty store
    ok(oc("rmi", "-f", src))
    assert ok(oc("images", "-q")).strip() == ""
    ok(oc("pull", dest))
    assert image_json(oc, dest)["RepoDigests"] == [f"{registry.host}/pushed/bb@{digest}"]
    # pushing what is not there is one sentence
    r = oc("push", f"{registry.host}/pushed/none:1")
    assert "does not exist locally" in one_error_line(r)


def test_push_uploads_monolithic_and_chunked(
    oc: Any, registry: Any, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 2048  # 512 KiB, does not compress away
    tar = rootfs_tar(tmp_path / "r.tar", {"data.bin": payload, "etc/os": b"test\n"})
    for repo, env in (("upload/mono", {}), ("upload/chunked",
                                           {"OPENCONTAINER_PUSH_CHUNK_SIZE": "65536"})):
        ref = f"{registry.host}/{repo}:1"
        ok(oc("import", str(tar), ref))
        out = ok(oc("push", ref, env=env))
        assert ": Pushed" in out, out
        info = skopeo_inspect(ref)
        local = image_json(oc, ref)
        assert info["Layers"] and len(info["Layers"]) == 1
        ok(oc("rmi", ref))
        ok(oc("pull", "-q", ref))
        assert image_json(oc, ref)["Id"] == local["Id"]


def _login(oc: Any, reg: Any) -> None:
    ok(oc("login", "-u", reg.username, "--password-stdin", reg.host, input=reg.password + "\n"))


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_push_with_auth(oc: Any, kind: str, request: pytest.FixtureRequest) -> None:
    reg = request.getfixturevalue(f"{kind}_auth_registry")
    creds = f"{reg.username}:{reg.password}"
    src = f"{reg.host}/{reg.private_repository}:latest"
    dest = f"{reg.host}/{reg.private_repository.split('/')[0]}/pushed-{kind}:1"
    _login(oc, reg)
    ok(oc("pull", "-q", src))
    ok(oc("tag", src, dest))
    ok(oc("logout", reg.host))
    r = oc("push", dest)
    err = one_error_line(r)
    assert "denied" in err or "login" in err, err
    _login(oc, reg)
    out = ok(oc("push", dest))
    assert out.splitlines()[-1].startswith(f"1: digest: {reg.busybox_digest}")
    assert skopeo_inspect(dest, creds)["Digest"] == reg.busybox_digest


@pytest.fixture(params=["overlay", "copy"])
def coc(request: pytest.FixtureRequest, oc: Any, oc_env: dict[str, str], proot_54: Path,
        test_images: Any) -> Any:
    oc_env["OPENCONTAINER_PROOT"] = str(proot_54)
    oc_env["OPENCONTAINER_ROOTFS"] = str(request.param)
    yield oc
    left = oc("ps", "-a", "-q").stdout.split()
    if left:
        oc("rm", "-f", *left)


def test_commit_diff_run_push(coc: Any, registry: Any) -> None:
    oc = coc
    ok(oc("pull", "-q", "busybox"))
    script = ("mkdir -p /data/sub && echo hello > /data/sub/greeting && "
              "echo extra:x:5:5::/:/bin/sh >> /etc/passwd && rm /etc/group")
    ok(oc("run", "--name", "c1", "-e", "GREETING=hi", "busybox", "sh", "-c", script))
    diff = ok(oc("diff", "c1")).splitlines()
    assert diff == ["A /data", "A /data/sub", "A /data/sub/greeting", "C /etc",
                    "D /etc/group", "C /etc/passwd"], diff

    image_id = ok(oc("commit", "-m", "add greeting", "-a", "Jane <jane@example.org>",
                     "-c", 'CMD ["cat", "/data/sub/greeting"]', "-c", "ENV FOO=bar",
                     "-c", "EXPOSE 8080", "-c", "LABEL stage=committed",
                     "-c", "WORKDIR /data", "c1", "committed/img:1")).strip()
    assert image_id.startswith("sha256:")
    meta = image_json(oc, "committed/img:1")
    assert meta["Id"] == image_id
    cfg = meta["Config"]
    assert cfg["Cmd"] == ["cat", "/data/sub/greeting"]
    assert "FOO=bar" in cfg["Env"] and "GREETING=hi" in cfg["Env"]
    assert not any(e.startswith("HOSTNAME=") for e in cfg["Env"])
    assert "8080/tcp" in cfg["ExposedPorts"] and cfg["Labels"]["stage"] == "committed"
    assert cfg["WorkingDir"] == "/data"
    assert len(meta["RootFS"]["Layers"]) == 2

    assert ok(oc("run", "--rm", "committed/img:1")) == "hello\n"
    out = ok(oc("run", "--rm", "committed/img:1", "sh", "-c",
                "pwd; test -e /etc/group || echo no-group; tail -n1 /etc/passwd; echo $FOO"))
    assert out.split() == ["/data", "no-group", "extra:x:5:5::/:/bin/sh", "bar"]

    hist = ok(oc("history", "committed/img:1")).splitlines()
    assert hist[1].startswith(image_id.split(":")[1][:12])
    assert "add greeting" in hist[1] and "sh -c mkdir" in hist[1]
    assert hist[2].startswith("<missing>")
    assert "…" in hist[1]  # the long command is truncated ...
    full = ok(oc("history", "--no-trunc", "committed/img:1")).splitlines()
    assert script in full[1]  # ... and not with --no-trunc

    # the committed image goes to a registry: the new layer is uploaded, then pulled back
    dest = f"{registry.host}/committed/img:1"
    ok(oc("tag", "committed/img:1", dest))
    out = ok(oc("push", dest))
    assert ": Pushed" in out, out
    pushed = skopeo_inspect(dest)
    assert len(pushed["Layers"]) == 2 and pushed["Labels"]["stage"] == "committed"
    ok(oc("rm", "c1"))
    ok(oc("rmi", "-f", image_id))
    ok(oc("pull", "-q", dest))
    assert ok(oc("run", "--rm", dest)) == "hello\n"


def test_commit_errors(oc: Any) -> None:
    assert "no-such" in one_error_line(oc("commit", "no-such", "x:1"))
    assert oc("diff").returncode == 125


@pytest.mark.anyio
async def test_chunked_upload_goes_chunk_by_chunk(
    oc: Any, oc_env: dict[str, str], registry: Any, tmp_path: Path
) -> None:
    from opencontainer.image.push import push
    from opencontainer.paths import Paths

    payload = bytes(range(256)) * 1024  # 256 KiB of incompressible-ish data
    tar = rootfs_tar(tmp_path / "r.tar", {"data.bin": payload})
    ref = f"{registry.host}/upload/steps:1"
    ok(oc("import", str(tar), ref))
    seen: list[str] = []
    result = await push(ref, paths=Paths.from_env(oc_env), env=oc_env, chunk_size=32768,
                        progress=lambda _id, status: seen.append(status))
    steps = [s for s in seen if s.startswith("Pushing  ")]
    assert len(steps) >= 2 and steps[0].startswith("Pushing  32768/"), seen
    assert seen[-1] == "Pushed"
    assert skopeo_inspect(ref)["Digest"] == result.digest
