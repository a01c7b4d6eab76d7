"""``POST /build`` of the Docker Engine API: the classic builder's protocol, driven by Debian's
docker CLI 20.10 (``DOCKER_BUILDKIT=0``) and the docker SDK for Python, FROM the test registry's
busybox, with the real proot, as the unprivileged user."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests import test_api_docker as _base
from tests.test_api_docker import Api

pytestmark = pytest.mark.integration

# the service, the docker CLI and the SDK client of test_api_docker.py
docker_cli, api, sdk = _base.docker_cli, _base.api, _base.sdk

DOCKERFILE = """\
FROM busybox
COPY hello.txt /hello.txt
RUN echo running-the-step && cat /hello.txt
CMD ["cat", "/hello.txt"]
"""


def _context(root: Path, text: str = DOCKERFILE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(text)
    (root / "hello.txt").write_text("hello from the context\n")
    return root


def _post(sock: Path, path: str, body: bytes) -> tuple[int, bytes]:
    """A raw ``POST`` on the socket (what a client that checks nothing sends)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    try:
        s.connect(str(sock))
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                  f"Content-Type: application/x-tar\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def test_docker_build_classic_then_run_the_image(api: Api, tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx")
    env = dict(api.env, DOCKER_BUILDKIT="0")
    api_env = Api(sock=api.sock, env=env, docker_bin=api.docker_bin)
    res = api_env.docker("build", "-t", "built:1", str(ctx), timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Step 1/4 : FROM busybox" in out
    assert "Step 2/4 : COPY hello.txt /hello.txt" in out
    assert "running-the-step\nhello from the context\n" in out  # the RUN step's output
    assert "Successfully built " in out and "Successfully tagged built:1" in out
    run = api.docker("run", "--rm", "built:1")
    assert (run.returncode, run.stdout) == (0, "hello from the context\n"), run.stderr
    assert "built" in api.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout

    # again: the steps come from the cache; -q prints just the ID
    again = api_env.docker("build", "-t", "built:1", str(ctx), timeout=300)
    assert again.returncode == 0 and " ---> Using cache" in again.stdout, again.stderr
    quiet = api_env.docker("build", "-q", str(ctx), timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    image_id = quiet.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert f"Successfully built {image_id[7:19]}" in again.stdout

    # a Dockerfile outside the context (-f: the CLI ships it in the archive), a build arg
    other = tmp_path / "elsewhere.Dockerfile"
    other.write_text("FROM busybox\nARG MSG=unset\nRUN echo \"$MSG\" > /msg\n"
                     "CMD [\"cat\", \"/msg\"]\n")
    res = api_env.docker("build", "-f", str(other), "--build-arg", "MSG=from-the-arg",
                         "-t", "withargs", str(ctx), timeout=300)
    assert res.returncode == 0, res.stderr
    run = api.docker("run", "--rm", "withargs")
    assert run.stdout == "from-the-arg\n", run.stderr

    # a failing step: the CLI's error, exit code 1, nothing tagged
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo before; exit 7\n")
    bad = api_env.docker("build", "-t", "broken", str(ctx), timeout=300)
    assert bad.returncode == 1
    assert "exit code: 7" in bad.stderr and "before" in bad.stdout
    assert "broken" not in api.docker("images").stdout


def test_sdk_images_build_returns_the_image_and_the_log(sdk: Any, tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx")
    image, logs = sdk.images.build(path=str(ctx), tag="sdkbuilt:1",
                                   labels={"made.by": "sdk"}, rm=True)
    assert "sdkbuilt:1" in image.tags
    assert image.labels.get("made.by") == "sdk"
    text = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Step 1/4 : FROM busybox" in text and "running-the-step" in text
    assert sdk.containers.run("sdkbuilt:1", remove=True) == b"hello from the context\n"

    # a custom context: an xz-compressed tar (detected), a Dockerfile in a subfolder, a target
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in (("docker/Build.file",
                            b"FROM busybox AS first\nCOPY hello.txt /h\n"
                            b"FROM busybox AS second\nRUN false\n"),
                           ("hello.txt", b"xz context\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _ = sdk.images.build(fileobj=buf, custom_context=True, dockerfile="docker/Build.file",
                                target="first", tag="xzbuilt")
    assert sdk.containers.run(image.id, ["cat", "/h"], remove=True) == b"xz context\n"

    # a failure is the SDK's BuildError with the step's message
    import docker.errors

    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    with pytest.raises(docker.errors.BuildError, match="exit code: 3"):
        sdk.images.build(path=str(ctx))


def test_a_context_that_leaves_its_folder_is_refused(api: Api, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("out")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
        for name in ("out/planted", "../escaped"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    status, body = _post(api.sock, "/v1.41/build?t=evil", buf.getvalue())
    assert status == 400 and b"leaves the destination" in body
    assert not (tmp_path / "planted").exists() and not (tmp_path.parent / "escaped").exists()
    status, body = _post(api.sock, "/v1.41/build?dockerfile=../Dockerfile", b"")
    assert status == 400
    status, body = _post(api.sock, "/v1.41/build", _tar({"hello.txt": b"hi"}))
    assert (status, json.loads(body)) == (
        500, {"message": "Cannot locate specified Dockerfile: Dockerfile"})


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
