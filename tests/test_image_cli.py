"""The image commands through the real CLI (``oc`` fixture): pull, images, rmi, login, logout,
save, load, import — against the real registry fixtures (integration)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from .fixtures.trees import scan_tree

pytestmark = pytest.mark.integration


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_pull_images_rmi(oc: Any, test_images: Any) -> None:
    info = test_images["busybox"]
    r = oc("pull", "busybox")
    assert r.returncode == 0, r.stderr
    assert "Using default tag: latest" in r.stdout
    assert f"Digest: {info.digest}" in r.stdout
    assert "Status: Downloaded newer image for busybox:latest" in r.stdout
    assert "Pull complete" in r.stdout
    assert r.stdout.strip().endswith("docker.io/library/busybox:latest")
    r = oc("pull", "busybox:latest")
    assert "Status: Image is up to date for busybox:latest" in r.stdout
    assert "Already exists" in r.stdout

    table = oc("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:2] == ["busybox", "latest"]
    rows = [json.loads(line) for line in oc("images", "--format", "json").stdout.splitlines()]
    assert rows[0]["Repository"] == "busybox" and rows[0]["Tag"] == "latest"
    assert rows[0]["Digest"] == info.digest
    ids = oc("images", "-q").stdout.split()
    assert len(ids) == 1 and len(ids[0]) == 12

    r = oc("rmi", "busybox")
    assert r.returncode == 0, r.stderr
    assert "Untagged: busybox:latest" in r.stdout
    assert any(line.startswith("Deleted: sha256:") for line in r.stdout.splitlines())
    assert oc("images", "-q").stdout.strip() == ""
    r = oc("rmi", "busybox")
    assert r.returncode == 1
    assert "No such image" in r.stderr


def test_pull_quiet_and_platform(oc: Any, test_images: Any) -> None:
    info = test_images["multiarch"]
    r = oc("pull", "-q", "--platform", "linux/arm64", info.reference)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == info.reference
    rows = [json.loads(line) for line in oc("images", "--format", "json").stdout.splitlines()]
    assert rows[0]["Digest"] == info.digest


def test_pull_errors_are_one_sentence(oc: Any, test_images: Any, registry: Any) -> None:
    r = oc("pull", f"{registry.host}/library/busybox:does-not-exist")
    assert r.returncode == 1
    assert "manifest for" in one_error_line(r.stderr) and "not found" in r.stderr
    r = oc("pull", "Not A Ref")
    assert r.returncode == 1
    one_error_line(r.stderr)


def _docker_config(oc_env: dict[str, str]) -> Path:
    return Path(oc_env["HOME"]) / ".docker" / "config.json"


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_pull_logout(
    kind: str, oc: Any, oc_env: dict[str, str], basic_auth_registry: Any,
    token_auth_registry: Any,
) -> None:
    reg = basic_auth_registry if kind == "basic" else token_auth_registry
    private = reg.reference(reg.private_repository)
    # no credentials
    r = oc("pull", private)
    assert r.returncode == 1
    assert "opencontainer login" in one_error_line(r.stderr) or "denied" in r.stderr
    # wrong credentials
    r = oc("login", "-u", reg.username, "--password-stdin", reg.host, input="wrong\n")
    assert r.returncode == 1
    assert "wrong username or password" in one_error_line(r.stderr)
    assert not _docker_config(oc_env).exists()
    # right credentials
    r = oc("login", "-u", reg.username, "--password-stdin", reg.host, input=reg.password + "\n")
    assert r.returncode == 0, r.stderr
    assert "Login Succeeded" in r.stdout
    cfg = _docker_config(oc_env)
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    auth = json.loads(cfg.read_text())["auths"][reg.host]["auth"]
    assert base64.b64decode(auth).decode() == f"{reg.username}:{reg.password}"
    r = oc("pull", private)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {reg.busybox_digest}" in r.stdout
    # logout
    r = oc("logout", reg.host)
    assert r.returncode == 0 and "Removing login credentials" in r.stdout
    assert reg.host not in json.loads(cfg.read_text()).get("auths", {})
    # a stored wrong password gives one sentence too
    bad = base64.b64encode(f"{reg.username}:nope".encode()).decode()
    cfg.write_text(json.dumps({"auths": {reg.host: {"auth": bad}}}))
    r = oc("pull", reg.reference(reg.private_repository, "latest"))
    assert r.returncode == 1
    assert "wrong username or password" in one_error_line(r.stderr)


def test_token_anonymous_public_pull(oc: Any, token_auth_registry: Any) -> None:
    reg = token_auth_registry
    r = oc("pull", reg.reference(reg.public_repository))
    assert r.returncode == 0, r.stderr
    r = oc("pull", reg.reference(reg.private_repository))
    assert r.returncode == 1
    one_error_line(r.stderr)


def test_credential_helper(oc: Any, oc_env: dict[str, str], tmp_path: Path,
                           basic_auth_registry: Any) -> None:
    reg = basic_auth_registry
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-octest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'[ "$server" = "{reg.host}" ] || exit 1\n'
        f"echo '{{\"Username\": \"{reg.username}\", \"Secret\": \"{reg.password}\"}}'\n"
    )
    helper.chmod(0o755)
    docker_dir = tmp_path / "dockercfg"
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text(json.dumps({"credHelpers": {reg.host: "octest"}}))
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "DOCKER_CONFIG": str(docker_dir)}
    r = oc("pull", reg.reference(reg.private_repository), env=env)
    assert r.returncode == 0, r.stderr


def test_save_load_roundtrip(oc: Any, oc_env: dict[str, str], test_images: Any,
                             tmp_path: Path) -> None:
    info = test_images["layers"]
    assert oc("pull", info.reference).returncode == 0
    store = Path(oc_env["OPENCONTAINER_HOME"]) / "data" / "store"
    before = {p.name: scan_tree(p) for p in (store / "rootfs").iterdir()
              if not p.name.startswith(".")}
    for fmt in ("docker", "oci"):
        archive = tmp_path / f"img-{fmt}.tar"
        r = oc("save", "--format", fmt, "-o", str(archive), info.reference)
        assert r.returncode == 0, r.stderr
        with tarfile.open(archive) as tf:
            names = set(tf.getnames())
        assert {"index.json", "oci-layout"} <= names
        assert ("manifest.json" in names) == (fmt == "docker")
        assert oc("rmi", info.reference).returncode == 0
        assert not any(p for p in (store / "rootfs").iterdir() if not p.name.startswith("."))
        r = oc("load", "-i", str(archive))
        assert r.returncode == 0, r.stderr
        assert "Loaded image:" in r.stdout
        rows = [json.loads(x) for x in oc("images", "--format", "json").stdout.splitlines()]
        assert [(x["Repository"], x["Tag"]) for x in rows] == [
            (f"{info.registry}/{info.repository}", info.tag)
        ]
        after = {p.name: scan_tree(p) for p in (store / "rootfs").iterdir()
                 if not p.name.startswith(".")}
        assert after == before


def test_load_rejects_garbage(oc: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    r = oc("load", "-i", str(bad))
    assert r.returncode == 1
    one_error_line(r.stderr)


def test_import_rootfs(oc: Any, oc_env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    (src / "bin" / "hello").chmod(0o755)
    archive = tmp_path / "rootfs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname=".")
    r = oc("import", "-c", 'CMD ["/bin/hello"]', "-c", "ENV A=1", str(archive), "mine:1")
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:")
    rows = [json.loads(x) for x in oc("images", "--format", "json").stdout.splitlines()]
    assert rows[0]["Repository"] == "mine" and rows[0]["Tag"] == "1"
    store = Path(oc_env["OPENCONTAINER_HOME"]) / "data" / "store"
    rootfs = store / "rootfs" / image_id.split(":", 1)[1]
    assert (rootfs / "bin" / "hello").read_text().startswith("#!/bin/sh")
    config = json.loads((store / "blobs" / "sha256" / image_id.split(":", 1)[1]).read_text())
    assert config["config"]["Cmd"] == ["/bin/hello"]
    assert config["config"]["Env"] == ["A=1"]


SKOPEO = shutil.which("skopeo")


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")
@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_load_archives_made_by_skopeo(
    transport: str, oc: Any, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["layers"]
    archive = tmp_path / "img.tar"
    dest = f"{transport}:{archive}:example.com/team/layers:v1"
    subprocess.run(
        [SKOPEO, "copy", "--quiet", "--src-tls-verify=false", f"docker://{info.reference}", dest],
        check=True, capture_output=True, timeout=120,
    )
    r = oc("load", "-i", str(archive))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in oc("images", "--format", "json").stdout.splitlines()]
    assert len(rows) == 1
    if transport == "docker-archive":
        assert (rows[0]["Repository"], rows[0]["Tag"]) == ("example.com/team/layers", "v1")
    assert rows[0]["ID"] == info.config_digest


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")
@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_saved_archives_are_readable_by_skopeo(
    fmt: str, oc: Any, test_images: Any, tmp_path: Path
) -> None:
    info = test_images["busybox"]
    assert oc("pull", info.reference).returncode == 0
    archive = tmp_path / "saved.tar"
    assert oc("save", "--format", fmt, "-o", str(archive), info.reference).returncode == 0
    transport = "docker-archive" if fmt == "docker" else "oci-archive"
    out = subprocess.run(
        [SKOPEO, "inspect", "--config", f"{transport}:{archive}"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    config = json.loads(out.stdout)
    assert len(config["rootfs"]["diff_ids"]) == len(info.layers)
    assert config["config"].get("Cmd") == info.config.get("Cmd")


def test_unreachable_and_blocked_registry_cli(oc: Any, tmp_path: Path) -> None:
    from .fixtures.procs import free_port

    r = oc("pull", f"127.0.0.1:{free_port()}/some/image:1")
    assert r.returncode == 1
    assert "cannot reach registry" in one_error_line(r.stderr)
    conf = tmp_path / "blocked.conf"
    conf.write_text('[[registry]]\nprefix = "quay.io"\nblocked = true\n')
    r = oc("pull", "quay.io/some/image:1", env={"OPENCONTAINER_REGISTRIES_CONF": str(conf)})
    assert r.returncode == 1
    assert "blocked" in one_error_line(r.stderr)
