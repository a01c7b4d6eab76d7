"""Cold pull+unpack of the Debian service image: ours vs skopeo copy + umoci unpack.

Only with ``OPENCONTAINER_IMAGE_BENCH=1`` (prints the numbers; no timing assertions).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from opencontainer.image.pull import pull
from opencontainer.paths import Paths

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.opt_in,
    pytest.mark.skipif(
        os.environ.get("OPENCONTAINER_IMAGE_BENCH") != "1", reason="set OPENCONTAINER_IMAGE_BENCH=1"
    ),
]


def _drop_caches() -> None:
    subprocess.run(["sync"], check=False)


def test_bench_cold_pull(test_images: Any, tmp_path: Path) -> None:
    info = test_images["postgres"]
    ref = info.reference
    rounds = int(os.environ.get("OPENCONTAINER_IMAGE_BENCH_ROUNDS", "3"))
    ours: list[float] = []
    theirs: list[float] = []
    ours_cpu: list[float] = []
    theirs_cpu: list[float] = []

    def cpu(who: int) -> float:
        ru = resource.getrusage(who)
        return ru.ru_utime + ru.ru_stime

    for i in range(rounds):
        home = tmp_path / f"oc{i}"
        paths = Paths.from_env({"OPENCONTAINER_HOME": str(home), "HOME": str(tmp_path)})
        _drop_caches()
        t0 = time.perf_counter()
        c0 = cpu(resource.RUSAGE_SELF)
        rec = anyio.run(lambda: pull(ref, paths=paths, env={"HOME": str(tmp_path)}),  # noqa: B023
                        backend="asyncio")
        ours.append(time.perf_counter() - t0)
        ours_cpu.append(cpu(resource.RUSAGE_SELF) - c0)
        assert rec.rootfs.is_dir()
        shutil.rmtree(home, ignore_errors=True)

        work = tmp_path / f"skopeo{i}"
        work.mkdir()
        _drop_caches()
        t0 = time.perf_counter()
        c0 = cpu(resource.RUSAGE_CHILDREN)
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
             f"oci:{work}/layout:img"], check=True, capture_output=True,
        )
        subprocess.run(
            ["umoci", "unpack", "--rootless", "--image", f"{work}/layout:img",
             f"{work}/bundle"], check=True, capture_output=True,
        )
        theirs.append(time.perf_counter() - t0)
        theirs_cpu.append(cpu(resource.RUSAGE_CHILDREN) - c0)
        shutil.rmtree(work, ignore_errors=True)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(
        f"\nwall ours: {[round(x, 2) for x in ours]} s; skopeo+umoci: "
        f"{[round(x, 2) for x in theirs]} s; paired ratios {[round(r, 2) for r in ratios]}, "
        f"median {statistics.median(ratios):.2f}, best/best {min(ours) / min(theirs):.2f}\n"
        f"cpu  ours: {[round(x, 2) for x in ours_cpu]} s; skopeo+umoci: "
        f"{[round(x, 2) for x in theirs_cpu]} s; median ratio "
        f"{statistics.median(ours_cpu) / statistics.median(theirs_cpu):.2f}"
    )
